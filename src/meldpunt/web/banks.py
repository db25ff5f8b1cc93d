"""Hash banks on the web, for seniors (``banks.manage``): the banks and their sizes, one bank's
settings, import history and an exact look-up, importing a list file, changing a bank's settings and
deleting a bank. What ``meldpunt bank`` does, audited under the same actions (``bank.import``,
``bank.set``, ``bank.delete``) plus ``bank.lookup``.

Viewing a bank is not audited, like ``meldpunt bank list``/``show`` and the other oversight pages: a
bank page shows hashes and labels, never media. A web import is all or nothing by default (the first
malformed line rejects the file, with its line number); one transaction either way. The upload is
parsed by Starlette into a temporary file (spooled to disk past 1 MiB) and read from there in a
worker thread; the request body itself is capped by the app's :class:`BodyLimit` at
``max_import_bytes``, counted as it streams through (never held in memory whole).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, BinaryIO
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.responses import RedirectResponse, Response

from meldpunt.accounts import CurrentUser
from meldpunt.banks.formats import (
    FORMATS,
    HashRecord,
    LineError,
    ListFormatError,
    SkippedSignal,
    detect_format,
    get_format,
)
from meldpunt.domain import Labels, SignalType
from meldpunt.domain.signals import InvalidSignal, detect_signal_type, normalise_signal
from meldpunt.triage.banks import POLICIES, BankError, BankInfo, BankRepository, BankService, OwnBankProtected
from meldpunt.web.context import ctx, staff_language, staff_translator
from meldpunt.web.forms import field, read_form, token_ok
from meldpunt.web.i18n import N_, Translator
from meldpunt.web.staff import require, staff_page, when_for
from meldpunt.web.ws_common import triage

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

IMPORT_PATH = "/banks/import"
#: a bank name's longest (the column's size)
NAME_MAX = 200
#: how many bytes the format detection looks at
SNIFF_BYTES = 4096
#: malformed lines listed after a lenient import
ERRORS_SHOWN = 20
#: the bar chart's widest bar, in pixels
BAR_WIDTH = 240
#: what each policy means, for the pages (translated when shown)
POLICY_HELP = {
    "auto": N_("a match classifies the item with the entry's labels, without anyone viewing it"),
    "hint": N_("a match is shown to analysts as a hint; they still decide"),
    "ignore": N_("a list of known benign files: a match sets the file aside"),
}
#: what ``?msg=`` may say (never text taken from the request; translated when shown)
MESSAGES = {"saved": N_("Settings saved."), "deleted": N_("Bank deleted.")}

Manage = Annotated[CurrentUser, Depends(require("banks.manage"))]


# -- plumbing ---------------------------------------------------------------------------------------


def _repo(request: Request) -> BankRepository:
    return ctx(request).services.banks


def _own_bank(request: Request) -> str:
    """The bank triage writes final classifications into: editable, never deletable."""
    return _service(request).own_bank


def _service(request: Request) -> BankService:
    """The bank service (imports and deletes, with their rules), shared with ``meldpunt bank``."""
    return BankService(_repo(request), triage(request).config.own_bank)


def _purpose(kind: str, user: CurrentUser, name: str = "") -> str:
    return f"bk-{kind}:{name}:{user.session_hash}"


def _url(name: str) -> str:
    return "/banks/" + quote(name, safe="")


def _page(request: Request, template: str, user: CurrentUser, status: int = 200, **values: Any) -> Response:
    _ = staff_translator(request)
    return staff_page(
        request,
        template,
        user,
        status,
        bank_url=_url,
        policies=POLICIES,
        policy_help={p: _(words) for p, words in POLICY_HELP.items()},
        **values,
    )


def _result(
    request: Request,
    user: CurrentUser,
    status: int,
    heading: str,
    message: str,
    back: str = "/banks",
    **values: Any,
) -> Response:
    values.setdefault("result", None)
    values.setdefault("errors", [])
    values.setdefault("detail", "")
    return _page(
        request, "bk_result.html", user, status, heading=heading, message=message, back=back, **values
    )


def _expired(request: Request, user: CurrentUser, back: str = "/banks") -> Response:
    _ = staff_translator(request)
    return _result(
        request, user, 400, _("This form has expired"), _("Nothing was changed. Open the page again."), back
    )


def _import_form(request: Request, user: CurrentUser, bank: str = "") -> dict[str, Any]:
    return {
        "token": ctx(request).tokens.issue(_purpose("import", user)),
        "bank": bank,
        "formats": sorted(FORMATS),
        "signal_types": [s.value for s in SignalType],
        "limit": _size(ctx(request).config.max_import_bytes, staff_translator(request)),
    }


def _size(n: int, _: Translator) -> str:
    mib = 1024 * 1024
    return _("{n} MiB", n=f"{n / mib:,.0f}") if n >= mib else _("{n} bytes", n=f"{n:,}")


def _audit(request: Request, user: CurrentUser, action: str, name: str, **details: object) -> None:
    ctx(request).services.audit.append(user.name, action, f"bank:{name}", details)


def too_large(request: Request, limit: int) -> bytes:
    """The 413 page of an import bigger than ``max_import_bytes`` (the body guard has no user)."""
    lang = staff_language(request)
    response = ctx(request).render(
        request, "bk_too_large.html", lang, 413, limit=_size(limit, Translator(lang))
    )
    return bytes(response.body)


# -- the banks --------------------------------------------------------------------------------------


@router.get("/banks")
def banks_page(request: Request, user: Manage, msg: str = "") -> Response:
    """Every bank: policy, entries by signal type, last import, a bar of its size."""
    repo = _repo(request)
    own = _own_bank(request)
    banks = repo.list_banks()
    widest = max((b.entries for b in banks), default=0) or 1
    rows = []
    for b in banks:
        imports = repo.imports(b.name)
        rows.append(
            {
                "name": b.name,
                "linked": "/" not in b.name,  # a path segment cannot hold a slash
                "own": b.name == own,
                "policy": b.policy,
                "threshold": b.pdq_threshold,
                "entries": b.entries,
                "by_type": sorted(b.by_type.items()),
                "last_import": when_for(request)(imports[-1]["imported_at"]) if imports else "",
                "bar": max(1, round(BAR_WIDTH * b.entries / widest)) if b.entries else 0,
            }
        )
    return _page(
        request,
        "bk_list.html",
        user,
        banks=rows,
        own=own,
        bar_width=BAR_WIDTH,
        message=staff_translator(request)(MESSAGES[msg]) if msg in MESSAGES else "",
        form=_import_form(request, user),
    )


def _bank_or_404(request: Request, name: str) -> BankInfo:
    try:
        return _repo(request).get_bank(name)
    except BankError:
        raise HTTPException(404) from None


def _bank_page(
    request: Request,
    user: CurrentUser,
    bank: BankInfo,
    status: int = 200,
    message: str = "",
    lookup: dict[str, Any] | None = None,
) -> Response:
    tokens = ctx(request).tokens
    imports = [
        {
            "id": imp["id"],
            "at": when_for(request)(imp["imported_at"]),
            "format": imp["format"],
            "entries": imp["entry_count"],
            "skipped": imp["skipped_count"],
            "replaced": bool(imp["replaced"]),
            "labels": imp["labels"] if imp["labels"] != "{}" else "",
            "source": imp["source_name"],
            "sha256": imp["source_sha256"],
        }
        for imp in reversed(_repo(request).imports(bank.name))
    ]
    return _page(
        request,
        "bk_bank.html",
        user,
        status,
        bank=bank,
        own=bank.name == _own_bank(request),
        imports=imports,
        message=message,
        lookup=lookup,
        settings_token=tokens.issue(_purpose("settings", user, bank.name)),
        delete_token=tokens.issue(_purpose("delete", user, bank.name)),
        lookup_token=tokens.issue(_purpose("lookup", user, bank.name)),
        form=_import_form(request, user, bank.name),
    )


@router.get("/banks/{name}")
def bank_page(request: Request, name: str, user: Manage, msg: str = "") -> Response:
    """One bank: settings, import history (newest first), look-up, import, delete."""
    message = staff_translator(request)(MESSAGES[msg]) if msg in MESSAGES else ""
    return _bank_page(request, user, _bank_or_404(request, name), message=message)


#: the entries page's sort orders
ENTRY_SORTS = {"oldest": N_("in the order they were added"), "newest": N_("newest first")}
#: entries per page of a bank's entries
ENTRY_PAGE_SIZES = (50, 100, 200)


@router.get("/banks/{name}/entries")
def entries_page(
    request: Request,
    name: str,
    user: Manage,
    type: str = "",
    q: str = "",
    sort: str = "",
    after: str = "",
    size: str = "",
) -> Response:
    """A bank's entries, a page at a time (keyset: ``after`` is the last entry of the page
    before), of one signal type and whose value starts with ``q`` (hex); audited as
    ``bank.browse``. Query parameters only, so a link shows the same page."""
    _ = staff_translator(request)
    bank = _bank_or_404(request, name)
    chosen = SignalType(type) if type in {s.value for s in SignalType} else None
    prefix = q.strip().lower()[:64]
    order = sort if sort in ENTRY_SORTS else "oldest"
    per_page = (
        int(size)
        if size.isascii() and size.isdigit() and int(size) in ENTRY_PAGE_SIZES
        else ENTRY_PAGE_SIZES[0]
    )
    start = int(after) if after.isascii() and after.isdigit() and len(after) <= 18 else None
    error = ""
    if prefix and not all(c in "0123456789abcdef" for c in prefix):
        error = _("Search by the start of a hash: hexadecimal digits only (0-9, a-f).")
        rows: list[Any] = []
        more = False
    else:
        rows, more = _repo(request).browse(
            name, signal_type=chosen, prefix=prefix, after=start, newest=order == "newest", limit=per_page
        )
        _audit(
            request,
            user,
            "bank.browse",
            name,
            type=type or "",
            prefix=prefix,
            after=start or 0,
            shown=len(rows),
        )
    params = {"type": chosen.value if chosen else "", "q": prefix, "sort": order if order != "oldest" else ""}
    params["size"] = str(per_page) if per_page != ENTRY_PAGE_SIZES[0] else ""
    base = {k: v for k, v in params.items() if v}
    return _page(
        request,
        "bk_entries.html",
        user,
        400 if error else 200,
        bank=bank,
        entries=[
            {
                "id": h.entry_id,
                "type": h.signal_type,
                "value": h.value,
                "labels": sorted(h.labels.to_dict().items()),
            }
            for h in rows
        ],
        error=error,
        type=chosen.value if chosen else "",
        types=sorted(bank.by_type),
        q=prefix,
        sort=order,
        sort_choices={k: _(v) for k, v in ENTRY_SORTS.items()},
        size=per_page,
        sizes=ENTRY_PAGE_SIZES,
        first_page=f"{_url(name)}/entries" + (f"?{urlencode(base)}" if base else "")
        if start is not None
        else "",
        next_page=f"{_url(name)}/entries?{urlencode({**base, 'after': rows[-1].entry_id})}"
        if more and rows
        else "",
    )


# -- settings, delete, look-up ----------------------------------------------------------------------


def _settings_changes(form: FormData, bank: BankInfo, _: Translator) -> dict[str, Any]:
    """The fields that differ from the bank's; ``BankError`` for a value that cannot be."""
    changes: dict[str, Any] = {}
    policy = field(form, "policy", 16)
    if policy and policy != bank.policy:
        if policy not in POLICIES:
            raise BankError(_("policy must be one of {policies}", policies=", ".join(POLICIES)))
        changes["policy"] = policy
    description = field(form, "description", 2000).strip()
    if "description" in form and description != bank.description:
        changes["description"] = description
    raw = field(form, "pdq_threshold", 8).strip()
    if raw:
        if not (raw.isascii() and raw.isdigit()) or not 0 <= int(raw) <= 256:
            raise BankError(_("a PDQ threshold is a whole number of bits, 0 to 256"))
        if int(raw) != bank.pdq_threshold:
            changes["pdq_threshold"] = int(raw)
    return changes


