"""Entities in free text: URLs, domains, e-mail addresses, user handles, phone numbers, IBANs,
payment handles and cryptocurrency addresses, each normalised so that two spellings of one thing
are one entity.

Any script and encoding: the text is first put in NFKC form (fullwidth digits and letters become
ASCII ones, ``ｔ.ｍｅ`` is ``t.me``), zero-width characters and bidirectional marks are removed
(they hide inside handles to defeat matching), and text that is plainly UTF-8 read as Windows-1252
(mojibake: ``Ã©``) is read again as UTF-8.

Budgets, so hostile text costs little: at most :data:`MAX_CHARS` characters are read; the text is
cut into tokens at white space and punctuation, and a token longer than :data:`MAX_TOKEN` is
skipped, so every pattern runs on a short anchored string (no pattern can backtrack over the whole
text); at most :data:`MAX_ENTITIES` entities are kept; the phone and IBAN scans, which look across
tokens, run on chunks with a deadline (``max_s``): past it, what was found is returned.
"""

from __future__ import annotations

import re
import time
import unicodedata
from dataclasses import dataclass
from urllib.parse import urlsplit

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from schwifty import IBAN
from schwifty.exceptions import SchwiftyException

from meldpunt.entities.crypto import crypto_address
from meldpunt.entities.platforms import (
    PLATFORM_DOMAINS,
    PLATFORM_WORDS,
    platform_entity,
    whatsapp_number,
)

#: characters of one text read (the rest is ignored)
MAX_CHARS = 200_000
#: tokens longer than this are skipped (no URL, address or handle is longer in practice)
MAX_TOKEN = 2048
#: entities kept from one text
MAX_ENTITIES = 500
#: seconds one text may take; what was found by then is kept
MAX_S = 2.0

#: the kinds, in the order pages list them
KINDS = ("handle", "crypto", "payment", "iban", "phone", "email", "domain", "url")

#: zero-width characters, bidirectional marks and the BOM: removed before matching
_INVISIBLE = dict.fromkeys(
    [
        0x200B,
        0x200C,
        0x200D,
        0x2060,
        0xFEFF,
        0x00AD,
        0x200E,
        0x200F,
        0x061C,
        *range(0x202A, 0x202F),
        *range(0x2066, 0x206A),
    ]
)
#: where tokens end: white space, quotes, brackets, CJK/Arabic punctuation NFKC leaves alone, and
_SPLIT = re.compile(
    r"""[\s"'<>()\[\]{}|\\^`«»“”‘’「」『』【】、。，；！？،؛"""
    # scripts written without spaces between words (a handle may follow a word directly):
    # Hebrew, Arabic, Thai, kana, CJK ideographs, Hangul; IDN domains in them are given up
    "\u0590-\u05ff\u0600-\u06ff\u0750-\u077f\u0e00-\u0e7f\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]+"
)
_TRAIL = ".,;:!?*-–—…"
_CP1252_HIGH = "\u0080-\u00ff\u2018-\u203a\u0152-\u0178\u0192\u02c6\u02dc\u2122\u20ac"
_MOJIBAKE_RUN = re.compile(f"[{_CP1252_HIGH}]{{2,64}}")
_MOJIBAKE = re.compile("[ÃÂâ][\u0080-\u00bf\u2018-\u203a\u0152-\u0178\u02c6\u02dc\u2122\u20ac]")

