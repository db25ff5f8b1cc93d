"""What every route needs, in one object on ``app.state.ctx``: services, settings, templates, limits."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from meldpunt.bootstrap import Services
from meldpunt.pipeline.matcher_cache import MatcherCache
from meldpunt.settings import WebSettings
from meldpunt.web.emergency import EmergencyNumber, parse, shown
from meldpunt.web.i18n import LANGUAGES, Translator, pick_language
from meldpunt.web.security import FormTokens, RateLimiter, client_address, local_href
from meldpunt.web.words import Words, schemes_of

TEMPLATES = Path(__file__).parent / "templates"


@dataclass
class WebContext:
    services: Services
    config: WebSettings
    tokens: FormTokens
    report_limit: RateLimiter
    status_limit: RateLimiter
    matchers: MatcherCache
    env: Environment = field(
        default_factory=lambda: Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=select_autoescape(["html"]),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
    )
    #: urgent public reports per client and window (``web.urgent_rate``): beyond it, not urgent
    urgent_limit: RateLimiter = field(default_factory=lambda: RateLimiter(3, 600))
    #: ``web.emergency_numbers``, read once (a bad entry stops the app at start)
    emergency: tuple[EmergencyNumber, ...] = ()

    @classmethod
    def build(cls, services: Services, config: WebSettings) -> WebContext:
        key = hashlib.sha256(config.secret.encode()).digest() if config.secret else secrets.token_bytes(32)
        clock = services.clock

        def wall() -> float:
            return clock.now().timestamp()

        return cls(
            services=services,
            config=config,
            tokens=FormTokens(key, config.form_token_s, wall),
            report_limit=RateLimiter(config.report_rate, config.rate_window_s, clock.monotonic),
            status_limit=RateLimiter(config.status_rate, config.rate_window_s, clock.monotonic),
            matchers=MatcherCache(
                services, services.settings.matcher_refresh_s, clock=services.clock.monotonic
            ),
            urgent_limit=RateLimiter(config.urgent_rate, config.rate_window_s, clock.monotonic),
            emergency=parse(config.emergency_numbers),
        )

    def client(self, request: Request) -> str:
        """The client's address, for a rate limit's keyed hash only."""
        return client_address(request.scope)

    def render(
        self, request: Request, template: str, lang: str, status: int = 200, **values: Any
    ) -> HTMLResponse:
        t = Translator(lang)

        def link(path: str, **params: str) -> str:
            query = urlencode({"lang": lang, **params})
            return f"{path}?{query}"

        def lang_link(code: str) -> str:
            """This page in another language: same path (made safe), same query, ``lang`` replaced."""
            kept = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
            return local_href(request.url.path, [*kept, ("lang", code)])

        html = self.env.get_template(template).render(
            t=t,
            word=Words(t, schemes_of(request.app.state)),
            lang=lang,
            languages=LANGUAGES,
            config=self.config,
            link=link,
            lang_link=lang_link,
            here=request.url.path,  # the staff navigation marks the current page
            # configured texts shown through gettext, so the defaults come translated
            emergency=shown(self.emergency, t),
            **values,
        )
        return HTMLResponse(html, status_code=status)


def ctx(request: Request) -> WebContext:
    value: WebContext = request.app.state.ctx
    return value


def request_language(request: Request, form_value: str | None = None) -> str:
    return pick_language(
        form_value or request.query_params.get("lang"), request.headers.get("accept-language")
    )


def staff_language(request: Request) -> str:
    """The language of a staff page: the analyst's browser's (Accept-Language), else English.
    No ``?lang=`` here: staff pages are not linked to from outside, and one rule is enough."""
    return pick_language(None, request.headers.get("accept-language"))


def staff_translator(request: Request) -> Translator:
    """What a staff page's Python code puts on the page goes through this, in :func:`staff_language`."""
    return Translator(staff_language(request))
