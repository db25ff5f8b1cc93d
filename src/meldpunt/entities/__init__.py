"""Entities in text and pages — domains, URLs, e-mail addresses, user handles, phone numbers, IBANs,
payment handles, cryptocurrency addresses — found, validated and normalised. A pure room: no
database, no network (``links`` stores them and draws the graph).

Libraries: ``phonenumbers`` (Google's libphonenumber: parsing, validity, E.164), ``schwifty``
(IBAN formats per country and the ISO 7064 check digits), ``email-validator`` (address syntax,
IDN), ``pycryptodome`` (Keccak-256 for Ethereum's EIP-55 and Monero's checksum); Base58Check and
Bech32/Bech32m are written out in :mod:`meldpunt.entities.crypto` after their specifications.
"""

from __future__ import annotations

from meldpunt.entities.extract import KINDS, MAX_CHARS, Entity, clean, extract
from meldpunt.entities.page import extract_page

__all__ = ["KINDS", "MAX_CHARS", "Entity", "clean", "extract", "extract_page"]
