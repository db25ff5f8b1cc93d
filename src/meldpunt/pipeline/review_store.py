"""Moved to :mod:`meldpunt.stores.review`; these names stay importable from here for one release."""

from meldpunt.stores.review import (
    KEY_BYTES,
    NONCE_BYTES,
    ReviewKeyError,
    ReviewStore,
    StoreKeyError,
    default_key_file,
    key_file_path,
    key_fingerprint,
    load_or_create_key_file,
    parse_key,
    review_key,
)

__all__ = [
    "KEY_BYTES",
    "NONCE_BYTES",
    "ReviewKeyError",
    "ReviewStore",
    "StoreKeyError",
    "default_key_file",
    "key_file_path",
    "key_fingerprint",
    "load_or_create_key_file",
    "parse_key",
    "review_key",
]
