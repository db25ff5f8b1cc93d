"""Locate and act: the states of a takedown, a notice, a delivery and an alert, and the kinds of
events on an item's action timeline. No I/O: the rules that move between them live beside them
(``meldpunt.act``), each conditional on the state it moves from.

A takedown (one per acted-on item) walks::

    to_locate -> to_route -> to_notice -> noticed -> removed
                          \\-> to_forward -> forwarded -> removed   (a partner hotline's country: #11)
                          \\-> no_contact            (nobody to notice: a senior adds a contact)
                          \\-> held                  (do-not-contact / does not accept: senior, police)
                          \\-> closed                (routing said: no action)
    noticed -(re-check sees it elsewhere)-> to_locate   (a move: located and routed again)
"""

from __future__ import annotations

from enum import StrEnum


class TakedownState(StrEnum):
    TO_LOCATE = "to_locate"
    TO_ROUTE = "to_route"
    TO_NOTICE = "to_notice"
    TO_FORWARD = "to_forward"
    NO_CONTACT = "no_contact"
    HELD = "held"
    NOTICED = "noticed"
    #: sent to the partner hotline of the hosting country, which notices the provider and reports back
    FORWARDED = "forwarded"
    REMOVED = "removed"
    CLOSED = "closed"


#: takedowns whose URL is re-checked until it is gone
MONITORED_STATES = frozenset(
    {
        TakedownState.TO_NOTICE,
        TakedownState.TO_FORWARD,
        TakedownState.NO_CONTACT,
        TakedownState.HELD,
        TakedownState.NOTICED,
        TakedownState.FORWARDED,
    }
)


class NoticeState(StrEnum):
    #: gathering items for its contact until ``send_after``
    COLLECTING = "collecting"
    #: its first message is in the outbox, not yet delivered (a new notice collects meanwhile)
    SENDING = "sending"
    #: sent; reminders follow while any of its items is online
    SENT = "sent"
    #: every item is removed (or answered for good)
    CLOSED = "closed"
    #: could not be delivered after every attempt (its contact is marked suspect)
    FAILED = "failed"


class DeliveryState(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    #: attempts spent, or refused for good (invalid address, recipient refused)
    FAILED = "failed"
    BOUNCED = "bounced"


class AlertState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"


class RouteAction(StrEnum):
    NOTICE = "notice"
    FORWARD = "forward"
    NONE = "none"


class EventKind(StrEnum):
    """What an action-timeline line says happened."""

    #: found illegal (an analyst's final decision or a hash list's label): a takedown is opened
    TAKEDOWN_OPENED = "takedown_opened"
    LOCATED = "located"
    ROUTED = "routed"
    NOTICE_QUEUED = "notice_queued"
    NOTICE_SENT = "notice_sent"
    REMINDER_SENT = "reminder_sent"
    DELIVERY_FAILED = "delivery_failed"
    ESCALATED = "escalated"
    POLICE_DUE = "police_due"
    PROVIDER_REMOVED = "provider_removed"
    PROVIDER_DISPUTED = "provider_disputed"
    REPLY_RECORDED = "reply_recorded"
    CHECKED_ONLINE = "checked_online"
    CHECKED_MISSING = "checked_missing"
    REMOVED = "removed"
    MOVED = "moved"
    FORWARD_PENDING = "forward_pending"
    CLOSED = "closed"
    ALERT_RAISED = "alert_raised"
    ALERT_SENT = "alert_sent"
    ALERT_ESCALATED = "alert_escalated"
    ALERT_ACKNOWLEDGED = "alert_acknowledged"
    CONTACT_SUSPECT = "contact_suspect"
    # across borders (#11)
    FORWARD_QUEUED = "forward_queued"
    FORWARD_SENT = "forward_sent"
    FORWARD_FAILED = "forward_failed"
    #: a status the partner hotline sent back (detail: which — received, assessed, notice_sent,
    #: removed, not_illegal, unavailable — and its facts)
    PARTNER_STATUS = "partner_status"
    #: a forwarded item taken in from a partner (on the receiver's side)
    FORWARD_RECEIVED = "forward_received"
    REFERRAL_EXPORTED = "referral_exported"
    ICCAM_EXPORTED = "iccam_exported"
    ICCAM_IMPORTED = "iccam_imported"
    #: a CyberTipline-style XML export that named the item (detail: files, the XML's SHA-256)
    CYBERTIP_EXPORTED = "cybertip_exported"
    #: an export to ICCAM failed for good (ICCAM refused it, or every attempt failed): detail says why
    ICCAM_FAILED = "iccam_failed"