@router.post("/banks/{name}/settings")
async def settings_post(request: Request, name: str, user: Manage) -> Response:
    """Change policy, description or PDQ threshold (CSRF-checked; audited as ``bank.set``)."""
    form = await read_form(request, max_fields=10)
    if not token_ok(request, form, _purpose("settings", user, name)) or form is None:
        return await run_in_threadpool(_expired, request, user, _url(name))
    bank = await run_in_threadpool(_bank_or_404, request, name)
    _ = staff_translator(request)
    try:
        changes = _settings_changes(form, bank, _)
    except BankError as e:
        message = _("{problem}; nothing was changed.", problem=str(e))
        return await run_in_threadpool(_bank_page, request, user, bank, 400, message)

    def save() -> None:
        if changes:
            _repo(request).configure(name, **changes)
            _audit(request, user, "bank.set", name, **changes)

    await run_in_threadpool(save)
    return RedirectResponse(_url(name) + "?msg=saved", status_code=303)


@router.post("/banks/{name}/delete")
async def delete_post(request: Request, name: str, user: Manage) -> Response:
    """Delete a bank and its entries once its name is typed again (CSRF-checked; ``bank.delete``).
    The hotline's own bank is refused: triage writes every final classification into it."""
    form = await read_form(request, max_fields=10)
    if not token_ok(request, form, _purpose("delete", user, name)) or form is None:
        return await run_in_threadpool(_expired, request, user, _url(name))
    bank = await run_in_threadpool(_bank_or_404, request, name)
    _ = staff_translator(request)
    service = _service(request)
    if service.protected(name):
        message = _(
            "This is the hotline's own bank: final classifications are written into it, so it cannot be deleted here. Nothing was deleted."
        )
        return await run_in_threadpool(_bank_page, request, user, bank, 400, message)
    if field(form, "confirm", NAME_MAX + 10).strip() != name:
        message = _("To delete the bank, type its name exactly. Nothing was deleted.")
        return await run_in_threadpool(_bank_page, request, user, bank, 400, message)

    def delete() -> None:
        n = service.delete(name)
        _audit(request, user, "bank.delete", name, entries=n)

    try:
        await run_in_threadpool(delete)
    except OwnBankProtected:  # checked above; the service holds the rule as well
        raise HTTPException(400) from None
    except BankError:  # deleted meanwhile
        raise HTTPException(404) from None
    return RedirectResponse("/banks?msg=deleted", status_code=303)


