"""The administrator's pages: users (add, change a role, reset the second factor, disable, enable —
each through :class:`~meldpunt.accounts.admin.UserAdmin`, the service the ``meldpunt user``
commands use, so both keep the same rules and each change is audited in its own transaction) and
the audit log (sentences with fields, filters by actor, action and item, pages, a CSV export, page
views hidden or grouped, and whether the chain verifies). Every form carries a session-bound token.
"""

from __future__ import annotations

import csv
import io
from functools import partial
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from meldpunt.accounts import ROLES, CurrentUser
from meldpunt.accounts.admin import AdminError, UserAdmin
from meldpunt.audit import AuditEntry, canonical_time
from meldpunt.audit.query import AuditFilter, export, group_views, read_page
from meldpunt.banks.formats.csv_format import _guard as guard_formula
from meldpunt.web.audit_words import ACTION_CHOICES, describe
from meldpunt.web.context import ctx, staff_language, staff_translator
from meldpunt.web.forms import field, read_form, token_ok
from meldpunt.web.i18n import N_, Translator
from meldpunt.web.staff import accounts, require, staff_page, when_for
from meldpunt.web.words import Words, schemes_of

router = APIRouter(include_in_schema=False)

Users = Annotated[CurrentUser, Depends(require("users.manage"))]
AuditRead = Annotated[CurrentUser, Depends(require("audit.read"))]

#: audit entries on one page
AUDIT_PAGE = 50

#: a refusal of the service, in words
REFUSALS = {
    "unknown_role": N_("Choose one of the roles."),
    "bad_name": N_("A user name has 1 to {max} characters."),
    "short_password": N_("A password has at least {min} characters."),
    "exists": N_("A user named {name} exists already."),
    "no_user": N_("No such user."),
    "last_admin": N_("{name} is the last active administrator: add or enable another administrator first."),
    "yourself": N_("You cannot disable yourself or change your own role."),
}
#: what was done, shown after the redirect
DONE = {
    "role": N_("{name} now has the role {role}; their sessions have ended."),
    "disable": N_("{name} is disabled; their sessions have ended."),
    "enable": N_("{name} can sign in again."),
    "reset_2fa": N_(
        "The second factor of {name} is reset: they set up their authenticator app again at their next sign-in."
    ),
    "same": N_("Nothing changed."),
}
EXPIRED = N_("This form has expired; nothing was done.")


def _purpose(user: CurrentUser) -> str:
    return f"admin-users:{user.session_hash}"


def _words(request: Request) -> Words:
    return Words(Translator(staff_language(request)), schemes_of(request.app.state))


def _users_page(
    request: Request,
    user: CurrentUser,
    *,
    message: str = "",
    status: int = 200,
    added: dict[str, str] | None = None,
    form_name: str = "",
    form_role: str = "analyst",
) -> Response:
    service = accounts(request)
    now = service.clock()
    users = [
        {
            "name": u.name,
            "role": u.role,
            "enrolled": u.enrolled,
            "disabled": u.disabled,
            "locked": u.locked_until is not None and u.locked_until > now,
        }
        for u in service.list_users()
    ]
    return staff_page(
        request,
        "ov_users.html",
        user,
        status,
        users=users,
        roles=ROLES,
        token=ctx(request).tokens.issue(_purpose(user)),
        message=message,
        added=added,
        form_name=form_name,
        form_role=form_role,
    )


@router.get("/admin/users")
def users_page(request: Request, user: Users, done: str = "", name: str = "", role: str = "") -> Response:
    t = staff_translator(request)
    message = ""
    if done in DONE:
        message = t(DONE[done], name=name[:120], role=_words(request).role(role[:20]))
    return _users_page(request, user, message=message)


def _call(admin: UserAdmin, action: str, actor: str, name: str, role: str) -> bool | str:
    """The one service method of ``action``: what it returned (the new password for ``add``)."""
    if action == "add":
        return admin.add(actor, name, role)
    if action == "role":
        return admin.set_role(actor, name, role)
    if action == "disable":
        return admin.disable(actor, name)
    if action == "enable":
        return admin.enable(actor, name)
    admin.reset_2fa(actor, name)
    return True


async def _act(request: Request, user: CurrentUser, action: str) -> Response:
    """Read the form, call the one service method, answer: a redirect with what was done (the
    page with the new password, for ``add``), or the page again with the refusal in words."""
    t = staff_translator(request)
    form = await read_form(request, max_fields=10)
    name = field(form, "name", 200).strip() if form is not None else ""
    role = field(form, "role", 20).strip() if form is not None else ""
    if not token_ok(request, form, _purpose(user)):
        return await run_in_threadpool(partial(_users_page, message=t(EXPIRED), status=400), request, user)
    admin = UserAdmin(accounts(request))
    try:
        done = await run_in_threadpool(_call, admin, action, user.name, name, role)
    except AdminError as e:
        status = 404 if e.code == "no_user" else 409 if e.code in ("exists", "last_admin") else 400
        message = t(REFUSALS[e.code], **e.params)
        kept = (name, role) if action == "add" else ("", "analyst")
        return await run_in_threadpool(
            partial(_users_page, message=message, status=status, form_name=kept[0], form_role=kept[1]),
            request,
            user,
        )
    if isinstance(done, str):
        added = {"name": name, "role": role, "password": done}
        return await run_in_threadpool(partial(_users_page, added=added), request, user)
    query = {"done": action if done else "same", "name": name, **({"role": role} if action == "role" else {})}
    return RedirectResponse("/admin/users?" + urlencode(query), status_code=303)


