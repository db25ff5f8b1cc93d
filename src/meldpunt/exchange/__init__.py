"""Signed messages between meldpunt instances (partner hotlines): envelopes with Ed25519 signatures,
nonces and timestamps; no database (``meldpunt.act`` records, sends and applies them). Built in #11."""