def _lookup_pairs(value: str, kind: str, _: Translator) -> list[tuple[SignalType, str]]:
    """(type, canonical value) pairs to look up; a 64-hex value of no stated type is tried both as
    SHA-256 and as PDQ (the value alone cannot tell them apart)."""
    if kind and kind != "auto":
        st = SignalType(kind)
        return [(st, normalise_signal(st, value))]
    st_found = detect_signal_type(value)
    if st_found is None:
        raise InvalidSignal(_("cannot tell the type of this value; choose it"))
    pairs = [(st_found, normalise_signal(st_found, value))]
    if st_found is SignalType.SHA256:
        pairs.append((SignalType.PDQ, pairs[0][1]))
    return pairs


@router.post("/banks/{name}/lookup")
async def lookup_post(request: Request, name: str, user: Manage) -> Response:
    """Is this exact hash in the bank, and with which labels (CSRF-checked; ``bank.lookup``).
    Exact only: a PDQ value is not compared by distance here."""
    form = await read_form(request, max_fields=10)
    if not token_ok(request, form, _purpose("lookup", user, name)) or form is None:
        return await run_in_threadpool(_expired, request, user, _url(name))
    bank = await run_in_threadpool(_bank_or_404, request, name)
    value = field(form, "value", 1 << 16).strip()
    kind = field(form, "type", 16)
    if kind not in ("", "auto", *(s.value for s in SignalType)):
        kind = "auto"
    try:
        pairs = _lookup_pairs(value, kind, staff_translator(request))
    except InvalidSignal as e:
        lookup: dict[str, Any] = {"value": value, "error": str(e), "hits": []}
        return await run_in_threadpool(_bank_page, request, user, bank, 400, "", lookup)

    def look() -> list[dict[str, Any]]:
        hits = _repo(request).lookup_exact(pairs, banks=[name])
        shown = pairs[0][1] if len(pairs[0][1]) <= 200 else pairs[0][1][:200] + "…"
        _audit(
            request,
            user,
            "bank.lookup",
            name,
            value=shown,
            types=[st.value for st, _ in pairs],
            found=len(hits),
        )
        return [{"type": h.signal_type, "labels": sorted(h.labels.to_dict().items())} for h in hits]

    hits = await run_in_threadpool(look)
    lookup = {"value": value, "error": "", "hits": hits, "types": [st.value for st, _ in pairs]}
    return await run_in_threadpool(_bank_page, request, user, bank, 200, "", lookup)


