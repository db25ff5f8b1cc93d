"""The encrypted stores: the review store (media bytes an analyst may look at, until the item's
classification is final) and the evidence store (media kept on purpose, with their own key and
retention, every access audited). Beside the pipeline, which writes into the review store, and
triage, which purges it and moves kept media into the evidence store; neither sits above the
other."""

from meldpunt.stores.evidence import EvidenceKeyError, EvidenceStore
from meldpunt.stores.review import ReviewKeyError, ReviewStore, StoreKeyError

__all__ = ["EvidenceKeyError", "EvidenceStore", "ReviewKeyError", "ReviewStore", "StoreKeyError"]
