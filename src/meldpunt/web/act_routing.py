"""Abuse contacts, routing rules and takedowns waiting for a senior, on the web (#10 part
"routing"); and the "Action" panel of the analyst's item page.

Seniors (``contacts.manage``) list, search, add, edit and delete contacts and rules: plain POST
forms with the workspace's form tokens, no JavaScript, every change audited by the service
(:mod:`meldpunt.act.contacts`) in its transaction. ``/act/attention`` lists the takedowns routing
could not send anywhere (``no_contact``) or held for a senior (``held``), each with what to do and
a button to route it again once that is done.

The panel (``act_routing_panel.html``, included by ``ws_item.html``) shows the item's takedown: its
state, its route as sentences (each line of ``takedowns.route`` is a code with values:
:data:`ROUTE_LINES`), and the action timeline with time and actor (:data:`EVENTS`). It is a Jinja
global (``act_routing_panel``) so the item page's route needs no change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response

from meldpunt.accounts import CurrentUser, allowed
from meldpunt.act import contacts as contact_service
from meldpunt.act import routing as routing_service
from meldpunt.act.contacts import SCOPES, ContactError, NotFound
from meldpunt.act.context import ActNeeds
from meldpunt.domain.acting import EventKind, TakedownState
from meldpunt.triage.search import Page
from meldpunt.web.context import ctx, staff_translator
from meldpunt.web.forms import field, read_form, token_ok
from meldpunt.web.i18n import N_, Translator
from meldpunt.web.lists import bounds, pager
from meldpunt.web.staff import require, staff_page

router = APIRouter(include_in_schema=False)
Manage = Annotated[CurrentUser, Depends(require("contacts.manage"))]

#: what ``?msg=`` may say (never text taken from the request; translated when shown)
MESSAGES = {
    "saved": N_("Saved."),
    "deleted": N_("Deleted."),
    "rerouted": N_("The takedown will be routed again in a moment."),
}
SCOPE_WORDS = {
    "domain": N_("domain (and its subdomains)"),
    "network": N_("network (CIDR)"),
    "asn": N_("AS number"),
    "provider": N_("provider (by name)"),
}
CHANNEL_WORDS = {"email": N_("e-mail"), "webhook": N_("webhook"), "none": N_("none (sent by hand)")}
ACTION_WORDS = {
    "notice": N_("notice to the provider"),
    "forward": N_("forward to a partner hotline"),
    "none": N_("no action"),
}
STATE_WORDS: dict[str, str] = {
    TakedownState.TO_LOCATE: N_("being located"),
    TakedownState.TO_ROUTE: N_("being routed"),
    TakedownState.TO_NOTICE: N_("notice to be sent"),
    TakedownState.TO_FORWARD: N_("to be forwarded"),
    TakedownState.NO_CONTACT: N_("nobody to notice"),
    TakedownState.HELD: N_("held for a senior"),
    TakedownState.NOTICED: N_("noticed"),
    TakedownState.FORWARDED: N_("forwarded to a partner hotline"),
    TakedownState.REMOVED: N_("removed"),
    TakedownState.CLOSED: N_("closed"),
}
#: the sentence of each line of a route (``takedowns.route["lines"]``), its values by name
ROUTE_LINES = {
    "location_unknown": N_("Where it is hosted is not known yet."),
    "country_home": N_("Hosted in our country ({country}): a notice to the provider."),
    "country_partner": N_("Hosted in {country}, the country of partner hotline {partner}."),
    "country_other": N_("Hosted abroad ({country}): a notice to the provider directly."),
    "country_unknown": N_("The country is not known: the rule for anywhere else applies."),
    "rule_none": N_("The rule for {country} says: no action. Closed."),
    "contact_domain": N_("Abuse contact for the domain {match}: {name}."),
    "contact_network": N_("Abuse contact for the network {match}: {name}."),
    "contact_asn": N_("Abuse contact for AS{match}: {name}."),
    "contact_provider": N_("Abuse contact for the provider {match}: {name}."),
    "contact_rdap": N_(
        "No contact on file: the abuse address from RDAP ({email}) was added as a contact for {match}."
    ),
    "rdap_invalid": N_("RDAP gave an abuse address that is not valid ({email})."),
    "no_contact": N_("Nobody to send a notice to: add an abuse contact."),
    "cdn": N_("Behind a CDN ({cdn}): the notice asks it to name the origin host."),
    "do_not_contact": N_("{name} must not be contacted: held for a senior."),
    "not_accepting": N_("{name} does not accept notices about this material: held for a senior."),
    "no_channel": N_("{name} has no channel meldpunt can send by: held for a senior."),
    "contact_suspect": N_("Deliveries to {name} failed before ({reason}): check the address."),
    "police": N_("A police referral is due by the rule."),
    "notice": N_("A notice goes out by {channel}."),
    "forward": N_("To be forwarded to {partner}."),
    "partner_unknown": N_("No partner hotline {partner} is configured: held for a senior."),
}
UNKNOWN_LINE = N_("({code})")
#: the timeline's lines in words (other parts' kinds without values; unknown ones as their code)
EVENTS: dict[str, str] = {
    EventKind.TAKEDOWN_OPENED: N_("Found illegal: a takedown was opened."),
    EventKind.LOCATED: N_("Located."),
    EventKind.ROUTED: N_("Routed: {state}."),
    EventKind.NOTICE_QUEUED: N_("Added to a notice."),
    EventKind.NOTICE_SENT: N_("Notice sent."),
    EventKind.REMINDER_SENT: N_("Reminder sent."),
    EventKind.DELIVERY_FAILED: N_("A delivery failed."),
    EventKind.ESCALATED: N_("Escalated."),
    EventKind.POLICE_DUE: N_("A police referral is due."),
    EventKind.PROVIDER_REMOVED: N_("The provider says it is removed."),
    EventKind.PROVIDER_DISPUTED: N_("The provider disputes it."),
    EventKind.REPLY_RECORDED: N_("A reply was recorded."),
    EventKind.CHECKED_ONLINE: N_("Checked: still online."),
    EventKind.CHECKED_MISSING: N_("Checked: not found."),
    EventKind.REMOVED: N_("Removed."),
    EventKind.MOVED: N_("Moved to another host."),
    EventKind.FORWARD_PENDING: N_("To be forwarded to {partner}."),
    EventKind.CLOSED: N_("Closed."),
    EventKind.ALERT_RAISED: N_("Urgent alert raised."),
    EventKind.ALERT_SENT: N_("Urgent alert sent."),
    EventKind.ALERT_ESCALATED: N_("Urgent alert escalated."),
    EventKind.ALERT_ACKNOWLEDGED: N_("Urgent alert acknowledged."),
    EventKind.CONTACT_SUSPECT: N_("The contact was marked suspect."),
    EventKind.FORWARD_QUEUED: N_("Forwarded to {partner} (our reference {reference})."),
    EventKind.FORWARD_SENT: N_("The forward was delivered to {partner}."),
    EventKind.FORWARD_FAILED: N_("The forward to {partner} failed: {reason}."),
    EventKind.PARTNER_STATUS: N_("Partner {partner}: {status}."),
    EventKind.FORWARD_RECEIVED: N_("Forwarded to us by {partner} (their reference {reference})."),
    EventKind.CYBERTIP_EXPORTED: N_("In a CyberTipline export ({files} files)."),
    EventKind.ICCAM_EXPORTED: N_("Sent to ICCAM ({what})."),
    EventKind.ICCAM_IMPORTED: N_("From ICCAM ({what}): {action}."),
    EventKind.ICCAM_FAILED: N_("ICCAM did not take the {what}: {reason}"),
    EventKind.REFERRAL_EXPORTED: N_("Referred to the police: package {reference}."),
}
#: the statuses a partner hotline sends back (#11), as the timeline says them
PARTNER_STATUS_WORDS = {
    "received": N_("received"),
    "assessed": N_("assessed"),
    "notice_sent": N_("notice sent to the provider"),
    "removed": N_("removed"),
    "not_illegal": N_("not illegal there"),
    "unavailable": N_("could not reach it"),
}
ROUTED_AGAIN = N_("Sent back to routing (was: {state}).")
#: a notice's own "closed" line (no item: every URL in it is answered for), not the takedown's
NOTICE_CLOSED = N_("The notice was closed.")
SYSTEM = N_("the system")
#: what a senior does about a takedown waiting for them, by the reason routing gave
TODO = {
    "no_contact": N_(
        "Add an abuse contact for its domain, network, AS number or provider (or a rule), then route it again."
    ),
    "do_not_contact": N_(
        "Decide: refer it to the police or a partner hotline, or change the contact and route it again."
    ),
    "not_accepting": N_(
        "Find another way to have it removed (the police, a partner hotline, the registrar), or route it again."
    ),
    "no_channel": N_(
        "Send the notice by hand, or give the contact an e-mail address or webhook and route it again."
    ),
    "partner_unknown": N_(
        "Add the partner hotline (meldpunt partner add) or change the routing rule, then route it again."
    ),
}
#: the service's problems (``act.contacts``), so the catalogues hold them
PROBLEMS = (
    N_("scope must be one of {choices}"),
    N_("say what the contact is for (a domain, network, AS number or provider)"),
    N_("{field}: at most {n} characters"),
    N_("{value} is not a domain name (like example.com)"),
    N_("{value} is not a network (like 192.0.2.0/24 or 2001:db8::/32)"),
    N_("{value} is not an AS number (like AS64496)"),
    N_("say the provider's name"),
    N_("channel must be one of {choices}"),
    N_("{value} is not an e-mail address: {why}"),
    N_("{value} is not a webhook address: {why}"),
    N_("{value} is not a language code (like nl, fr or en)"),
    N_("{value} is not a country code (two letters, like BE) or *"),
    N_("action must be one of {choices}"),
    N_("say which partner hotline it is forwarded to"),
    N_("a partner hotline goes with the action forward only"),
    N_("not a category: {value}"),
    N_("position is a whole number from -9999 to 9999"),
    N_("there is a contact for {scope} {match} already: edit that one"),
)
CONTACT_FIELDS = ("scope", "match", "name", "channel", "address", "language", "note")
CONTACT_FLAGS = ("accepts", "do_not_contact", "cdn")
RULE_FIELDS = ("country", "action", "partner", "police_categories", "position", "note")


# -- words ----------------------------------------------------------------------------------------------


def _values(d: dict[str, Any]) -> dict[str, str]:
    return {k: ", ".join(map(str, v)) if isinstance(v, list) else str(v) for k, v in d.items()}


def _say(_: Translator, message: str, values: dict[str, Any]) -> str:
    try:
        return _(message, **_values(values))
    except (KeyError, IndexError, ValueError):
        return _(message) if "{" not in message else f"{message} {values}"


def explain(route: dict[str, Any], _: Translator) -> list[str]:
    """A route's lines as sentences in the page's language."""
    out = []
    for line in route.get("lines", []):
        code = str(line.get("code", ""))
        values = {k: v for k, v in line.items() if k != "code"}
        if code.startswith("contact_") and not values.get("name"):
            values["name"] = values.get("match", "")
        if code == "notice":
            values["channel"] = _(
                CHANNEL_WORDS.get(str(values.get("channel")), "{channel}"), **_values(values)
            )
        out.append(_say(_, ROUTE_LINES[code], values) if code in ROUTE_LINES else _(UNKNOWN_LINE, code=code))
    return out


def event_words(kind: str, detail: dict[str, Any], _: Translator) -> str:
    if kind == EventKind.ROUTED and detail.get("again"):
        return _(ROUTED_AGAIN, state=_(STATE_WORDS.get(str(detail.get("was")), str(detail.get("was")))))
    if kind == EventKind.ROUTED:
        state = str(detail.get("state", ""))
        return _(EVENTS[EventKind.ROUTED], state=_(STATE_WORDS[state]) if state in STATE_WORDS else state)
    if kind == EventKind.PARTNER_STATUS:
        status = str(detail.get("status", ""))
        words = _(PARTNER_STATUS_WORDS[status]) if status in PARTNER_STATUS_WORDS else status
        return _(EVENTS[EventKind.PARTNER_STATUS], partner=str(detail.get("partner", "")), status=words)
    if kind in EVENTS:
        return _say(_, EVENTS[kind], detail)
    return _(UNKNOWN_LINE, code=kind)


def _problems(e: ContactError, _: Translator) -> list[str]:
    return [_(p.message, **p.values) for p in e.problems]


def state_words(state: str, _: Translator) -> str:
    return _(STATE_WORDS[state]) if state in STATE_WORDS else state


# -- the item page's panel --------------------------------------------------------------------------------


def panel(services: ActNeeds) -> Callable[[int, str | None, Translator], dict[str, Any] | None]:
    """The Jinja global ``act_routing_panel(item_id, role, t)``: the item's takedown and timeline
    in words, or None (no takedown and no timeline, or a role without ``actions.view``)."""

    def build(item_id: int, role: str | None, t: Translator) -> dict[str, Any] | None:
        if not allowed(role, "actions.view"):
            return None
        td = routing_service.takedown_of(services, item_id)
        events = routing_service.timeline_of(services, item_id)
        if td is None and not events:
            return None
        return {
            "takedown": td,
            "state": state_words(td.state, t) if td else "",
            "lines": explain(td.route, t) if td else [],
            "events": [
                {
                    "at": e.at,
                    "actor": t(SYSTEM) if e.actor == "system" else e.actor,
                    "words": t(NOTICE_CLOSED)
                    if e.kind == EventKind.CLOSED and e.item_id is None
                    else event_words(e.kind, e.detail, t),
                }
                for e in events
            ],
        }

    return build


def install(app: FastAPI) -> None:
    """The pages, and the item page's panel as a template global."""
    app.include_router(router)
    app.state.ctx.env.globals["act_routing_panel"] = panel(app.state.ctx.services)


