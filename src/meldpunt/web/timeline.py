"""An item's history (:mod:`meldpunt.triage.history`) as sentences in the page's language: one
whole sentence per kind of event, so each language puts the words in its own order; the viewer's
own steps say "you"."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from meldpunt.triage.history import Event
from meldpunt.web.i18n import N_, Translator
from meldpunt.web.words import Words

SENTENCES = {
    "received": N_("Received: {source}."),
    "reported_again": N_("Reported again: {source}."),
    "not_fetched": N_("Could not be fetched: {state}."),
    "settled_by_list": N_("Settled by a hash list: every medium is on one, nobody had to look."),
    "claimed": N_("Claimed by {who}."),
    "released": N_("Given back to the queue by {who}."),
    "revealed": N_("Medium {medium} revealed by {who}."),
    "opinion": N_("{opinion} given by {who}."),
    "decided": N_("The classification became final."),
}


@dataclass(frozen=True)
class Line:
    at: datetime
    what: str
    text: str


def _who(actor: str, viewer: str, _: Translator) -> str:
    if actor == viewer:
        return _("you")
    return _("the system") if actor == "system" else actor


def sentence(e: Event, viewer: str, word: Words) -> str:
    """The event as one sentence for ``viewer``."""
    _ = word.t
    who = _who(e.actor, viewer, _)
    p = e.params
    if e.what == "fetched":
        return _.ngettext("Fetched: {n} medium found.", "Fetched: {n} media found.", int(p.get("n", 0)))
    if e.what == "matched":
        return _.ngettext(
            "Matched against the hash lists: {known} of {n} medium on a list.",
            "Matched against the hash lists: {known} of {n} media on a list.",
            int(p.get("n", 0)),
            known=p.get("known", 0),
        )
    if e.what == "viewed":
        return _.ngettext("Viewed by {who}.", "Viewed {n} times by {who}.", int(p.get("n", 1)), who=who)
    if e.what in ("received", "reported_again"):
        return _(SENTENCES[e.what], source=word.source(e.actor))
    if e.what == "not_fetched":
        return _(SENTENCES[e.what], state=word.state(str(p.get("state", ""))))
    if e.what == "revealed":
        return _(SENTENCES[e.what], medium=p.get("medium", "?"), who=who)
    if e.what == "opinion":
        return _(SENTENCES[e.what], opinion=word.opinion(str(p.get("role", ""))).capitalize(), who=who)
    if e.what in SENTENCES:
        return _(SENTENCES[e.what], who=who)
    return e.what


def lines(events: list[Event], viewer: str, word: Words) -> list[Line]:
    return [Line(e.at, e.what, sentence(e, viewer, word)) for e in events]
