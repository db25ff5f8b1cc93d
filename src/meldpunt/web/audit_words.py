"""The audit log in words: each entry as a sentence ("ana classified item 12 (baseline) — second
opinion") and its remaining details as labelled fields, in the page's language. A new action this
module does not know still shows, as its code: nothing recorded is ever hidden by a missing word.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from meldpunt.audit import AuditEntry
from meldpunt.triage import Classification
from meldpunt.web.i18n import N_
from meldpunt.web.words import Words

SENTENCES = {
    "item.view": N_("{actor} viewed item {item}"),
    "item.claim": N_("{actor} claimed item {item}"),
    "item.release": N_("{actor} released item {item}"),
    "item.reveal": N_("{actor} revealed medium {medium} of item {item}"),
    "item.classify": N_("{actor} classified item {item} ({classification}) — {opinion}"),
    "item.resolve": N_("{actor} resolved the disagreement on item {item} ({classification})"),
    "item.correct": N_("{actor} corrected the decision on item {item} ({classification})"),
    "item.settled_by_list": N_("Item {item} was settled by a hash list"),
    "evidence.access": N_("{actor} opened the kept evidence of medium {medium} (item {item})"),
    "evidence.purge": N_("{actor} deleted kept evidence whose time was up"),
    "links.view": N_("{actor} looked at link analysis ({links})"),
    "links.export": N_("{actor} exported link analysis ({links})"),
    "links.prune": N_("{actor} deleted entities no report or item holds any more"),
    "bank.import": N_("{actor} imported into hash list {bank}"),
    "bank.export": N_("{actor} exported hash list {bank}"),
    "bank.set": N_("{actor} changed hash list {bank}"),
    "bank.delete": N_("{actor} deleted hash list {bank}"),
    "bank.lookup": N_("{actor} looked up a hash in hash list {bank}"),
    "user.add": N_("{actor} added user {user} as {role}"),
    "user.role": N_("{actor} made {user} {role}"),
    "user.disable": N_("{actor} disabled user {user}"),
    "user.enable": N_("{actor} enabled user {user} again"),
    "user.reset_2fa": N_("{actor} reset the second factor of {user}"),
    "staff.login": N_("{actor} signed in"),
    "staff.login_failed": N_("A sign-in failed ({actor})"),
    "staff.enrol": N_("{actor} set up their second factor"),
    "staff.logout": N_("{actor} signed out"),
    "staff.logout_everywhere": N_("{actor} signed out everywhere"),
    "prefs.change": N_("{actor} changed their preferences"),
    "settings.change": N_("{actor} changed the wellness defaults"),
    "audit.export": N_("{actor} exported the audit log"),
    "contact.add": N_("{actor} added abuse contact {contact}"),
    "contact.auto": N_("{actor} added abuse contact {contact} from RDAP"),
    "contact.edit": N_("{actor} changed abuse contact {contact}"),
    "contact.delete": N_("{actor} deleted abuse contact {contact}"),
    "rule.defaults": N_("{actor} set up the default routing rules"),
    "rule.add": N_("{actor} added routing rule {rule}"),
    "rule.edit": N_("{actor} changed routing rule {rule}"),
    "rule.delete": N_("{actor} deleted routing rule {rule}"),
    "takedown.reroute": N_("{actor} sent the takedown of item {item} back to routing"),
    "referral.create": N_("{actor} made police referral package {referral}"),
    "referral.download": N_("{actor} downloaded police referral package {referral}"),
    "referral.verify": N_("{actor} checked police referral package {referral}"),
}
UNKNOWN_ACTION = N_("{actor}: {action} {subject}")
SYSTEM = N_("the system")
ANYONE = N_("someone unknown")

#: the action filter's choices: a name or ``prefix.*``, and its words
ACTION_CHOICES = {
    "item.classify": N_("Classifications"),
    "item.resolve": N_("Resolved disagreements"),
    "item.correct": N_("Corrections"),
    "item.reveal": N_("Reveals"),
    "item.claim": N_("Claims"),
    "item.view": N_("Page views"),
    "item.*": N_("Everything about items"),
    "evidence.*": N_("Kept evidence"),
    "bank.*": N_("Hash lists"),
    "user.*": N_("User administration"),
    "staff.*": N_("Sign-ins and sign-outs"),
    "staff.login_failed": N_("Failed sign-ins"),
    "settings.change": N_("Settings"),
    "contact.*": N_("Abuse contacts"),
    "rule.*": N_("Routing rules"),
    "referral.*": N_("Police referrals"),
}

#: detail fields by their words; a field not here is shown by its name
FIELDS = {
    "medium": N_("medium"),
    "minutes": N_("minutes"),
    "renewed": N_("renewed"),
    "stage": N_("stage"),
    "group": N_("items classified together"),
    "retracted": N_("hashes withdrawn from the own list"),
    "entries": N_("entries"),
    "count": N_("number"),
    "media": N_("media"),
    "purpose": N_("purpose"),
    "reason": N_("reason"),
    "step": N_("step"),
    "unknown_name": N_("attempts with an unknown name"),
    "sessions": N_("sessions"),
    "before": N_("role before"),
    "via": N_("via"),
    "format": N_("format"),
    "policy": N_("policy"),
    "banks_version": N_("hash lists version"),
}
YES, NO = N_("yes"), N_("no")
#: detail values that are codes
VALUES = {
    "via": {"enrol": N_("enrolment")},
    "step": {"password": N_("password"), "second_factor": N_("second factor")},
}


@dataclass(frozen=True)
class Described:
    sentence: str
    #: (label, value) for each detail the sentence does not already say
    fields: list[tuple[str, str]]


def _subject(subject: str) -> dict[str, str]:
    kind, sep, name = subject.partition(":")
    return (
        {kind: name}
        if sep and kind in ("item", "user", "bank", "medium", "contact", "rule", "referral", "links")
        else {}
    )


def actor_words(word: Words, actor: str) -> str:
    if actor == "system":
        return word.t(SYSTEM)
    if actor == "?":
        return word.t(ANYONE)
    return actor


def _value(word: Words, key: str, value: Any) -> str:
    if isinstance(value, bool):
        return word.t(YES if value else NO)
    if key in VALUES and value in VALUES[key]:
        return word.t(VALUES[key][value])
    if key == "stage":
        return word.stage(str(value)) if value != "open" else word.state("needs_review")
    if key in ("before", "role") and isinstance(value, str):
        return word.role(value)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {_value(word, str(k), v)}" for k, v in sorted(value.items()))
    return str(value)


def describe(word: Words, entry: AuditEntry) -> Described:
    """The entry as a sentence and fields, in ``word``'s language."""
    try:
        details = entry.details
    except ValueError:
        details = {}
    details = dict(details) if isinstance(details, Mapping) else {"details": details}
    params: dict[str, str] = {"actor": actor_words(word, entry.actor), **_subject(entry.subject)}
    if "item" in details and "item" not in params:
        params["item"] = str(details.pop("item"))
    if "medium" in details:
        params.setdefault("medium", str(details.pop("medium")))
    if "classification" in details:
        try:
            params["classification"] = word.classification(
                Classification.from_dict(details.pop("classification"))
            )
        except (TypeError, ValueError, KeyError):
            params["classification"] = ""
    if entry.action == "item.classify":
        params["opinion"] = word.opinion(str(details.pop("role", "")))
    elif entry.action in ("item.resolve", "item.correct"):
        details.pop("role", None)
    if entry.action in ("user.add", "user.role"):
        params["role"] = word.role(str(details.pop("role", "")))
    template = SENTENCES.get(entry.action)
    try:
        sentence = word.t(template, **params) if template else ""
    except (KeyError, IndexError):
        sentence = ""
    if not sentence:
        sentence = word.t(UNKNOWN_ACTION, actor=params["actor"], action=entry.action, subject=entry.subject)
    if details.get("group") is False:
        del details["group"]  # the usual case: one item
    fields = [
        (word.t(FIELDS[k]) if k in FIELDS else k, _value(word, k, v)) for k, v in sorted(details.items())
    ]
    return Described(sentence, fields)