#: a host name's labels (ASCII after IDNA) and a top-level domain
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_TLD = re.compile(r"(?:[a-z]{2,24}|xn--[a-z0-9-]{1,59})")
#: top-level domains a bare ``name.tld`` (without ``http://`` or ``www.``) is taken for: a short
#: list, because ``index.html`` or ``photo.jpg`` must not become domains
_BARE_TLDS = frozenset(
    [
        "com",
        "net",
        "org",
        "info",
        "biz",
        "io",
        "co",
        "me",
        "tv",
        "cc",
        "ws",
        "to",
        "su",
        "ru",
        "ua",
        "by",
        "kz",
        "uz",
        "am",
        "ge",
        "az",
        "md",
        "pl",
        "cz",
        "sk",
        "hu",
        "ro",
        "bg",
        "rs",
        "hr",
        "si",
        "ba",
        "mk",
        "al",
        "gr",
        "tr",
        "cy",
        "de",
        "nl",
        "be",
        "lu",
        "fr",
        "uk",
        "eu",
        "es",
        "pt",
        "it",
        "ch",
        "at",
        "li",
        "dk",
        "se",
        "no",
        "fi",
        "is",
        "ie",
        "ee",
        "lv",
        "lt",
        "mt",
        "us",
        "ca",
        "mx",
        "br",
        "ar",
        "cl",
        "pe",
        "ve",
        "cn",
        "jp",
        "kr",
        "tw",
        "hk",
        "sg",
        "my",
        "th",
        "vn",
        "ph",
        "id",
        "in",
        "pk",
        "bd",
        "ir",
        "iq",
        "sa",
        "ae",
        "il",
        "eg",
        "ma",
        "ng",
        "za",
        "ke",
        "au",
        "nz",
        "xyz",
        "top",
        "club",
        "online",
        "site",
        "store",
        "shop",
        "app",
        "dev",
        "live",
        "link",
        "onion",
        "pw",
        "cf",
        "ga",
        "gq",
        "ml",
        "tk",
        "icu",
        "vip",
        "fun",
        "space",
        "website",
        "cam",
        "sex",
        "xxx",
        "porn",
        "adult",
        "chat",
        "world",
        "today",
        "rf",
    ]
)
_HANDLE = re.compile(r"@([A-Za-z0-9_.]{2,32})")
_CASHTAG = re.compile(r"\$([A-Za-z][A-Za-z0-9_]{0,19})")
_CRYPTO_TOKEN = re.compile(r"(?:0[xX][0-9a-fA-F]{40}|[a-zA-Z0-9]{25,95})")
_IBAN = re.compile(r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
_CHUNK = 8192


@dataclass(frozen=True, order=True)
class Entity:
    """One thing found: ``kind`` (see :data:`KINDS`) and its normalised ``value``."""

    kind: str
    value: str


def _unmojibake(m: re.Match[str]) -> str:
    try:
        return m.group(0).encode("cp1252").decode("utf-8")
    except UnicodeError:
        return m.group(0)


def clean(text: str) -> str:
    """``text`` in NFKC form without invisible characters, mojibake repaired, at most
    :data:`MAX_CHARS` characters."""
    text = text[:MAX_CHARS]
    if _MOJIBAKE.search(text):
        try:
            text = text.encode("cp1252").decode("utf-8")
        except UnicodeError:  # mixed with other text: repair each run of such characters
            text = _MOJIBAKE_RUN.sub(_unmojibake, text)
    return unicodedata.normalize("NFKC", text).translate(_INVISIBLE)


def normal_host(host: str) -> str | None:
    """A host name lower-case, IDNA-encoded (``пример.рф`` -> ``xn--e1afmkfd.xn--p1ai``), without a
    leading ``www.`` or trailing dot; None when it is not a plausible DNS name."""
    host = host.strip().rstrip(".").lower()
    if not host or len(host) > 253:
        return None
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    labels = host.split(".")
    if len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels[:-1]):
        return None
    if not _TLD.fullmatch(labels[-1]):
        return None
    return host.removeprefix("www.") if len(labels) > 2 else host


def _url_entities(raw: str, *, bare: bool) -> list[Entity]:
    """Entities of one URL-like token: the platform handle it points to, or the URL and its
    domain. ``bare``: no scheme was written (``example.com/x``), so the TLD must be a common one."""
    try:
        parts = urlsplit(raw if not bare else "http://" + raw)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return []
    if parts.scheme not in ("http", "https") or parts.username or parts.password:
        return []
    name = normal_host(host)
    if name is None:
        return []
    path = parts.path or "/"
    found = platform_entity(name, path)
    if found is not None:
        return [Entity(*found)]
    if bare and name.rsplit(".", 1)[-1] not in _BARE_TLDS:
        return []
    number = whatsapp_number(name, path, parts.query)
    if number is not None:
        phone = normal_phone("+" + number, None)
        return [Entity("phone", phone)] if phone else []
    if name in PLATFORM_DOMAINS or any(name.endswith("." + d) for d in PLATFORM_DOMAINS):
        return []
    netloc = name if port in (None, 80, 443) else f"{name}:{port}"
    scheme = "https" if parts.scheme == "https" else "http"
    url = f"{scheme}://{netloc}{path}" + (f"?{parts.query}" if parts.query else "")
    out = [Entity("domain", name)]
    if path != "/" or parts.query:
        out.append(Entity("url", url[:2000]))
    return out


def normal_phone(raw: str, region: str | None) -> str | None:
    """E.164 form of a valid phone number (``region``: the country a number without ``+`` is read
    in), else None."""
    try:
        n = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(n):
        return None
    return phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164)


def normal_iban(raw: str) -> str | None:
    """The IBAN in compact upper-case form when its country format and check digits hold."""
    try:
        return str(IBAN(raw).compact)
    except (SchwiftyException, ValueError):
        return None


