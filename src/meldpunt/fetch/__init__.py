"""The safe fetcher: pages and media fetched over HTTP(S) with limits, behind an SSRF guard that
resolves each host once, refuses non-public addresses, and connects to the address it checked.

May import only :mod:`meldpunt.domain` and :mod:`meldpunt.settings` (see tests/test_architecture.py).
"""

from meldpunt.fetch.client import Fetcher, FetchPolicy, FetchResult, Page, check_url, sniff_media
from meldpunt.fetch.errors import CODES, FetchError
from meldpunt.fetch.extract import extract_media_urls, parse_srcset
from meldpunt.fetch.guard import (
    AddressGuard,
    BlockedAddress,
    GuardedBackend,
    Resolver,
    parse_ip_literal,
    system_resolver,
)

__all__ = [
    "CODES",
    "AddressGuard",
    "BlockedAddress",
    "FetchError",
    "FetchPolicy",
    "FetchResult",
    "Fetcher",
    "GuardedBackend",
    "Page",
    "Resolver",
    "check_url",
    "extract_media_urls",
    "parse_ip_literal",
    "parse_srcset",
    "sniff_media",
    "system_resolver",
]
