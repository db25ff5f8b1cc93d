"""Per-URL fetch errors: one exception type with a short machine ``code`` the caller records."""

from __future__ import annotations

#: every code a :class:`FetchError` may carry, with what it means
CODES: dict[str, str] = {
    "bad_url": "not an http(s) URL, credentials in the URL, no host, or otherwise unusable",
    "blocked_address": "the host is or resolves to an address the SSRF guard refuses",
    "unreachable": "the name does not resolve, or the connection failed",
    "timeout": "no answer (connection and response headers) within the time allowed",
    "stalled": "the server stopped sending: no byte for the policy's read timeout",
    "too_slow": "the server answered but its body took longer than the time allowed",
    "too_large": "the body (after decompression) is bigger than the policy allows",
    "too_many_redirects": "more redirects than the policy allows (or a redirect without a target)",
    "http_status": "the final response was not a 2xx",
    "not_html": "a page that is neither HTML nor media",
    "not_media": "a media URL whose content is neither an image nor a video",
    "bad_encoding": "a Content-Encoding that cannot be decoded, or a corrupt compressed body",
    "protocol_error": "the server broke HTTP",
}


class FetchError(Exception):
    """A URL could not be fetched; ``code`` says why in one word (see :data:`CODES`)."""

    def __init__(self, code: str, message: str, url: str = "", status: int | None = None) -> None:
        super().__init__(f"{code}: {message}" + (f" ({url})" if url else ""))
        self.code = code
        self.message = message
        self.url = url
        self.status = status