# -- import -----------------------------------------------------------------------------------------


class _Malformed(Exception):
    def __init__(self, error: LineError) -> None:
        super().__init__(error.message)
        self.error = error


class _Empty(Exception):
    pass


class _NoPolicy(Exception):
    """A new bank without a chosen policy: what a match does is a decision, never a default."""


def _checked(
    records: Iterable[HashRecord | LineError | SkippedSignal], strict: bool
) -> Iterator[HashRecord | LineError | SkippedSignal]:
    """The records, raising at the first malformed line when ``strict`` and at the end when there
    was no hash at all — inside the import's transaction, so nothing of the file stays."""
    any_hash = False
    unsupported: dict[str, int] = {}
    for rec in records:
        if isinstance(rec, LineError):
            if strict:
                raise _Malformed(rec)
        elif isinstance(rec, SkippedSignal):
            unsupported[rec.type_name] = unsupported.get(rec.type_name, 0) + 1
        else:
            any_hash = True
        yield rec
    if not any_hash:
        raise _Empty(sorted(unsupported.items()))


@dataclass(frozen=True)
class _ImportRequest:
    bank: str
    fmt: str
    signal_type: SignalType | None
    labels: Labels
    policy: str | None
    strict: bool
    filename: str


def _import_request(form: FormData, upload: UploadFile, _: Translator) -> _ImportRequest:
    """The form's choices, checked; ``ValueError`` with a message to show when one is wrong (in
    the user's language where the message is ours; the list formats' and labels' own are English)."""
    bank = field(form, "bank", NAME_MAX + 1).strip()
    if not bank:
        raise ValueError(_("Give the bank a name."))
    if len(bank) > NAME_MAX or "/" in bank or not bank.isprintable():
        raise ValueError(_("A bank name is at most {n} printable characters, without '/'.", n=NAME_MAX))
    fmt = field(form, "format", 32) or "auto"
    if fmt != "auto":
        get_format(fmt)  # ValueError naming the known ones
    kind = field(form, "type", 16) or "auto"
    signal_type = None if kind == "auto" else SignalType(kind)  # ValueError when unknown
    lines = [line.strip() for line in field(form, "labels", 4000).splitlines() if line.strip()]
    labels = Labels.from_options(lines)  # LabelError is a ValueError
    policy = field(form, "policy", 16) or None
    if policy is not None and policy not in POLICIES:
        raise ValueError(_("A policy is one of {policies}.", policies=", ".join(POLICIES)))
    filename = (upload.filename or "upload")[:300]
    return _ImportRequest(bank, fmt, signal_type, labels, policy, field(form, "lenient", 8) != "on", filename)


