"""Partner hotlines' meldpunt instances as data: name, address, the countries each covers and the
Ed25519 public keys it signs with — edited by the ``meldpunt partner`` commands, every change audited
in its transaction (#11 part "wire").

A partner is *removed* softly (``removed_at``): its messages keep their sender, a message from it is
refused as "removed" (not "unknown"), and adding the name again brings it back with the new facts.
A key is never deleted either: retiring it keeps it accepted for ``keys.grace_days`` (the partner
rotated; its messages signed before the rotation may still be on their way).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Connection, insert, select, update

from meldpunt.act.context import ActNeeds, utc
from meldpunt.audit import AuditEvent, record
from meldpunt.exchange.envelope import valid_name
from meldpunt.store.partners import PartnerKeyRow, PartnerRow
from meldpunt.stores.signing import (
    KeyRing,
    SigningKeyError,
    kid_of,
    load_key_ring,
    parse_public_key,
    public_raw,
)

_COUNTRY = re.compile(r"^[A-Z]{2}$")
MAX_NOTE, MAX_URL = 2000, 500

#: what the partner services need: the act services' settings, database, clock and audit log (the
#: signing keys are read from ``settings.keys.file`` like ``Services.signing_keys`` does)
PartnerNeeds = ActNeeds


def key_ring(services: ActNeeds) -> KeyRing:
    """The instance's key ring, read afresh (a rotation by another process is seen at once)."""
    return load_key_ring(services.settings, now=services.clock.now())


