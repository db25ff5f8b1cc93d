"""The partner and platform API (JSON, documented at /api/docs): reports in, hashes matched.

Every call needs ``Authorization: Bearer <token>`` (``meldpunt token create``), and the token must
hold the call's scope (``pipeline.api_tokens.SCOPES``): ``reports`` to report, ``match`` to match.
``/match`` never keeps what it is sent: uploads are read into memory, hashed and dropped; hashes
are looked up and dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.responses import JSONResponse

from meldpunt.domain import InvalidSignal, SignalType, normalise_signal
from meldpunt.domain import jsonlimits as json_limits
from meldpunt.pipeline import intake
from meldpunt.pipeline.api_tokens import SCOPES, ApiClient, authenticate
from meldpunt.pipeline.intake import (
    MAX_URLS,
    SEEN_ON,
    IdempotencyConflict,
    InvalidReport,
    ReportIn,
    submit_report,
)
from meldpunt.pipeline.matching import Match
from meldpunt.signals import hash_bytes
from meldpunt.web.context import WebContext, ctx

log = logging.getLogger(__name__)
bearer = HTTPBearer(
    auto_error=False,
    description="An API token made with `meldpunt token create NAME --scope ...`. Scopes: "
    + "; ".join(f"`{k}`: {v}" for k, v in SCOPES.items())
    + ".",
)
router = APIRouter(prefix="/api/v1", tags=["api"])

SeenOn = Literal["website", "social", "chat", "filesharing", "other"]
assert set(SEEN_ON) == set(get_args(SeenOn)), "SeenOn must list intake.SEEN_ON"


def _client(request: Request, credentials: HTTPAuthorizationCredentials | None) -> ApiClient:
    """The token's client (kept on ``request.state.api_client``); 401 without a valid token."""
    found = authenticate(ctx(request).services, credentials.credentials) if credentials else None
    if found is None:
        raise HTTPException(
            status_code=401, detail="a valid API token is required", headers={"WWW-Authenticate": "Bearer"}
        )
    request.state.api_client = found
    return found


def need_scope(client: ApiClient, scope: str, why: str = "") -> None:
    """403, naming the scope, when the token does not hold it."""
    if not client.may(scope):
        raise HTTPException(
            status_code=403, detail=f"this API token lacks the scope {scope!r}{why}; ask for a token with it"
        )


