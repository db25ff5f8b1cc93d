"""Moved to :mod:`meldpunt.stores.evidence`; these names stay importable from here for one release."""

from meldpunt.stores.evidence import (
    SYSTEM,
    EvidenceKeyError,
    EvidenceRecord,
    EvidenceStore,
    default_evidence_key_file,
    purge_expired,
)

__all__ = [
    "SYSTEM",
    "EvidenceKeyError",
    "EvidenceRecord",
    "EvidenceStore",
    "default_evidence_key_file",
    "purge_expired",
]