@dataclass
class _Outcome:
    entries: int
    added: int
    updated: int
    skipped: int
    by_type: list[tuple[str, int]]
    fmt: str
    errors: list[dict[str, Any]]
    #: lines of signal types meldpunt does not match, by type (skipped, and said so)
    unsupported: list[tuple[str, int]]


def _sha256(fp: BinaryIO) -> str:
    digest = hashlib.sha256()
    while chunk := fp.read(1 << 20):
        digest.update(chunk)
    fp.seek(0)
    return digest.hexdigest()


def _run_import(request: Request, user: CurrentUser, job: _ImportRequest, fp: BinaryIO) -> _Outcome:
    """Parse and import in one transaction (blocking: a worker thread runs it), then audit it and
    bring the saved PDQ index up to date, as ``meldpunt bank import`` does."""
    services = ctx(request).services
    repo = services.banks
    existing = {b.name: b for b in repo.list_banks()}.get(job.bank)
    if existing is None and job.policy is None:
        raise _NoPolicy()
    sha256 = _sha256(fp)
    fmt = job.fmt
    if fmt == "auto":
        fmt = detect_format(fp.read(SNIFF_BYTES), job.filename)
        fp.seek(0)
    list_format = get_format(fmt)
    before = existing.entries if existing is not None else 0
    records = list_format.read(fp, signal_type=job.signal_type, labels=job.labels)

    result = _service(request).import_list(
        job.bank,
        _checked(records, job.strict),
        actor=user.name,
        list_format=list_format.name,
        source_name=job.filename,
        audit_details={"via": "web"},
        source_sha256=sha256,
        labels=job.labels,
        policy=job.policy if existing is None else None,  # a policy is for a new bank only
        max_errors_kept=ERRORS_SHOWN,
    )
    if not result.entries:  # only types we do not match: nothing was written
        raise _Empty(sorted(result.unsupported.items()))
    after = repo.get_bank(job.bank).entries
    added = max(0, after - before)
    if result.by_type.get(SignalType.PDQ.value):
        try:
            services.pdq_index()
        except Exception:  # the import stands; the index catches up when it is next opened
            log.exception("could not bring the PDQ index up to date after a web import")
    return _Outcome(
        entries=result.entries,
        added=added,
        updated=max(0, result.entries - added),
        skipped=result.skipped,
        by_type=sorted(result.by_type.items()),
        fmt=list_format.name,
        errors=[{"line": e.line, "message": e.message, "text": e.text} for e in result.errors],
        unsupported=sorted(result.unsupported.items()),
    )


