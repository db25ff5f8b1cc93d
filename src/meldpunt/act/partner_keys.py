"""Key rotation between partners: after ``meldpunt keys rotate`` a ``keys`` message tells every
partner our accepted public keys; a partner's ``keys`` message updates what we accept from it.

Which key signs the announcement: the OLD one — more precisely, every message to a partner is signed
with the key of ours that partner is known to accept (``partners.signs_with``, our current key when
the partner was added) for as long as we still hold it (``keys.grace_days``). A partner that does not
know our new key yet could not verify a ``keys`` message signed by it; the old key vouches for the
new one. Messages are delivered strictly in order, so every message queued after the announcement
reaches the partner after it: when the announcement is delivered, ``signs_with`` moves to the new key
and everything later is signed with it. A partner configured after the rotation by copying
``GET /api/v1/partner/keys`` has both keys and accepts either.
"""

from __future__ import annotations

import base64
import binascii
import logging
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, update

from meldpunt.act.partner_receive import InMeta, Refused, on_message
from meldpunt.act.partner_registry import Partner, PartnerNeeds, key_ring, load_all, mark_retired, store_keys
from meldpunt.act.partner_send import OutMessage, on_delivered, send
from meldpunt.audit import AuditEvent, record
from meldpunt.store.partners import PartnerKeyRow, PartnerRow
from meldpunt.stores.signing import kid_of

log = logging.getLogger(__name__)

KEYS = "keys"
MAX_KEYS = 20


def our_keys(services: PartnerNeeds, now: datetime) -> dict[str, Any]:
    """What ``GET /api/v1/partner/keys`` serves and a ``keys`` message carries."""
    from meldpunt.act.partner_send import instance_name

    ring = key_ring(services)
    return {
        "name": instance_name(services.settings),
        "current": ring.current.kid,
        "keys": ring.public_keys(now),
    }


def announce_keys(services: PartnerNeeds) -> list[tuple[str, int]]:
    """Queue a ``keys`` message to every partner (after a rotation); ``(partner, message id)``."""
    now = services.clock.now()
    body = our_keys(services, now)
    out = []
    with services.engine.begin() as conn:
        for p in load_all(conn):
            out.append((p.name, send(conn, services, p.name, KEYS, body, key=f"keys:{body['current']}")))
    return out


def _delivered(conn: Connection, message: OutMessage) -> None:
    current = str(message.body.get("current", ""))
    conn.execute(update(PartnerRow).where(PartnerRow.name == message.partner).values(signs_with=current))


def _apply(
    services: PartnerNeeds, conn: Connection, sender: Partner, body: dict[str, Any], meta: InMeta
) -> None:
    keys = body.get("keys")
    if not isinstance(keys, list) or not keys or len(keys) > MAX_KEYS:
        raise Refused(f"keys must be a list of 1 to {MAX_KEYS} keys", code="bad_keys")
    listed: list[tuple[str, str]] = []
    retired: list[str] = []
    for k in keys:
        if (
            not isinstance(k, dict)
            or not isinstance(k.get("public"), str)
            or not isinstance(k.get("kid"), str)
        ):
            raise Refused("each key needs kid and public", code="bad_keys")
        try:
            raw = base64.b64decode(k["public"], validate=True)
        except (binascii.Error, ValueError):
            raise Refused(f"key {k['kid']!r} is not base64", code="bad_keys") from None
        if len(raw) != 32 or kid_of(raw) != k["kid"]:
            raise Refused(f"key {k['kid']!r} does not match its public key", code="bad_keys")
        listed.append((k["kid"], k["public"]))
        if k.get("retired"):
            retired.append(k["kid"])
    if body.get("current") not in {kid for kid, _ in listed} or body.get("current") in retired:
        raise Refused("current must name a listed key that is not retired", code="bad_keys")
    now = meta.received_at
    added = store_keys(conn, sender.id, [(kid, pub) for kid, pub in listed if kid not in retired], now)
    known = {k.kid for k in sender.keys}
    for kid, pub in listed:  # a retired key we never had: still accepted for its grace period
        if kid in retired and kid not in known:
            conn.execute(
                insert(PartnerKeyRow).values(
                    partner_id=sender.id, kid=kid, public=pub, added_at=now, retired_at=now
                )
            )
    dropped = [k.kid for k in sender.keys if k.kid not in {kid for kid, _ in listed} or k.kid in retired]
    gone = mark_retired(conn, sender.id, dropped, now)
    details = {"added": added, "retired": gone, "current": body["current"], "message": meta.message_id}
    record(
        conn,
        AuditEvent(f"partner:{sender.name}"[:200], "partner.keys", f"partner:{sender.name}", details, at=now),
    )
    log.info("partner %s announced its keys: added %s, retired %s", sender.name, added, gone)


def install() -> None:
    on_message(KEYS, _apply)
    on_delivered(KEYS, _delivered)


install()