# -- plumbing ---------------------------------------------------------------------------------------------


def _services(request: Request) -> ActNeeds:
    return ctx(request).services


def _purpose(kind: str, user: CurrentUser, key: object = "") -> str:
    return f"act-{kind}:{key}:{user.session_hash}"


def _page(request: Request, template: str, user: CurrentUser, status: int = 200, **values: Any) -> Response:
    _ = staff_translator(request)
    return staff_page(
        request,
        template,
        user,
        status,
        scope_words={k: _(v) for k, v in SCOPE_WORDS.items()},
        channel_words={k: _(v) for k, v in CHANNEL_WORDS.items()},
        action_words={k: _(v) for k, v in ACTION_WORDS.items()},
        **values,
    )


def _expired(request: Request, user: CurrentUser, back: str) -> Response:
    _ = staff_translator(request)
    return staff_page(
        request,
        "ws_message.html",
        user,
        400,
        heading=_("This form has expired"),
        message=_("Nothing was saved. Open the page again and repeat what you did."),
        back=back,
    )


def _message(request: Request, msg: str) -> str:
    return staff_translator(request)(MESSAGES[msg]) if msg in MESSAGES else ""


def _id(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 12:
        raise HTTPException(404)
    return int(text)


def _form_values(form: FormData, names: tuple[str, ...], flags: tuple[str, ...] = ()) -> dict[str, str]:
    values = {n: field(form, n, 2100) for n in names}
    for f in flags:  # a checkbox left empty is not sent: say "no" explicitly
        values[f] = "1" if field(form, f) else "0"
    return values


# -- contacts ----------------------------------------------------------------------------------------------


@router.get("/act/contacts")
def contacts_page(
    request: Request,
    user: Manage,
    q: str = "",
    scope: str = "",
    page: str = "",
    size: str = "",
    msg: str = "",
) -> Response:
    number, per_page = bounds(page, size)
    wanted = scope if scope in SCOPES else ""
    search = q.strip()[:200]
    rows, total = contact_service.list_contacts(
        _services(request), search=search, scope=wanted, limit=per_page, offset=(number - 1) * per_page
    )
    return _page(
        request,
        "act_routing_contacts.html",
        user,
        known=[c["name"] for c in contact_service.KNOWN_CDNS if c["scope"] == "provider"],
        known_token=ctx(request).tokens.issue(_purpose("known", user)),
        contacts=rows,
        q=search,
        scope=wanted,
        scopes=SCOPES,
        pager=pager(request, Page(rows, total, number, per_page)),
        message=_message(request, msg),
    )


def _contact_form(
    request: Request,
    user: CurrentUser,
    contact: contact_service.ContactView | None,
    values: dict[str, Any],
    errors: list[str],
    status: int = 200,
) -> Response:
    key = contact.id if contact else "new"
    return _page(
        request,
        "act_routing_contact.html",
        user,
        status,
        contact=contact,
        values=values,
        errors=errors,
        scopes=SCOPES,
        channels=contact_service.CHANNELS,
        token=ctx(request).tokens.issue(_purpose("contact", user, key)),
        delete_token=ctx(request).tokens.issue(_purpose("contact-delete", user, key)) if contact else "",
        message=_message(request, request.query_params.get("msg", "")),
    )


@router.post("/act/contacts/known")
async def contacts_known(request: Request, user: Manage) -> Response:
    """Add the CDN contacts meldpunt ships (those not there yet; a senior's own are kept)."""
    form = await read_form(request, max_fields=5)
    if form is None or not token_ok(request, form, _purpose("known", user)):
        return await run_in_threadpool(_expired, request, user, "/act/contacts")
    await run_in_threadpool(contact_service.seed_known_contacts, _services(request), user.name)
    return RedirectResponse("/act/contacts?msg=saved", status_code=303)


@router.get("/act/contacts/new")
def contact_new(request: Request, user: Manage, scope: str = "", match: str = "") -> Response:
    values = {
        "scope": scope if scope in SCOPES else "domain",
        "match": match[:255],
        "channel": "email",
        "accepts": True,
    }
    return _contact_form(request, user, None, values, [])


@router.get("/act/contacts/{contact_id}")
def contact_page(request: Request, contact_id: str, user: Manage) -> Response:
    try:
        c = contact_service.get_contact(_services(request), _id(contact_id))
    except NotFound:
        raise HTTPException(404) from None
    return _contact_form(request, user, c, c.__dict__, [])


@router.post("/act/contacts")
async def contact_add(request: Request, user: Manage) -> Response:
    form = await read_form(request, max_fields=20)
    if form is None or not token_ok(request, form, _purpose("contact", user, "new")):
        return await run_in_threadpool(_expired, request, user, "/act/contacts/new")
    values = _form_values(form, CONTACT_FIELDS, CONTACT_FLAGS)
    try:
        c = await run_in_threadpool(contact_service.add_contact, _services(request), values, user.name)
    except ContactError as e:
        _ = staff_translator(request)
        return await run_in_threadpool(_contact_form, request, user, None, values, _problems(e, _), 422)
    return RedirectResponse(f"/act/contacts/{c.id}?msg=saved", status_code=303)


@router.post("/act/contacts/{contact_id}")
async def contact_edit(request: Request, contact_id: str, user: Manage) -> Response:
    cid = _id(contact_id)
    form = await read_form(request, max_fields=20)
    if form is None or not token_ok(request, form, _purpose("contact", user, cid)):
        return await run_in_threadpool(_expired, request, user, f"/act/contacts/{cid}")
    values = _form_values(form, CONTACT_FIELDS, CONTACT_FLAGS)
    try:
        await run_in_threadpool(contact_service.edit_contact, _services(request), cid, values, user.name)
    except NotFound:
        raise HTTPException(404) from None
    except ContactError as e:
        _ = staff_translator(request)
        c = await run_in_threadpool(contact_service.get_contact, _services(request), cid)
        return await run_in_threadpool(_contact_form, request, user, c, values, _problems(e, _), 422)
    return RedirectResponse(f"/act/contacts/{cid}?msg=saved", status_code=303)


@router.post("/act/contacts/{contact_id}/delete")
async def contact_delete(request: Request, contact_id: str, user: Manage) -> Response:
    return await _delete(
        request, user, "contact", _id(contact_id), contact_service.delete_contact, "/act/contacts"
    )


async def _delete(
    request: Request, user: CurrentUser, what: str, row_id: int, delete: Callable[..., None], back: str
) -> Response:
    """A senior's delete of a contact or a rule: the form token for ``what``, then back to the list."""
    form = await read_form(request, max_fields=5)
    if form is None or not token_ok(request, form, _purpose(f"{what}-delete", user, row_id)):
        return await run_in_threadpool(_expired, request, user, f"{back}/{row_id}")
    try:
        await run_in_threadpool(delete, _services(request), row_id, user.name)
    except NotFound:
        raise HTTPException(404) from None
    return RedirectResponse(f"{back}?msg=deleted", status_code=303)


# -- rules ---------------------------------------------------------------------------------------------------


def _rules_page(
    request: Request,
    user: CurrentUser,
    rule: contact_service.RuleView | None = None,
    values: dict[str, Any] | None = None,
    errors: list[str] | None = None,
    status: int = 200,
) -> Response:
    services = _services(request)
    rules = contact_service.list_rules(services)
    tokens = ctx(request).tokens
    key = rule.id if rule else "new"
    return _page(
        request,
        "act_routing_rules.html",
        user,
        status,
        rules=rules,
        rule=rule,
        values=values or {"country": "", "action": "notice", "position": "0"},
        errors=errors or [],
        actions=contact_service.ACTIONS,
        home_country=services.settings.act.home_country,
        token=tokens.issue(_purpose("rule", user, key)),
        delete_token=tokens.issue(_purpose("rule-delete", user, key)) if rule else "",
        message=_message(request, request.query_params.get("msg", "")),
    )


def _rule_values(r: contact_service.RuleView) -> dict[str, Any]:
    return {**r.__dict__, "police_categories": ", ".join(r.police_categories), "position": str(r.position)}


@router.get("/act/rules")
def rules_page(request: Request, user: Manage) -> Response:
    return _rules_page(request, user)


@router.get("/act/rules/{rule_id}")
def rule_page(request: Request, rule_id: str, user: Manage) -> Response:
    try:
        r = contact_service.get_rule(_services(request), _id(rule_id))
    except NotFound:
        raise HTTPException(404) from None
    return _rules_page(request, user, r, _rule_values(r))


@router.post("/act/rules")
async def rule_add(request: Request, user: Manage) -> Response:
    form = await read_form(request, max_fields=20)
    if form is None or not token_ok(request, form, _purpose("rule", user, "new")):
        return await run_in_threadpool(_expired, request, user, "/act/rules")
    values = _form_values(form, RULE_FIELDS, ("police",))
    try:
        await run_in_threadpool(contact_service.add_rule, _services(request), values, user.name)
    except ContactError as e:
        _ = staff_translator(request)
        return await run_in_threadpool(_rules_page, request, user, None, values, _problems(e, _), 422)
    return RedirectResponse("/act/rules?msg=saved", status_code=303)


@router.post("/act/rules/{rule_id}")
async def rule_edit(request: Request, rule_id: str, user: Manage) -> Response:
    rid = _id(rule_id)
    form = await read_form(request, max_fields=20)
    if form is None or not token_ok(request, form, _purpose("rule", user, rid)):
        return await run_in_threadpool(_expired, request, user, f"/act/rules/{rid}")
    values = _form_values(form, RULE_FIELDS, ("police",))
    try:
        await run_in_threadpool(contact_service.edit_rule, _services(request), rid, values, user.name)
    except NotFound:
        raise HTTPException(404) from None
    except ContactError as e:
        _ = staff_translator(request)
        r = await run_in_threadpool(contact_service.get_rule, _services(request), rid)
        return await run_in_threadpool(_rules_page, request, user, r, values, _problems(e, _), 422)
    return RedirectResponse("/act/rules?msg=saved", status_code=303)


@router.post("/act/rules/{rule_id}/delete")
async def rule_delete(request: Request, rule_id: str, user: Manage) -> Response:
    return await _delete(request, user, "rule", _id(rule_id), contact_service.delete_rule, "/act/rules")


# -- takedowns waiting for a senior -----------------------------------------------------------------------------


def _todo(td: routing_service.TakedownView) -> str:
    codes = [str(line.get("code")) for line in td.route.get("lines", [])]
    for code in reversed(codes):
        if code in TODO:
            return TODO[code]
    return TODO["no_contact"]


@router.get("/act/attention")
def attention_page(request: Request, user: Manage, page: str = "", size: str = "", msg: str = "") -> Response:
    _ = staff_translator(request)
    number, per_page = bounds(page, size)
    rows, total = routing_service.attention(
        _services(request), limit=per_page, offset=(number - 1) * per_page
    )
    tokens = ctx(request).tokens
    return _page(
        request,
        "act_routing_attention.html",
        user,
        takedowns=[
            {
                "td": td,
                "state": state_words(td.state, _),
                "lines": explain(td.route, _),
                "todo": _(_todo(td)),
                "token": tokens.issue(_purpose("reroute", user, td.id)),
            }
            for td in rows
        ],
        pager=pager(request, Page(rows, total, number, per_page)),
        message=_message(request, msg),
    )


@router.post("/act/takedowns/{takedown_id}/reroute")
async def reroute(request: Request, takedown_id: str, user: Manage) -> Response:
    tid = _id(takedown_id)
    form = await read_form(request, max_fields=5)
    if form is None or not token_ok(request, form, _purpose("reroute", user, tid)):
        return await run_in_threadpool(_expired, request, user, "/act/attention")
    try:
        await run_in_threadpool(routing_service.reroute, _services(request), tid, user.name)
    except routing_service.RerouteError:
        _ = staff_translator(request)
        return await run_in_threadpool(
            lambda: staff_page(
                request,
                "ws_message.html",
                user,
                409,
                heading=_("Not waiting any more"),
                message=_("Someone routed this takedown meanwhile: nothing was changed."),
                back="/act/attention",
            )
        )
    except LookupError:
        raise HTTPException(404) from None
    return RedirectResponse("/act/attention?msg=rerouted", status_code=303)


__all__ = ["explain", "install", "panel", "router"]
