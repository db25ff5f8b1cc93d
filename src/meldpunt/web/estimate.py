"""The hidden-victims page: multiple systems estimation on a count table, for seniors and police.

``/estimate`` (``estimate.run``) takes a count table — pasted, or uploaded as a CSV file — and a
method, runs :func:`meldpunt.estimate.estimate` (the same code as ``meldpunt estimate``) and shows the
total, observed and hidden numbers, both confidence intervals and the model. Every run is audited
(``estimate.run``: method, lists, observed and total; the counts are aggregates, never people). No
JavaScript; the form carries its token. A table the estimate refuses comes back with the reason
(422) and the table kept in the form, so nothing typed is lost.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.responses import Response

from meldpunt.accounts import CurrentUser
from meldpunt.estimate import METHODS, Estimate, NoEstimate, TableError, estimate, read_csv
from meldpunt.web.context import ctx, staff_translator
from meldpunt.web.forms import field, token_ok
from meldpunt.web.i18n import N_
from meldpunt.web.staff import require, staff_page

router = APIRouter(include_in_schema=False)

Run = Annotated[CurrentUser, Depends(require("estimate.run"))]

#: a count table of 12 lists is 4095 short lines: far below this
MAX_TABLE = 256 * 1024
#: the table pasted and a file: the form post's limit (``web.app`` raises the body limit for this path)
MAX_POST = 2 * MAX_TABLE + 16 * 1024
ESTIMATE_PATH = "/estimate"
#: bootstrap runs a page may ask for; each run repeats the model selection
BOOT_CHOICES = (0, 100, 500)
DEFAULT_BOOT = 100
#: a request must end: the bootstrap stops after this much work and says how many runs it made
BOOT_BUDGET_S = 60.0
SEED = 1234

METHOD_LABELS = {
    "stepwise": N_("Stepwise (SparseMSE, p < 0.02)"),
    "bic": N_("Lowest BIC (all models with two-way interactions)"),
    "main": N_("Main effects only"),
}


def _purpose(user: CurrentUser) -> str:
    return f"estimate:{user.session_hash}"


def _page(
    request: Request,
    user: CurrentUser,
    status: int = 200,
    *,
    table: str = "",
    method: str = "stepwise",
    boot: int = DEFAULT_BOOT,
    result: Estimate | None = None,
    notes: list[str] | None = None,
    error: str = "",
) -> Response:
    return staff_page(
        request,
        "estimate_page.html",
        user,
        status,
        token=ctx(request).tokens.issue(_purpose(user)),
        table=table,
        method=method,
        methods=[(m, METHOD_LABELS[m]) for m in METHODS],
        boot=boot,
        boot_choices=BOOT_CHOICES,
        result=result,
        notes=notes or [],
        error=error,
    )


@router.get(ESTIMATE_PATH)
def estimate_page(request: Request, user: Run) -> Response:
    return _page(request, user)


async def _read(request: Request) -> FormData | None:
    try:
        return await request.form(max_files=1, max_fields=10)
    except (HTTPException, MultiPartException):
        return None


def _run(request: Request, user: CurrentUser, text: str, method: str, boot: int) -> Response:
    _ = staff_translator(request)
    try:
        table = read_csv(text)
        result = estimate(table, method, bootstrap=boot, seed=SEED, budget_s=BOOT_BUDGET_S)
    except TableError as e:
        return _page(
            request,
            user,
            422,
            table=text,
            method=method,
            boot=boot,
            error=_("The table cannot be used: {why}", why=_(e.template, **e.values)),
        )
    except NoEstimate as e:
        return _page(
            request,
            user,
            422,
            table=text,
            method=method,
            boot=boot,
            error=_("There is no estimate for this table: {why}", why=_(e.template, **e.values)),
        )
    details: dict[str, Any] = {
        "method": result.method,
        "lists": list(result.lists),
        "observed": result.observed,
        "total": round(result.total, 1),
        "model": list(result.model),
        "bootstrap": boot,
    }
    ctx(request).services.audit.append(user.name, "estimate.run", "estimate", details)
    notes = [_(n.template, **dict(n.values)) for n in result.notes]
    return _page(request, user, table=text, method=method, boot=boot, result=result, notes=notes)


@router.post(ESTIMATE_PATH)
async def estimate_post(request: Request, user: Run) -> Response:
    form = await _read(request)
    try:
        if form is None or not token_ok(request, form, _purpose(user)):
            _ = staff_translator(request)
            return await run_in_threadpool(
                staff_page,
                request,
                "ws_message.html",
                user,
                400,
                heading=_("This form has expired"),
                message=_("Nothing was saved. Open the page again and repeat what you did."),
                back="/estimate",
            )
        method = field(form, "method", 20)
        if method not in METHODS:
            method = "stepwise"
        boot_text = field(form, "bootstrap", 6)
        boot = (
            int(boot_text)
            if boot_text.isascii() and boot_text.isdigit() and int(boot_text) in BOOT_CHOICES
            else DEFAULT_BOOT
        )
        text = field(form, "table", MAX_TABLE + 1)
        upload = form.get("file")
        if isinstance(upload, UploadFile) and upload.filename:
            raw = await upload.read(MAX_TABLE + 1)
            try:
                text = raw.decode("utf-8-sig")
            except UnicodeDecodeError:
                _ = staff_translator(request)
                return await run_in_threadpool(
                    _page,
                    request,
                    user,
                    422,
                    method=method,
                    boot=boot,
                    error=_("The file is not UTF-8 text."),
                )
        if len(text) > MAX_TABLE:
            _ = staff_translator(request)
            return await run_in_threadpool(
                _page,
                request,
                user,
                422,
                method=method,
                boot=boot,
                error=_("The table is too large for a count table."),
            )
        return await run_in_threadpool(_run, request, user, text, method, boot)
    finally:
        if form is not None:
            await form.close()


def install(app: FastAPI) -> None:
    app.include_router(router)
