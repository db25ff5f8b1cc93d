"""Where a URL or an ``@name`` points on a platform: user handles, invites and payment handles.

A link to ``t.me/somename`` says "the Telegram account somename" — that is the entity; the URL and
the domain ``t.me`` add nothing (every Telegram link shares the domain, which would join unrelated
reports). So a URL on a platform below becomes its handle, and platform domains are never domain
entities (:data:`PLATFORM_DOMAINS`).
"""

from __future__ import annotations

import re

#: handles are case-insensitive on these platforms: stored lower-case
_NAME = re.compile(r"[A-Za-z0-9_.]{2,40}")
_CODE = re.compile(r"[A-Za-z0-9_-]{2,40}")

#: first path segments that are a platform's own pages, not a user
_RESERVED = {
    "telegram": {"joinchat", "share", "s", "addstickers", "proxy", "socks", "iv", "login", "c"},
    "instagram": {"p", "reel", "reels", "explore", "stories", "accounts", "about", "tv", "direct"},
    "x": {"i", "home", "search", "intent", "hashtag", "share", "explore", "settings", "login", "messages"},
    "snapchat": set(),
    "tiktok": set(),
}

#: host (without www.) -> platform name
_HOSTS = {
    "t.me": "telegram",
    "telegram.me": "telegram",
    "telegram.dog": "telegram",
    "instagram.com": "instagram",
    "x.com": "x",
    "twitter.com": "x",
    "mobile.twitter.com": "x",
    "tiktok.com": "tiktok",
    "m.tiktok.com": "tiktok",
    "vm.tiktok.com": "tiktok-link",
    "discord.gg": "discord",
    "discord.com": "discord",
    "discordapp.com": "discord",
    "snapchat.com": "snapchat",
    "paypal.me": "paypal",
    "paypal.com": "paypal",
    "cash.app": "cashapp",
    "venmo.com": "venmo",
    "wa.me": "whatsapp",
    "api.whatsapp.com": "whatsapp",
    "kik.me": "kik",
}

#: domains that are never entities of their own (a platform's: it joins everything)
PLATFORM_DOMAINS = frozenset(
    set(_HOSTS)
    | {
        "telegram.org",
        "whatsapp.com",
        "discord.com",
        "facebook.com",
        "fb.com",
        "google.com",
        "youtube.com",
        "youtu.be",
        "bit.ly",
        "reddit.com",
        "wikipedia.org",
        "w3.org",
        "schema.org",
        "gravatar.com",
        "googleapis.com",
        "gstatic.com",
        "cloudflare.com",
        "jquery.com",
        "apple.com",
        "microsoft.com",
    }
)

#: words that name a platform in text ("telegram: @name", "insta @name", "TG @name")
PLATFORM_WORDS = {
    "telegram": "telegram",
    "tg": "telegram",
    "телеграм": "telegram",
    "телеграмм": "telegram",
    "instagram": "instagram",
    "insta": "instagram",
    "ig": "instagram",
    "twitter": "x",
    "x": "x",
    "tiktok": "tiktok",
    "snapchat": "snapchat",
    "snap": "snapchat",
    "sc": "snapchat",
    "kik": "kik",
    "discord": "discord",
    "wickr": "wickr",
    "session": "session",
    "threema": "threema",
    "signal": "signal",
}

#: kind of entity per platform: payment handles are their own kind
PAYMENT_PLATFORMS = frozenset({"paypal", "cashapp", "venmo"})


def _first(segments: list[str], i: int = 0) -> str:
    return segments[i] if len(segments) > i else ""


def platform_entity(host: str, path: str) -> tuple[str, str] | None:
    """``(kind, value)`` for a URL on a known platform (host lower-case, without ``www.``), e.g.
    ``("handle", "telegram:somename")`` or ``("payment", "paypal:name")``; None when the URL is not
    a user, invite or payment page of one."""
    platform = _HOSTS.get(host)
    if platform is None:
        return None
    segs = [s for s in path.split("/") if s]
    first = _first(segs)
    value: str | None = None
    if platform == "telegram":
        if first.startswith("+") and _CODE.fullmatch(first[1:]):
            value = "+" + first[1:]  # an invite link: its code is case-sensitive
        elif first == "joinchat" and _CODE.fullmatch(_first(segs, 1)):
            value = "+" + _first(segs, 1)
        elif first.lower() not in _RESERVED["telegram"] and _NAME.fullmatch(first):
            value = first.lower()
    elif platform in ("instagram", "x", "snapchat"):
        if platform == "snapchat" and first == "add":
            first = _first(segs, 1)
        if first.lower() not in _RESERVED[platform] and _NAME.fullmatch(first):
            value = first.lower()
    elif platform == "tiktok":
        if first.startswith("@") and _NAME.fullmatch(first[1:]):
            value = first[1:].lower()
    elif platform == "discord":
        code = first if host == "discord.gg" else (_first(segs, 1) if first == "invite" else "")
        if _CODE.fullmatch(code):
            return "handle", f"discord:invite/{code}"
        return None
    elif platform == "paypal":
        name = first if host == "paypal.me" else (_first(segs, 1) if first.lower() == "paypalme" else "")
        if _NAME.fullmatch(name):
            return "payment", f"paypal:{name.lower()}"
        return None
    elif platform == "cashapp":
        if first.startswith("$") and _NAME.fullmatch(first[1:]):
            return "payment", f"cashapp:{first[1:].lower()}"
        return None
    elif platform == "venmo":
        name = _first(segs, 1) if first == "u" else first
        if _NAME.fullmatch(name):
            return "payment", f"venmo:{name.lower()}"
        return None
    elif platform == "kik" and _NAME.fullmatch(first):
        value = first.lower()
    if value is None:
        return None
    return "handle", f"{platform}:{value}"


def whatsapp_number(host: str, path: str, query: str) -> str | None:
    """The digits of a ``wa.me/<number>`` or ``api.whatsapp.com/send?phone=<number>`` link."""
    if host == "wa.me":
        digits = path.strip("/")
    elif host == "api.whatsapp.com":
        m = re.search(r"(?:^|&)phone=\+?(\d{6,15})(?:&|$)", query)
        digits = m.group(1) if m else ""
    else:
        return None
    return digits if digits.isdigit() and 6 <= len(digits) <= 15 else None


__all__ = ["PAYMENT_PLATFORMS", "PLATFORM_DOMAINS", "PLATFORM_WORDS", "platform_entity", "whatsapp_number"]
