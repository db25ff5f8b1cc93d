"""The app factory: ``create_app(services)`` -> the FastAPI app (public pages, API, internal page).

Run it with uvicorn **without an access log** (``access_log=False``, ``log_config=uvicorn_log_config()``)
— see :func:`run`. An access log would write every reporter's address to disk.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import Scope
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from meldpunt.accounts import allowed
from meldpunt.bootstrap import Services
from meldpunt.settings import WebSettings
from meldpunt.web import (
    act_notices,
    act_routing,
    admin,
    api,
    banks,
    internal,
    me,
    oversight,
    partner_inbox,
    prefs,
    public,
    staff,
    workspace,
)
from meldpunt.web.act_alerts import install as install_alerts
from meldpunt.web.act_recheck import router as act_recheck_router
from meldpunt.web.context import WebContext, ctx, request_language
from meldpunt.web.cybertip import install as install_cybertip
from meldpunt.web.estimate import ESTIMATE_PATH
from meldpunt.web.estimate import MAX_POST as ESTIMATE_MAX_POST
from meldpunt.web.estimate import install as install_estimate
from meldpunt.web.forwarding import install as install_forwarding
from meldpunt.web.i18n import pick_language
from meldpunt.web.links import install as install_links
from meldpunt.web.nav import home, nav_links
from meldpunt.web.referrals import install as install_referrals
from meldpunt.web.security import BodyLimit, HeaderPolicy, SecurityHeaders, trusted_networks
from meldpunt.web.statistics import router as statistics_router
from meldpunt.web.survivors import MAX_HASHES_FIELD, SURVIVOR_HASH_PATHS
from meldpunt.web.survivors import install as install_survivors

STATIC = Path(__file__).parent / "static"
DOCS_URL = "/api/docs"
OPENAPI_URL = "/openapi.json"


def _is_api(path: str) -> bool:
    return path.startswith("/api/") or path == OPENAPI_URL


def create_app(services: Services, config: WebSettings | None = None) -> FastAPI:
    config = config or services.settings.web
    proxies = trusted_networks(config.trusted_proxies)  # a bad one: ValueError before anything starts
    app = FastAPI(
        title="meldpunt",
        summary="Report URLs; match hashes and files against hash lists.",
        version="1",
        docs_url=None,
        redoc_url=None,
        openapi_url=OPENAPI_URL,
    )
    app.state.ctx = WebContext.build(services, config)
    app.state.ctx.env.globals.update(allowed=allowed, nav_links=nav_links, home=home)  # the staff frame

    @app.get(DOCS_URL, include_in_schema=False)
    def api_docs(request: Request) -> HTMLResponse:
        """The API reference, rendered here from the OpenAPI description: no script, nothing
        loaded from elsewhere (a CDN-hosted viewer would break offline and tell its host who reads)."""
        return ctx(request).render(request, "api_docs.html", request_language(request), spec=app.openapi())

    @app.get("/health", tags=["health"])
    def health() -> dict[str, str]:
        """Liveness: the app answers."""
        return {"status": "ok"}

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(status_code=204)  # no icon: nothing more to fetch

    app.include_router(public.router)
    app.include_router(api.router)
    api.install_openapi(app)
    app.include_router(internal.router)
    staff.install(app)
    app.include_router(workspace.router)
    app.include_router(prefs.router)
    app.include_router(me.router)
    app.include_router(oversight.router)
    app.include_router(admin.router)
    app.include_router(banks.router)
    act_routing.install(app)
    app.include_router(act_recheck_router)
    app.include_router(act_notices.router)
    install_alerts(app)
    install_forwarding(app)
    app.include_router(partner_inbox.router)
    install_cybertip(app)
    install_referrals(app)
    install_survivors(app)
    install_estimate(app)
    install_links(app)
    app.include_router(statistics_router)  # #13: the figures and charts for seniors
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if _is_api(request.url.path):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        kind = {404: "not_found", 405: "not_found", 401: "auth"}.get(exc.status_code, "bad_form")
        return ctx(request).render(
            request, "error.html", request_language(request), exc.status_code, kind=kind
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = json.loads(json.dumps(exc.errors(), default=str))
        for e in errors:
            e.pop("input", None)  # never echo what was sent (it may be a reported URL)
            e.pop("url", None)
        return JSONResponse({"detail": errors}, status_code=422)

    def limit_for(path: str) -> int:
        if path == partner_inbox.INBOX_PATH:
            return services.settings.partner.max_message_bytes
        if path == "/api/v1/match":
            return config.max_upload_bytes
        if path == banks.IMPORT_PATH:
            return config.max_import_bytes
        if path in SURVIVOR_HASH_PATHS:
            return max(config.max_form_bytes, MAX_HASHES_FIELD)
        if path == ESTIMATE_PATH:
            return max(config.max_form_bytes, ESTIMATE_MAX_POST)
        if _is_api(path):
            return config.max_api_bytes
        return config.max_form_bytes

    async def too_large(scope: Scope, limit: int) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        path = scope.get("path", "")
        if path == partner_inbox.INBOX_PATH:
            return 413, [(b"content-type", b"application/json")], partner_inbox.too_large(limit)
        if _is_api(path):
            body = json.dumps({"detail": f"request body larger than {limit} bytes"}).encode()
            return 413, [(b"content-type", b"application/json")], body
        request = Request(scope)
        if path == banks.IMPORT_PATH:
            return 413, [(b"content-type", b"text/html; charset=utf-8")], banks.too_large(request, limit)
        lang = pick_language(request.query_params.get("lang"), request.headers.get("accept-language"))
        response = app.state.ctx.render(request, "error.html", lang, 413, kind="too_large")
        return 413, [(b"content-type", b"text/html; charset=utf-8")], bytes(response.body)

    app.add_middleware(BodyLimit, limit_for=limit_for, too_large=too_large)
    app.add_middleware(SecurityHeaders, policy=HeaderPolicy())
    if proxies:  # outermost: every layer sees the forwarded client and scheme
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=proxies)
    return app


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's logging, without the access log (which would write client addresses)."""
    from uvicorn.config import LOGGING_CONFIG

    cfg: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    cfg["handlers"].pop("access", None)
    cfg["formatters"].pop("access", None)
    cfg["loggers"]["uvicorn.access"] = {"handlers": [], "level": "CRITICAL", "propagate": False}
    return cfg


def run(
    services: Services, host: str = "127.0.0.1", port: int = 8000, config: WebSettings | None = None
) -> None:
    """Serve the app (what ``meldpunt serve`` should call): no access log, no client addresses in
    any log, no ``Server`` header. Behind a reverse proxy, switch off the proxy's access log too."""
    import uvicorn

    from meldpunt.web.serving import connection_limits

    uvicorn.run(
        create_app(services, config),
        host=host,
        port=port,
        access_log=False,
        log_config=uvicorn_log_config(),
        server_header=False,
        proxy_headers=False,
        **connection_limits(services.settings),
    )
