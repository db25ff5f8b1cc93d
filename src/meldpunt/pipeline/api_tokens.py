"""API tokens for partners and platforms: a random secret shown once, kept only as its SHA-256,
with the scopes that say what it may do.

A token holds only the scopes it was given. ``reports`` and ``match`` are what a partner hotline or
a platform needs; ``internal:read`` opens ``/internal/items``, which lists every item's URL
(anonymous reports from the public included), so it is never given unless asked for by name.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import Engine, insert, select

from meldpunt.store.reports import ApiToken


class TokenNeeds(Protocol):
    """What the token functions need of ``meldpunt.bootstrap.Services`` (a protocol, not the class:
    the pipeline does not import the wiring that imports it)."""

    @property
    def engine(self) -> Engine: ...


#: scope -> what it allows (shown by ``meldpunt token create --help`` and in the API docs)
SCOPES: dict[str, str] = {
    "reports": "report URLs: POST /api/v1/reports, and `report` in POST /api/v1/match",
    "match": "match hashes and files: POST /api/v1/match",
    "internal:read": "read /internal/items: every item's URL and state",
}
#: what a token gets when no scope is named: what every token could do before scopes existed,
#: except reading the internal item list (the migration gives existing tokens the same)
DEFAULT_SCOPES: tuple[str, ...] = ("reports", "match")


class UnknownScope(ValueError):
    """A scope name that is not one of :data:`SCOPES`."""


class BadTokenName(ValueError):
    """A token name that could not be stored or shown safely."""


#: A token's name becomes its reports' source, ``"api:" + name``, in a column of 120 characters.
MAX_NAME_LENGTH = 100


def check_token_name(name: str) -> str:
    """``name`` stripped, or :class:`BadTokenName` saying why it cannot be a token's name: empty,
    longer than :data:`MAX_NAME_LENGTH`, or holding control characters (NUL included, which
    PostgreSQL refuses, and escape sequences, which would reach a terminal in ``token list``)."""
    name = name.strip()
    if not name:
        raise BadTokenName("a token needs a name (who it is for)")
    if len(name) > MAX_NAME_LENGTH:
        raise BadTokenName(f"a token's name has at most {MAX_NAME_LENGTH} characters")
    if any(not c.isprintable() for c in name):
        raise BadTokenName("a token's name cannot hold control characters")
    return name


@dataclass(frozen=True)
class ApiClient:
    """Who a valid token belongs to, and what it may do."""

    name: str
    scopes: frozenset[str]

    def may(self, scope: str) -> bool:
        return scope in self.scopes


@dataclass(frozen=True)
class TokenInfo:
    name: str
    scopes: tuple[str, ...]
    revoked: bool
    created_at: datetime


def parse_scopes(given: Iterable[str]) -> tuple[str, ...]:
    """Scope names (comma- or space-separated, repeatable) in :data:`SCOPES`' order, without
    duplicates; raises :class:`UnknownScope` naming the choices."""
    names = {part for value in given for part in value.replace(",", " ").split()}
    unknown = sorted(names - set(SCOPES))
    if unknown:
        raise UnknownScope(f"unknown scope {', '.join(map(repr, unknown))}; choose from {', '.join(SCOPES)}")
    return tuple(s for s in SCOPES if s in names)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_api_token(services: TokenNeeds, name: str, scopes: Iterable[str] = DEFAULT_SCOPES) -> str:
    """Issue a token with ``scopes``; returns it (the only time it is seen). Raises
    :class:`BadTokenName` or :class:`UnknownScope`."""
    name = check_token_name(name)
    chosen = parse_scopes(scopes)
    if not chosen:
        raise UnknownScope(f"a token needs at least one scope; choose from {', '.join(SCOPES)}")
    token = "mp_" + secrets.token_urlsafe(32)
    with services.engine.begin() as conn:
        conn.execute(
            insert(ApiToken).values(
                name=name,
                token_hash=_hash(token),
                scopes=" ".join(chosen),
                revoked=False,
                created_at=datetime.now(UTC),
            )
        )
    return token


def authenticate(services: TokenNeeds, token: str) -> ApiClient | None:
    """The client of a valid, unrevoked token; None for anything else."""
    if not token or len(token) > 200:
        return None
    with services.engine.connect() as conn:
        row = conn.execute(
            select(ApiToken.name, ApiToken.scopes).where(
                ApiToken.token_hash == _hash(token), ApiToken.revoked.is_(False)
            )
        ).first()
    if row is None:
        return None
    return ApiClient(str(row.name), frozenset(str(row.scopes).split()))


def check_api_token(services: TokenNeeds, token: str) -> str | None:
    """The name of a valid token's owner, whatever its scopes (see :func:`authenticate`)."""
    client = authenticate(services, token)
    return client.name if client is not None else None


def list_api_tokens(services: TokenNeeds) -> list[TokenInfo]:
    with services.engine.connect() as conn:
        rows = conn.execute(
            select(ApiToken.name, ApiToken.scopes, ApiToken.revoked, ApiToken.created_at).order_by(
                ApiToken.name
            )
        ).all()
    return [TokenInfo(r.name, tuple(str(r.scopes).split()), bool(r.revoked), r.created_at) for r in rows]