class PartnerError(ValueError):
    """Input a partner cannot be saved with (every problem, readable), or no such partner."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


@dataclass(frozen=True)
class PartnerKey:
    kid: str
    #: base64 of the 32 raw bytes
    public: str
    added: datetime
    retired: datetime | None = None

    def accepted(self, now: datetime, grace: timedelta) -> bool:
        return self.retired is None or now <= self.retired + grace


@dataclass(frozen=True)
class Partner:
    id: int
    name: str
    url: str
    countries: tuple[str, ...]
    keys: tuple[PartnerKey, ...]
    note: str
    created: datetime
    removed: datetime | None = None

    @property
    def inbox(self) -> str:
        return self.url.rstrip("/") + "/api/v1/partner/inbox"

    def accepted_keys(self, now: datetime, grace: timedelta) -> list[PartnerKey]:
        return [k for k in self.keys if k.accepted(now, grace)]


def check_url(url: str) -> str | None:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return f"not an http(s) address: {url!r}"
    if parsed.scheme not in ("http", "https") or not parsed.host or len(url) > MAX_URL:
        return f"not an http(s) address: {url!r}"
    if parsed.query or parsed.fragment or parsed.userinfo:
        return "the address must be the instance's base address, without query, fragment or user"
    return None


def normalise_countries(countries: Iterable[str], problems: list[str]) -> tuple[str, ...]:
    out: list[str] = []
    for c in countries:
        cc = c.strip().upper()
        if not _COUNTRY.match(cc):
            problems.append(f"not an ISO 3166 alpha-2 country code: {c!r}")
        elif cc not in out:
            out.append(cc)
    return tuple(out)


def parse_keys(keys: Iterable[str], problems: list[str]) -> list[tuple[str, str]]:
    """``(kid, base64)`` of each public key given (base64 of the 32 raw bytes)."""
    out: list[tuple[str, str]] = []
    for text in keys:
        try:
            public = parse_public_key(text)
        except (SigningKeyError, ValueError) as e:
            problems.append(f"key {text[:12]!r}...: {e}")
            continue
        raw = public_raw(public)

        pair = (kid_of(raw), base64.b64encode(raw).decode())
        if pair not in out:
            out.append(pair)
    return out


def _row_partner(row: Any, keys: Sequence[Any]) -> Partner:
    return Partner(
        id=row.id,
        name=row.name,
        url=row.url,
        countries=tuple(json.loads(row.countries or "[]")),
        keys=tuple(
            PartnerKey(k.kid, k.public, utc(k.added_at), utc(k.retired_at) if k.retired_at else None)
            for k in sorted(keys, key=lambda k: (k.retired_at is not None, k.id))
        ),
        note=row.note,
        created=utc(row.created_at),
        removed=utc(row.removed_at) if row.removed_at else None,
    )


def load(conn: Connection, name: str, *, removed: bool = False) -> Partner | None:
    """The partner called ``name`` (a removed one only when ``removed``)."""
    row = conn.execute(select(PartnerRow).where(PartnerRow.name == name)).first()
    if row is None or (row.removed_at is not None and not removed):
        return None
    keys = conn.execute(select(PartnerKeyRow).where(PartnerKeyRow.partner_id == row.id)).all()
    return _row_partner(row, keys)


def load_by_id(conn: Connection, partner_id: int) -> Partner | None:
    row = conn.execute(select(PartnerRow).where(PartnerRow.id == partner_id)).first()
    if row is None:
        return None
    keys = conn.execute(select(PartnerKeyRow).where(PartnerKeyRow.partner_id == row.id)).all()
    return _row_partner(row, keys)


def load_all(conn: Connection) -> list[Partner]:
    rows = conn.execute(
        select(PartnerRow).where(PartnerRow.removed_at.is_(None)).order_by(PartnerRow.name)
    ).all()
    keys: dict[int, list[Any]] = {}
    for k in conn.execute(select(PartnerKeyRow)).all():
        keys.setdefault(k.partner_id, []).append(k)
    return [_row_partner(r, keys.get(r.id, [])) for r in rows]


def store_keys(
    conn: Connection, partner_id: int, keys: Sequence[tuple[str, str]], now: datetime
) -> list[str]:
    """Add the keys not yet known (an old retired one given again is accepted again); the kids added."""
    known = {
        k.kid: k for k in conn.execute(select(PartnerKeyRow).where(PartnerKeyRow.partner_id == partner_id))
    }
    added = []
    for kid, public in keys:
        if kid not in known:
            conn.execute(
                insert(PartnerKeyRow).values(partner_id=partner_id, kid=kid, public=public, added_at=now)
            )
            added.append(kid)
        elif known[kid].retired_at is not None:
            conn.execute(
                update(PartnerKeyRow).where(PartnerKeyRow.id == known[kid].id).values(retired_at=None)
            )
            added.append(kid)
    return added


def mark_retired(conn: Connection, partner_id: int, kids: Iterable[str], now: datetime) -> list[str]:
    """Retire these keys (still accepted for the grace period); the kids retired."""
    retired = []
    for kid in kids:
        moved = conn.execute(
            update(PartnerKeyRow)
            .where(
                PartnerKeyRow.partner_id == partner_id,
                PartnerKeyRow.kid == kid,
                PartnerKeyRow.retired_at.is_(None),
            )
            .values(retired_at=now)
        ).rowcount
        if moved:
            retired.append(kid)
    return retired


class Partners:
    """The partner registry: every change validated and audited in its transaction."""

    def __init__(self, services: PartnerNeeds) -> None:
        self.services = services

    def _validate(
        self,
        name: str,
        url: str,
        countries: Iterable[str],
        keys: Iterable[str],
        note: str,
        *,
        need_keys: bool,
    ) -> tuple[tuple[str, ...], list[tuple[str, str]]]:
        problems: list[str] = []
        if not valid_name(name):
            problems.append(
                f"the name must be a short lower-case slug (letters, digits, '-'; up to 63): {name!r}"
            )
        if (problem := check_url(url)) is not None:
            problems.append(problem)
        ccs = normalise_countries(countries, problems)
        parsed = parse_keys(keys, problems)
        if need_keys and not parsed and not any("key" in p for p in problems):
            problems.append("a partner needs at least one public key (its `meldpunt keys show`)")
        if len(note) > MAX_NOTE:
            problems.append(f"the note is longer than {MAX_NOTE} characters")
        if problems:
            raise PartnerError(problems)
        return ccs, parsed

    def add(
        self,
        name: str,
        url: str,
        countries: Sequence[str],
        keys: Sequence[str],
        note: str = "",
        *,
        actor: str,
    ) -> Partner:
        """A new partner (or a removed one brought back with these facts)."""
        ccs, parsed = self._validate(name, url, countries, keys, note, need_keys=True)
        now = self.services.clock.now()
        ours = key_ring(self.services).current.kid
        with self.services.engine.begin() as conn:
            row = conn.execute(select(PartnerRow).where(PartnerRow.name == name)).first()
            values = {"url": url, "countries": json.dumps(list(ccs)), "note": note}
            if row is not None and row.removed_at is None:
                raise PartnerError([f"a partner called {name!r} exists (change it with update)"])
            if row is not None:
                conn.execute(
                    update(PartnerRow)
                    .where(PartnerRow.id == row.id)
                    .values(**values, removed_at=None, signs_with=ours)
                )
                pid = row.id
            else:
                pid = conn.execute(
                    insert(PartnerRow)
                    .values(**values, name=name, created_at=now, next_seq=0, signs_with=ours)
                    .returning(PartnerRow.id)
                ).scalar_one()
            store_keys(conn, pid, parsed, now)
            details = {
                **values,
                "countries": list(ccs),
                "kids": [k for k, _ in parsed],
                "revived": row is not None,
            }
            record(conn, AuditEvent(actor, "partner.add", f"partner:{name}", details, at=now))
            partner = load(conn, name)
        assert partner is not None
        return partner

    def update(
        self,
        name: str,
        *,
        url: str | None = None,
        countries: Sequence[str] | None = None,
        add_keys: Sequence[str] = (),
        retire_keys: Sequence[str] = (),
        note: str | None = None,
        actor: str,
    ) -> Partner:
        """Change a partner's address, countries or note; add public keys; retire keys (by kid:
        still accepted for ``keys.grace_days``)."""
        now = self.services.clock.now()
        with self.services.engine.begin() as conn:
            old = load(conn, name)
            if old is None:
                raise PartnerError([f"no partner called {name!r}"])
            new_url = old.url if url is None else url
            new_note = old.note if note is None else note
            ccs, parsed = self._validate(
                name,
                new_url,
                old.countries if countries is None else countries,
                add_keys,
                new_note,
                need_keys=False,
            )
            unknown = [k for k in retire_keys if k not in {pk.kid for pk in old.keys}]
            if unknown:
                raise PartnerError([f"{old.name} has no key {k!r}" for k in unknown])
            conn.execute(
                update(PartnerRow)
                .where(PartnerRow.id == old.id)
                .values(url=new_url, countries=json.dumps(list(ccs)), note=new_note)
            )
            added = store_keys(conn, old.id, parsed, now)
            retired = mark_retired(conn, old.id, retire_keys, now)
            details = {
                "before": {"url": old.url, "countries": list(old.countries), "note": old.note},
                "after": {"url": new_url, "countries": list(ccs), "note": new_note},
                "keys_added": added,
                "keys_retired": retired,
            }
            record(conn, AuditEvent(actor, "partner.update", f"partner:{name}", details, at=now))
            partner = load(conn, name)
        assert partner is not None
        return partner

    def remove(self, name: str, *, actor: str) -> None:
        """Stop exchanging with a partner: its messages are refused as from a removed partner;
        queued messages to it stay queued (shown by ``partner show``) until it is added again."""
        now = self.services.clock.now()
        with self.services.engine.begin() as conn:
            moved = conn.execute(
                update(PartnerRow)
                .where(PartnerRow.name == name, PartnerRow.removed_at.is_(None))
                .values(removed_at=now)
            ).rowcount
            if not moved:
                raise PartnerError([f"no partner called {name!r}"])
            record(conn, AuditEvent(actor, "partner.remove", f"partner:{name}", {}, at=now))

    def get(self, name: str) -> Partner | None:
        with self.services.engine.connect() as conn:
            return load(conn, name)

    def list(self) -> list[Partner]:
        with self.services.engine.connect() as conn:
            return load_all(conn)

    def retry(self, message_id: int, *, actor: str) -> Any:
        """Queue a dead letter again (``partner_send.retry``)."""
        from meldpunt.act.partner_send import retry

        return retry(self.services, message_id, actor=actor)

    def for_country(self, conn: Connection, cc: str) -> Partner | None:
        """The partner covering country ``cc`` (the first by name when several do)."""
        cc = cc.strip().upper()
        for p in load_all(conn):
            if cc in p.countries:
                return p
        return None