def _import_failed(request: Request, user: CurrentUser, e: Exception) -> Response:
    _ = staff_translator(request)
    detail = ""
    if isinstance(e, _Malformed) and e.error.line:
        text = _(
            "Line {line}: {problem}. Nothing was imported; the bank is as it was.",
            line=e.error.line,
            problem=e.error.message,
        )
        detail = e.error.text
    elif isinstance(e, _Malformed):
        text = _("{problem}. Nothing was imported; the bank is as it was.", problem=e.error.message)
        detail = e.error.text
    elif isinstance(e, _Empty):
        text = _("The file holds no hashes. Nothing was imported; the bank is as it was.")
        if e.args and e.args[0]:
            text += " " + _unsupported_text(e.args[0], _)
    elif isinstance(e, _NoPolicy):
        text = _(
            "The bank is new: choose its policy ({policies}). Nothing was imported.",
            policies=", ".join(POLICIES),
        )
    else:
        text = _("{problem}. Nothing was imported; the bank is as it was.", problem=str(e).rstrip("."))
    return _result(request, user, 400, _("The file was not imported"), text, detail=detail)


def _unsupported_text(unsupported: list[tuple[str, int]], _: Translator) -> str:
    kinds = ", ".join(f"{k} {n:,}" for k, n in unsupported)
    return _("Lines of signal types meldpunt does not match were skipped: {kinds}.", kinds=kinds)


async def _read_upload(request: Request) -> FormData | None:
    """The import form with its one file (spooled to a temporary file); None when unreadable."""
    try:
        return await request.form(max_files=1, max_fields=20)
    except (HTTPException, MultiPartException):
        return None


@router.post(IMPORT_PATH)
async def import_post(request: Request, user: Manage) -> Response:
    """Import an uploaded list into a bank, new or existing (CSRF-checked; ``bank.import``)."""
    form = await _read_upload(request)
    if not token_ok(request, form, _purpose("import", user)) or form is None:
        if form is not None:
            await form.close()
        return await run_in_threadpool(_expired, request, user)
    _ = staff_translator(request)
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile) or not upload.filename:
            return await run_in_threadpool(
                _result, request, user, 400, _("Nothing was imported"), _("Choose a list file to upload.")
            )
        try:
            job = _import_request(form, upload, _)
        except ValueError as e:
            return await run_in_threadpool(_result, request, user, 400, _("Nothing was imported"), str(e))
        try:
            outcome = await run_in_threadpool(_run_import, request, user, job, upload.file)
        except (_Malformed, _Empty, _NoPolicy, ListFormatError, BankError, ValueError) as e:
            return await run_in_threadpool(_import_failed, request, user, e)
        message = _("The list was imported into {bank} as {format}.", bank=job.bank, format=outcome.fmt)
        if outcome.unsupported:
            message += " " + _unsupported_text(outcome.unsupported, _)
        return await run_in_threadpool(
            _result,
            request,
            user,
            200,
            _("Imported"),
            message,
            _url(job.bank),
            result=outcome,
            errors=outcome.errors,
        )
    finally:
        await form.close()
