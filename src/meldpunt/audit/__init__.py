"""The tamper-evident audit log: who viewed, revealed, classified, exported, imported, deleted or
changed what, appended to a SHA-256 hash chain that ``meldpunt audit verify`` checks.

``record(conn, AuditEvent(...))`` inside a transaction of yours; ``AuditLog(engine).append(...)``
on its own. Nothing here changes or removes an entry.
"""

from meldpunt.audit.log import (
    AUDIT_LOCK_ID,
    GENESIS_HASH,
    AuditEntry,
    AuditEvent,
    AuditLog,
    Checkpoint,
    Problem,
    Verification,
    canonical_time,
    checkpoint,
    entries,
    entry_hash,
    record,
    verify,
)

__all__ = [
    "AUDIT_LOCK_ID",
    "GENESIS_HASH",
    "AuditEntry",
    "AuditEvent",
    "AuditLog",
    "Checkpoint",
    "Problem",
    "Verification",
    "canonical_time",
    "checkpoint",
    "entries",
    "entry_hash",
    "record",
    "verify",
]