def normal_email(raw: str) -> str | None:
    """The address lower-case (IDN domains in ASCII) when it is syntactically valid."""
    if raw.count("@") != 1 or len(raw) > 254:
        return None
    try:
        v = validate_email(raw, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError:
        return None
    domain = normal_host(v.ascii_domain or v.domain)
    if domain is None:
        return None
    return f"{v.local_part.lower()}@{domain}"


def _strip(token: str) -> str:
    token = token.strip(_TRAIL)
    # a closing bracket or quote glued to the end is punctuation, not part of the token
    return token


def _platform_before(tokens: list[str], i: int) -> str | None:
    """The platform a word among the three tokens before ``tokens[i]`` names, if any."""
    for j in range(max(0, i - 3), i):
        word = tokens[j].strip(_TRAIL + ":").lower()
        if word in PLATFORM_WORDS:
            return PLATFORM_WORDS[word]
    return None


def _token_entities(tokens: list[str], i: int) -> list[Entity]:
    token = _strip(tokens[i])
    if len(token) < 2:
        return []
    low = token.lower()
    if low.startswith("mailto:"):
        email = normal_email(token[7:].split("?", 1)[0])
        return [Entity("email", email)] if email else []
    if low.startswith(("bitcoin:", "litecoin:", "ethereum:", "monero:")):
        token = token.split(":", 1)[1].split("?", 1)[0]
        coin = crypto_address(token)
        return [Entity("crypto", coin)] if coin else []
    if "://" in token:
        return _url_entities(token, bare=False) if low.startswith(("http://", "https://")) else []
    head = token.split("/", 1)[0]
    if "/" in token and "." in head and "@" not in head:  # example.com/path, t.me/name
        return _url_entities(token, bare=not low.startswith("www."))
    if "@" in token:
        m = _HANDLE.fullmatch(token)
        if m:
            platform = _platform_before(tokens, i)
            if platform is None:
                return []
            return [Entity("handle", f"{platform}:{m.group(1).lower().rstrip('.')}")]
        if token[0] != "@":
            email = normal_email(token)
            return [Entity("email", email)] if email else []
        return []
    if token[0] == "$":
        m = _CASHTAG.fullmatch(token)
        return [Entity("payment", f"cashapp:{m.group(1).lower()}")] if m else []
    if "." in token and not token.replace(".", "").isdigit():
        return _url_entities(token, bare=not low.startswith("www."))
    if _CRYPTO_TOKEN.fullmatch(token):
        coin = crypto_address(token)
        return [Entity("crypto", coin)] if coin else []
    return []


def _scan_phones(text: str, region: str | None, deadline: float, out: dict[Entity, None]) -> None:
    for start in range(0, len(text), _CHUNK):
        if time.monotonic() > deadline or len(out) >= MAX_ENTITIES:
            return
        chunk = text[max(0, start - 32) : start + _CHUNK]
        for m in phonenumbers.PhoneNumberMatcher(chunk, region or "ZZ", phonenumbers.Leniency.VALID, 200):
            out.setdefault(
                Entity("phone", phonenumbers.format_number(m.number, phonenumbers.PhoneNumberFormat.E164))
            )


def _scan_ibans(text: str, deadline: float, out: dict[Entity, None]) -> None:
    for start in range(0, len(text), _CHUNK):
        if time.monotonic() > deadline or len(out) >= MAX_ENTITIES:
            return
        chunk = text[max(0, start - 40) : start + _CHUNK]
        for m in _IBAN.finditer(chunk):
            iban = normal_iban(m.group(0))
            if iban:
                out.setdefault(Entity("iban", iban))


def extract(text: str, *, region: str | None = None, max_s: float = MAX_S) -> list[Entity]:
    """The entities in ``text``, de-duplicated, in the order :data:`KINDS` lists them (then by
    value). ``region``: the ISO country code a phone number without ``+`` is read in (the
    hotline's country). Never raises on any text."""
    deadline = time.monotonic() + max_s
    text = clean(text)
    out: dict[Entity, None] = {}
    tokens = [t for t in _SPLIT.split(text) if t]
    for i, token in enumerate(tokens):
        if len(out) >= MAX_ENTITIES or (i % 256 == 0 and time.monotonic() > deadline):
            break
        if len(token) > MAX_TOKEN:
            continue
        try:
            for e in _token_entities(tokens, i):
                out.setdefault(e)
        except Exception:  # a library refusing odd input must not lose the other entities
            continue
    _scan_ibans(text, deadline, out)
    _scan_phones(text, region.upper() if region else None, deadline, out)
    # an IBAN's digits or a crypto address never double as a phone number
    return sorted(list(out)[:MAX_ENTITIES], key=lambda e: (KINDS.index(e.kind), e.value))


__all__ = [
    "KINDS",
    "MAX_CHARS",
    "MAX_ENTITIES",
    "Entity",
    "clean",
    "extract",
    "normal_email",
    "normal_host",
    "normal_iban",
    "normal_phone",
]
