"""The TLS context every outgoing HTTPS client shares (fetching, RDAP, partners, ICCAM).

Building one loads the CA bundle (certifi's), about 35 ms of CPU; the walk's fetcher, the partner
sends and the RDAP client each built one or two per use, which made it the largest single cost of
a busy worker's idle passes (a quarter of the demo's nine-day story). A context is safe to share
between threads and event loops for client connections, so each kind is made once per process.
The CA bundle is read when the process first needs it: a changed bundle counts after a restart.
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def ssl_context(verify: bool = True, trust_env: bool = False) -> ssl.SSLContext:
    """httpx's own default context, once per process for each kind. ``verify=False``: no
    certificate checks; ``trust_env``: ``SSL_CERT_FILE``/``SSL_CERT_DIR`` count, as they did for the
    clients made with httpx's defaults (ICCAM, RDAP)."""
    return httpx.create_ssl_context(verify=verify, trust_env=trust_env)