@router.post("/admin/users/add")
async def add_user(request: Request, user: Users) -> Response:
    """Add a user; the generated password is shown once, on the answer to this form."""
    return await _act(request, user, "add")


@router.post("/admin/users/role")
async def change_role(request: Request, user: Users) -> Response:
    return await _act(request, user, "role")


@router.post("/admin/users/reset-2fa")
async def reset_2fa(request: Request, user: Users) -> Response:
    return await _act(request, user, "reset_2fa")


@router.post("/admin/users/disable")
async def disable_user(request: Request, user: Users) -> Response:
    """Disable a user: they cannot sign in and their sessions end now."""
    return await _act(request, user, "disable")


@router.post("/admin/users/enable")
async def enable_user(request: Request, user: Users) -> Response:
    return await _act(request, user, "enable")


# -- the audit log -----------------------------------------------------------------------------------


def _filter(actor: str, action: str, item: str, views: str) -> AuditFilter:
    number = item.strip().lstrip("#")
    return AuditFilter(
        actor=actor.strip()[:200],
        action=action.strip()[:100],
        item=int(number) if number.isascii() and number.isdigit() and len(number) < 18 else None,
        views=views == "1",
    )


@router.get("/admin/audit")
def audit_page(
    request: Request,
    user: AuditRead,
    actor: str = "",
    action: str = "",
    item: str = "",
    views: str = "",
    before: int | None = None,
) -> Response:
    """The newest entries first, a page at a time; page views left out unless asked for (then
    grouped); and whether the whole chain verifies (else where it first breaks)."""
    chosen = _filter(actor, action, item, views)
    log = ctx(request).services.audit
    found = read_page(log.engine, chosen, before=before, size=AUDIT_PAGE)
    verification = log.verify(max_problems=10)
    word = _words(request)
    when = when_for(request)
    rows = []
    for g in group_views(found.entries):
        d = describe(word, g.entry)
        rows.append(
            {
                "seq": g.entry.seq,
                "at": when(g.entry.at),
                "since": when(g.first.at) if g.first is not None else "",
                "count": g.count,
                "sentence": d.sentence,
                "fields": d.fields,
            }
        )
    query = {
        k: v
        for k, v in (
            ("actor", chosen.actor),
            ("action", chosen.action),
            ("item", str(chosen.item) if chosen.item is not None else ""),
            ("views", "1" if chosen.views else ""),
        )
        if v
    }
    choices = dict(ACTION_CHOICES)
    return staff_page(
        request,
        "ov_audit.html",
        user,
        entries=rows,
        actor=chosen.actor,
        action=chosen.action,
        item=query.get("item", ""),
        views=chosen.views,
        choices=[(code, word.t(name)) for code, name in choices.items()],
        unknown_action=chosen.action if chosen.action and chosen.action not in choices else "",
        total=found.total,
        hidden=found.views_hidden,
        older="/admin/audit?" + urlencode({**query, "before": found.older}) if found.older else "",
        newest="/admin/audit?" + urlencode(query) if before is not None else "",
        csv_url="/admin/audit.csv?" + urlencode(query),
        show_views="/admin/audit?" + urlencode({**query, "views": "1"}),
        verified=verification.ok,
        checked=verification.entries,
        problems=[str(p) for p in verification.problems],
        more=verification.more,
    )


@router.get("/admin/audit.csv")
def audit_csv(
    request: Request, user: AuditRead, actor: str = "", action: str = "", item: str = "", views: str = ""
) -> Response:
    """Every entry the filter matches, oldest first: the sentence in the page's language beside the
    raw fields and the chain's hashes. Cells a spreadsheet would run as a formula are guarded as the
    hash-list CSV writer guards them. The export itself is audited."""
    chosen = _filter(actor, action, item, views)
    word = _words(request)
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["seq", "at", "actor", "action", "subject", "sentence", "details", "prev_hash", "hash"])

    def write(e: AuditEntry) -> None:
        row = [str(e.seq), canonical_time(e.at), e.actor, e.action, e.subject]
        row += [describe(word, e).sentence, e.details_json, e.prev_hash, e.hash]
        w.writerow([guard_formula(c) for c in row])

    export(ctx(request).services.engine, user.name, chosen, write, "csv")
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="audit-log.csv"'},
    )