def api_scope(scope: str) -> Callable[..., str]:
    """A dependency: the token's name when it holds ``scope``; 401 without a valid token, 403
    (naming the scope) when the token lacks it."""

    def dependency(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> str:
        client = _client(request, credentials)
        need_scope(client, scope)
        return client.name

    return dependency


# -- reports --------------------------------------------------------------------------------------


class ReportRequest(BaseModel):
    urls: list[Annotated[str, Field(max_length=intake.MAX_URL_LENGTH)]] = Field(
        min_length=1, max_length=MAX_URLS, description="The web addresses reported, http(s)."
    )
    seen_on: SeenOn = "website"
    description: str = Field("", max_length=10_000)
    contact: str = Field("", max_length=320, description="Where to send feedback, if anywhere.")
    urgent: bool = Field(False, description="A child is in danger now, or this is happening live.")
    language: Literal["nl", "fr", "en"] = "en"
    idempotency_key: str | None = Field(
        None,
        max_length=200,
        description="Same key and same request: the same receipt; same key and another request: 409 "
        "(the Idempotency-Key header works too).",
    )


class ProblemOut(BaseModel):
    code: str = Field(description="Why, as a stable name (e.g. `url.credentials`, `urls.none`).")
    params: dict[str, str] = Field(description="Its values: `n` a URL's place in `urls`, `max` a limit.")


class InvalidReportResponse(BaseModel):
    detail: list[Any] = Field(
        description="Every reason in English; for a body that does not fit the schema, the schema's errors."
    )
    errors: list[ProblemOut] = Field(
        default_factory=list,
        description="Every reason the service refused the report, as codes with values (same order as "
        "`detail`); empty when the body did not fit the schema.",
    )


class ReportResponse(BaseModel):
    receipt: str = Field(description="The receipt code; GET /status/<code> shows what happened.")
    report_id: int
    item_ids: list[int]
    linked: list[int] = Field(description="Items already open for the same URL that this report joined.")


@router.post(
    "/reports",
    status_code=201,
    response_model=ReportResponse,
    responses={
        200: {
            "model": ReportResponse,
            "description": "Seen before (same idempotency key, same request): the first receipt.",
        },
        401: {"description": "No valid API token."},
        403: {"description": "The token lacks the scope `reports`."},
        409: {"description": "The idempotency key was used before with a different request."},
        422: {
            "model": InvalidReportResponse,
            "description": "The report is not valid: `detail` says why in English, `errors` as codes.",
        },
    },
)
def create_report(
    body: ReportRequest,
    request: Request,
    client: Annotated[str, Depends(api_scope("reports"))],
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> JSONResponse:
    """Report one or more URLs. Durable when this answers: the receipt stands for work on disk."""
    c = ctx(request)
    receipt = _submit(c, _report_in(body, client, idempotency_key))
    if isinstance(receipt, JSONResponse):
        return receipt
    if receipt.replayed:
        return JSONResponse(_receipt_json(receipt), status_code=200)
    log.info("api report %d from %s: %d item(s)", receipt.report_id, client, len(receipt.item_ids))
    return JSONResponse(_receipt_json(receipt), status_code=201)


def _submit(c: WebContext, report: ReportIn) -> intake.Receipt | JSONResponse:
    """``submit_report``, its refusals as HTTP errors: 422 for an invalid report (every reason in
    ``detail``, as codes in ``errors``), 409 for an idempotency key used before with another request."""
    try:
        return submit_report(c.services, report)
    except InvalidReport as e:
        body = InvalidReportResponse(
            detail=e.errors, errors=[ProblemOut(code=p.code, params=dict(p.values)) for p in e.problems]
        )
        return JSONResponse(body.model_dump(), status_code=422)
    except IdempotencyConflict as e:
        raise HTTPException(status_code=409, detail=str(e)) from None


def _report_in(body: ReportRequest, client: str, idempotency_key: str | None) -> ReportIn:
    return ReportIn(
        urls=body.urls,
        seen_on=body.seen_on,
        description=body.description,
        contact=body.contact,
        urgent=body.urgent,
        source=f"api:{client}",
        idempotency_key=body.idempotency_key or idempotency_key,
        language=body.language,
    )


def _receipt_json(r: intake.Receipt) -> dict[str, Any]:
    return {"receipt": r.code, "report_id": r.report_id, "item_ids": r.item_ids, "linked": r.linked}


# -- match ----------------------------------------------------------------------------------------


class HashQuery(BaseModel):
    type: Literal["md5", "sha1", "sha256", "pdq"]
    value: str = Field(max_length=64)


class MatchRequest(BaseModel):
    hashes: list[HashQuery] = Field(min_length=1, max_length=1000)
    report: ReportRequest | None = Field(
        default=None,
        description="Also report where these were found: a report is opened with these URLs and its "
        "receipt returned. Without it, nothing sent is kept.",
    )


class MatchOut(BaseModel):
    bank: str
    entry_id: int
    signal_type: str
    distance: int
    policy: str
    labels: dict[str, Any]
    hash: Literal["upright", "stored"] | None = Field(
        None,
        description="A photo with an EXIF orientation (2-8) has two PDQ hashes: `upright` (the picture "
        "as shown, `query.pdq`) and `stored` (its pixels as stored, `query.pdq_stored`, as Meta's "
        "hashers compute it). Which one matched; null for one-hash images and other signals.",
    )
    orientation: int | None = Field(None, description="The photo's EXIF orientation, when `hash` is set.")


class MatchResult(BaseModel):
    query: dict[str, Any]
    matches: list[MatchOut]
    error: str | None = None


class MatchResponse(BaseModel):
    results: list[MatchResult]
    receipt: ReportResponse | None = Field(default=None, description="The report opened, when asked.")


def _match_request_schemas() -> dict[str, Any]:
    """``MatchRequest`` and the models it uses, as entries of the document's
    ``components/schemas``: the match body is read by hand (JSON or multipart), so FastAPI does not
    collect them, and pydantic's own ``$defs`` would be refs to nowhere at the document's root."""
    schema = MatchRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    defs: dict[str, Any] = schema.pop("$defs", {})
    return {**defs, "MatchRequest": schema}


def install_openapi(app: FastAPI) -> None:
    """Complete the app's OpenAPI document with the schemas the match body refers to."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            for name, schema in _match_request_schemas().items():
                schemas.setdefault(name, schema)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


_MATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/MatchRequest"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "array", "items": {"type": "string", "format": "binary"}}
                    },
                }
            },
        },
    }
}


class _InMemoryParser(MultiPartParser):
    """Starlette's parser, but an upload stays in memory (the body is already capped in size)."""

    spool_max_size = 1 << 40


@router.post(
    "/match",
    response_model=MatchResponse,
    openapi_extra=_MATCH_BODY,
    responses={
        401: {"description": "No valid API token."},
        403: {"description": "The token lacks the scope `match` (or `reports`, to send `report`)."},
        409: {"description": "The report's idempotency key was used before with a different request."},
        413: {"description": "Too large."},
        422: {
            "model": InvalidReportResponse,
            "description": "Not valid: `detail` says why; for an invalid `report`, `errors` as codes.",
        },
    },
)
async def match(
    request: Request, client: Annotated[str, Depends(api_scope("match"))]
) -> MatchResponse | JSONResponse:
    """Match hashes (JSON) or files (multipart, field `file`, one or more) against the hash lists.

    Nothing sent is kept: files are hashed in memory and dropped, hashes are looked up and dropped.
    """
    c = ctx(request)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        files = await _read_files(request, c.config.max_match_queries)
        results = await run_in_threadpool(_match_files, c, files)
    else:
        try:
            body = MatchRequest.model_validate(json_limits.loads(await request.body()))
        except json_limits.JsonTooDeep as e:  # refused before parsing: no RecursionError, no 500
            raise HTTPException(status_code=400, detail=str(e)) from None
        except (ValueError, ValidationError) as e:
            detail = e.errors(include_url=False) if isinstance(e, ValidationError) else str(e)
            raise HTTPException(status_code=422, detail=detail) from None
        if len(body.hashes) > c.config.max_match_queries:
            raise HTTPException(422, f"at most {c.config.max_match_queries} hashes per call")
        if body.report is not None:
            need_scope(request.state.api_client, "reports", " (needed to send `report`)")
        results = await run_in_threadpool(_match_hashes, c, body.hashes)
        if body.report is not None:
            report = _report_in(body.report, client, None)
            receipt = await run_in_threadpool(_submit, c, report)
            if isinstance(receipt, JSONResponse):  # the report is refused: a 422 with its codes
                return receipt
            return MatchResponse(results=results, receipt=ReportResponse(**_receipt_json(receipt)))
    return MatchResponse(results=results)


async def _read_files(request: Request, max_files: int) -> list[tuple[str, bytes]]:
    parser = _InMemoryParser(request.headers, request.stream(), max_files=max_files, max_fields=10)
    try:
        form = await parser.parse()
    except MultiPartException as e:
        raise HTTPException(status_code=400, detail=f"malformed multipart body: {e.message}") from None
    files: list[tuple[str, bytes]] = []
    try:
        for _, value in form.multi_items():
            if not isinstance(value, str):
                files.append((value.filename or "upload", await value.read()))
    finally:
        await form.close()
    if not files:
        raise HTTPException(status_code=422, detail="send one or more files in the field `file`")
    return files


def _out(m: Match) -> MatchOut:
    d = m.to_json_dict()
    return MatchOut(
        bank=d["bank"],
        entry_id=d["entry_id"],
        signal_type=d["signal_type"],
        distance=d["distance"],
        policy=d["policy"],
        labels=d["labels"],
        hash=d.get("hash"),
        orientation=d.get("orientation"),
    )


def _match_hashes(c: WebContext, queries: list[HashQuery]) -> list[MatchResult]:
    """Exact hashes in one look-up, PDQ hashes in one index search (``Matcher``'s batch methods)."""
    matcher = c.matchers.get()
    per_query: list[list[MatchOut]] = [[] for _ in queries]
    errors: list[str | None] = [None] * len(queries)
    exact: list[tuple[int, SignalType, str]] = []
    pdq: list[tuple[int, str]] = []
    for i, q in enumerate(queries):
        st = SignalType(q.type)
        try:
            value = normalise_signal(st, q.value)
        except InvalidSignal as e:
            errors[i] = str(e)
            continue
        if st is SignalType.PDQ:
            pdq.append((i, value))
        else:
            exact.append((i, st, value))
    if exact:
        by_key = matcher.exact_batch([(st, v) for _, st, v in exact])
        for i, st, v in exact:
            per_query[i] = [_out(m) for m in by_key.get((st.value, v), [])]
    if pdq:
        for (i, _), found in zip(pdq, matcher.pdq_batch([v for _, v in pdq]), strict=True):
            per_query[i] = [_out(m) for m in found]
    return [
        MatchResult(query={"type": q.type, "value": q.value}, matches=matches, error=error)
        for q, matches, error in zip(queries, per_query, errors, strict=True)
    ]


def _match_files(c: WebContext, files: list[tuple[str, bytes]]) -> list[MatchResult]:
    matcher = c.matchers.get()
    results: list[MatchResult] = []
    for name, data in files:
        s = hash_bytes(data, name, c.services.settings)
        query: dict[str, Any] = {
            "file": name,
            "size": s.size,
            "md5": s.md5,
            "sha1": s.sha1,
            "sha256": s.sha256,
        }
        if s.pdq is not None:
            query["pdq"] = s.pdq
            query["pdq_quality"] = s.pdq_quality
        if s.pdq_stored is not None:
            query["orientation"] = s.orientation
            query["pdq_stored"] = s.pdq_stored
            query["pdq_stored_quality"] = s.pdq_stored_quality
        results.append(MatchResult(query=query, matches=[_out(m) for m in matcher.match(s)], error=s.error))
    return results
