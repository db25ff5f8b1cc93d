"""The signed channel between meldpunt instances (#11 part "wire"), in one place for the parts that
use it: the partner registry (``partner_registry``), ordered durable sending (``partner_send``),
verified exactly-once receiving (``partner_receive``) and key rotation (``partner_keys``). The
envelope itself is pure: ``meldpunt.exchange.envelope``.

Other parts use::

    send(conn, services, "be-hotline", "forward", {...}, key=f"forward:{item_id}")  # in their transaction
    on_delivered("forward", fn)   # fn(conn, message)          in the transaction recording delivery
    on_dead("forward", fn)        # fn(conn, message, reason)  ... a dead letter
    on_message("status", fn)      # fn(services, conn, sender, body, meta); raise Refused(...) to refuse
    Partners(services).for_country(conn, "BE")
"""

from __future__ import annotations

from meldpunt.act.partner_keys import KEYS, announce_keys, our_keys
from meldpunt.act.partner_receive import (
    REFUSALS,
    InMessage,
    InMeta,
    Received,
    Refused,
    off_message,
    on_message,
    receive,
    received,
)
from meldpunt.act.partner_registry import Partner, PartnerError, PartnerKey, PartnerNeeds, Partners
from meldpunt.act.partner_send import (
    PARTNER_SEND,
    OutMessage,
    OutState,
    counts,
    instance_name,
    message,
    messages,
    on_dead,
    on_delivered,
    retry,
    send,
    step_partner_send,
    tick_partners,
)

__all__ = [
    "KEYS",
    "PARTNER_SEND",
    "REFUSALS",
    "InMessage",
    "InMeta",
    "OutMessage",
    "OutState",
    "Partner",
    "PartnerError",
    "PartnerKey",
    "PartnerNeeds",
    "Partners",
    "Received",
    "Refused",
    "announce_keys",
    "counts",
    "instance_name",
    "message",
    "messages",
    "off_message",
    "on_dead",
    "on_delivered",
    "on_message",
    "our_keys",
    "receive",
    "received",
    "retry",
    "send",
    "step_partner_send",
    "tick_partners",
]
