"""Locate and act in the demo: nine days of takedowns played on a clock that starts nine days ago,
through the real ticks and jobs, so a newcomer finds every state the moment the demo starts —
a notice just sent, one overdue and escalated to the police, one removed (with its time to
removal), one moved to another host (and removed there), one urgent alert acknowledged.

The hosting "providers" are demo webs on loopback addresses behind ``*.demo.test`` names (the
services' resolver maps them, as a test's does): Demo Hosting on 127.0.0.1, Elsewhere Hosting on
127.0.0.2 (where the moved page goes), Quick Hosting on 127.0.0.3. The notices and alerts go to
the demo's mailbox (:class:`Mailbox`: a real SMTP server on loopback that writes each message to
a folder as an ``.eml`` file), so the provider's answer link in a notice can be followed.

Loopback is "this machine" to the locator, so the demo locates with :class:`DemoLocator`: the
real locator, plus demo facts (country, AS number from the documentation range, provider; source
"demo") for the providers' addresses. Demo Hosting is in Belgium, the demo's home country (a
notice, and a police referral due by the default rule); Elsewhere in Great Britain, Quick in
France (a notice each, by the ``*`` rule); NL Demo Hosting in the Netherlands, where the demo's
partner hotline takes over (``demo.borders``: a forwarded item and its status back).
"""

from __future__ import annotations

import email
import email.policy
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from meldpunt.clock import ManualClock
from meldpunt.demo import survivor as demo_survivor
from meldpunt.locate import Locator
from meldpunt.locate.locator import Location

log = logging.getLogger(__name__)

#: the demo's hosting providers: name -> (address, abuse contact, language)
PROVIDERS = {
    "hosting.demo.test": ("127.0.0.1", "Demo Hosting BV", "abuse@hosting.demo.test", "nl"),
    "elsewhere.demo.test": ("127.0.0.2", "Elsewhere Hosting Ltd", "abuse@elsewhere.demo.test", "en"),
    "quick.demo.test": ("127.0.0.3", "Quick Hosting SRL", "abuse@quick.demo.test", "fr"),
}
#: demo facts for the providers' addresses: address -> (country, AS number, provider). The AS
#: numbers are from the range kept for documentation (RFC 5398: AS64496-AS64511).
HOSTING_FACTS = {
    "127.0.0.1": ("BE", 64496, "Demo Hosting BV"),
    "127.0.0.2": ("GB", 64497, "Elsewhere Hosting Ltd"),
    "127.0.0.3": ("FR", 64498, "Quick Hosting SRL"),
    "127.0.0.4": ("NL", 64499, "NL Demo Hosting B.V."),
}
#: the demo's on-call people (alerts go to the demo mailbox)
ONCALL = ("Demo Senior <senior@hotline.demo.test>", "Demo Analyst <analyst@hotline.demo.test>")
#: pages of the act scenarios, each showing a medium on the demo's auto list (so the hash list's
#: label makes it actionable without an analyst)
ACT_PAGES = {
    "/act/stubborn.html": '<img src="/media/sunset-over-hills.jpg" alt="">',
    "/act/removed.html": '<img src="/media/sunset-over-hills-resized-copy.jpg" alt="">',
    "/act/moved.html": '<img src="/media/sunset-over-hills.jpg" alt=""><p>moved</p>',
    "/act/fresh.html": '<img src="/media/sunset-over-hills-resized-copy.jpg" alt=""><p>fresh</p>',
    **demo_survivor.PAGES,  # the survivor's picture, an edited copy (demo.survivor)
}
DAYS = 9


@dataclass
class Mailbox:
    """A real SMTP server on loopback that keeps every message as ``NNN.eml`` in ``folder``."""

    folder: Path
    host: str = "127.0.0.1"
    port: int = 0
    count: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    _controller: Any = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.count += 1
            (self.folder / f"{self.count:04d}.eml").write_bytes(envelope.original_content or b"")
        return "250 Message accepted for the demo mailbox"

    def start(self) -> Mailbox:
        import socket

        from aiosmtpd.controller import Controller

        self.folder.mkdir(parents=True, exist_ok=True)
        with socket.socket() as s:
            s.bind((self.host, 0))
            self.port = int(s.getsockname()[1])
        self._controller = Controller(self, hostname=self.host, port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()

    def links(self) -> list[tuple[str, str]]:
        """(To, answer link) of every notice in the mailbox, oldest first."""
        out = []
        for path in sorted(self.folder.glob("*.eml")):
            message: Any = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            body = message.get_body(preferencelist=("plain",))
            text = body.get_content() if body is not None else ""
            for word in text.split():
                if "/provider/" in word:
                    out.append((str(message["To"]), word.strip("<>.,")))
        return out


class DemoResolver:
    """``*.demo.test`` -> the providers' loopback addresses (a page can move to another one);
    every other name as the system resolves it."""

    def __init__(self) -> None:
        self.hosts = {name: [ip] for name, (ip, *_rest) in PROVIDERS.items()}
        self.hosts["moved.demo.test"] = [PROVIDERS["hosting.demo.test"][0]]

    def move(self, host: str, ip: str) -> None:
        self.hosts[host] = [ip]

    def __call__(self, host: str) -> list[str]:
        if host in self.hosts:
            return list(self.hosts[host])
        import socket

        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        return list(dict.fromkeys(str(i[4][0]) for i in infos))


class DemoLocator(Locator):
    """The real locator, with the demo's facts (:data:`HOSTING_FACTS`, source "demo") for the
    providers' loopback addresses, which the locator itself knows only as "this machine"."""

    def locate(self, host: str, connected_ip: str = "", *, now: datetime, cache: Any = None) -> Location:
        loc = super().locate(host, connected_ip, now=now, cache=cache)
        facts = HOSTING_FACTS.get(loc.ip)
        if facts is not None:
            country, asn, provider = facts
            stamp = now.isoformat(timespec="seconds")
            loc.set("prefix", f"{loc.ip}/32", "demo", stamp)
            loc.set("asn", asn, "demo", stamp)
            loc.set("network_owner", provider, "demo", stamp)
            loc.set("country", country, "demo", stamp)
            loc.set("provider", provider, "demo", stamp)
        return loc


def demo_locator(services: Any) -> DemoLocator:
    """A :class:`DemoLocator` for ``services`` (its settings and resolver), as ``services.locator``."""
    from meldpunt.locate.locator import geo_dir

    return DemoLocator(
        services.settings.locate, geo_dir=geo_dir(services.settings), resolver=services.resolver
    )


@dataclass
class ActDemo:
    #: the providers' demo webs (stop them at the end)
    webs: list[Any]
    #: what was played, in words, for the banner
    story: list[str]
    #: the answer link of the newest notice (Quick Hosting's), for the banner
    provider_link: str = ""
    #: the page forwarded to the partner hotline ("": that story was left out)
    forwarded_url: str = ""
    #: the demo's item of that page
    forwarded_item: int | None = None
    #: the partner's database, kept after the play
    partner_db: str = ""
    #: the survivor's case registered on day 0 (its code and passphrase for the banner)
    survivor: demo_survivor.SurvivorDemo | None = None


def act_settings(settings: Any, mailbox: Mailbox, public_url: str) -> Any:
    """The demo's settings for locate and act: its mailbox, its on-call people, no RDAP (there is
    no network), every day a sending day (the story must not depend on the weekday)."""
    return replace(
        settings,
        mail=replace(
            settings.mail,
            smtp_host=mailbox.host,
            smtp_port=mailbox.port,
            sender="meldpunt-demo@hotline.demo.test",
            reply_to="reports@hotline.demo.test",
            public_url=public_url,
        ),
        locate=replace(settings.locate, rdap=False),
        notice=replace(settings.notice, quiet_weekdays=(), holidays=()),
        alert=replace(settings.alert, oncall=ONCALL),
    )


def seed_contacts(services: Any) -> None:
    """The three demo providers as abuse contacts (by network), as a senior would add them."""
    from meldpunt.act.contacts import add_contact

    for name, (ip, provider, address, language) in PROVIDERS.items():
        add_contact(
            services,
            {
                "scope": "network",
                "match": f"{ip}/32",
                "name": provider,
                "channel": "email",
                "address": address,
                "language": language,
                "note": f"demo provider behind {name}",
            },
            actor="demo",
        )


def play(
    services: Any,
    mailbox: Mailbox,
    resolver: DemoResolver,
    web_port: int,
    *,
    now: datetime | None = None,
    lists: Callable[[Any], object] | None = None,
) -> ActDemo:
    """Play the demo's nine days of locate and act into ``services``' database (the demo's own),
    with the providers' demo webs started on ``web_port`` of their addresses. The webs keep
    running for the live demo: stop them at the end (``ActDemo.webs``).

    With ``lists`` (what imports the demo's hash lists into a database), the partner hotline plays
    beside it (``demo.borders``): a page in the Netherlands is forwarded to it on day 2, and its
    statuses come back. Without 127.0.0.4 on loopback that story is left out, with a warning."""
    from meldpunt.act import alerts
    from meldpunt.act.ticks import settle
    from meldpunt.bootstrap import Services
    from meldpunt.demo import borders as across
    from meldpunt.demo.web import DemoWeb
    from meldpunt.pipeline.intake import ReportIn, submit_report

    end = (now or datetime.now(UTC)).replace(microsecond=0)
    clock = ManualClock(end - timedelta(days=DAYS))
    webs = [DemoWeb(ip, web_port, extra=ACT_PAGES).start() for ip, *_ in PROVIDERS.values()]
    hosting, elsewhere, _quick = webs
    story: list[str] = []
    seed_contacts(services)
    played = Services(services.settings, clock, resolver=resolver)
    played.locator = demo_locator(played)
    borders = None
    if lists is not None:
        try:
            borders = across.start(played, mailbox, resolver, web_port, lists)
        except OSError as exc:  # 127.0.0.4 is loopback on Linux, not on every system
            log.warning("the demo's forwarding story is left out: %s", exc)

    def url(host: str, path: str) -> str:
        return f"http://{host}:{web_port}{path}"

    def until(at: datetime, step_h: float = 1.0) -> None:
        while clock.now() < at:
            clock.advance(min(step_h * 3600, (at - clock.now()).total_seconds()))
            settle(played)
            if borders is not None:
                borders.settle(clock.now())

    t0 = clock.now()
    try:
        # day 0: a survivor registers the hashes of a picture (demo.survivor); an edited copy of
        # it is online at Elsewhere Hosting, reported the same day
        case = demo_survivor.register_case(played)
        submit_report(played, ReportIn(urls=[url("elsewhere.demo.test", demo_survivor.PAGE)]))
        # three pages at Demo Hosting reported (one of them will move); one more, urgent
        for host, path in (
            ("hosting.demo.test", "/act/stubborn.html"),
            ("hosting.demo.test", "/act/removed.html"),
            ("moved.demo.test", "/act/moved.html"),
        ):
            submit_report(played, ReportIn(urls=[url(host, path)]))
        submit_report(played, ReportIn(urls=[url("hosting.demo.test", "/gallery/sunset.html")], urgent=True))
        settle(played)
        clock.advance(4 * 60)  # the on-call senior takes the alert after four minutes
        for alert in alerts.open_alerts(played.engine):
            alerts.acknowledge(played, alert.id, by="demo-senior")
        # day 1: one notice to Demo Hosting lists the three URLs; half a day later the provider
        # says one is removed (the answer link), and the re-checks confirm it
        until(t0 + timedelta(days=1, hours=2))
        links = [link for to, link in mailbox.links() if "hosting.demo.test" in to]
        hosting.gone.add("/act/removed.html")
        if links:
            _answer_removed(played, links[0], url("hosting.demo.test", "/act/removed.html"))
        # day 2: the moved page now answers from Elsewhere Hosting's address: located, routed and
        # noticed again there; Elsewhere removes it on day 4
        until(t0 + timedelta(days=2))
        resolver.move("moved.demo.test", PROVIDERS["elsewhere.demo.test"][0])
        if borders is not None:  # a page hosted in the Netherlands: forwarded to the partner
            borders.report()
        until(t0 + timedelta(days=4))
        elsewhere.gone.add("/act/moved.html")
        elsewhere.gone.add(demo_survivor.PAGE)
        until(t0 + timedelta(days=DAYS - 1, hours=-12), step_h=3.0)
        # day 7.5: a new page at Quick Hosting; its notice goes out on day 8.5
        submit_report(played, ReportIn(urls=[url("quick.demo.test", "/act/fresh.html")]))
        until(end, step_h=2.0)
    finally:
        if borders is not None:
            borders.close()  # the statuses are in: the servers stop, the partner's database stays
        played.close()
    story += [
        "a notice to Quick Hosting was sent a few hours ago (in French)",
        "Demo Hosting never removed stubborn.html: reminders, then the overdue queue, then the police",
        "removed.html was removed half a day after the notice (the provider said so, re-checks confirmed)",
        "moved.html moved to Elsewhere Hosting, was noticed there and removed",
        "an urgent report alerted the on-call senior, who acknowledged it after 4 minutes",
    ]
    story.append(
        "a survivor registered the hashes of lake-at-dawn.jpg on day 0; an edited copy at Elsewhere"
        " Hosting was found, noticed and removed (the survivor's timeline shows each step)"
    )
    act = ActDemo(webs, story, survivor=case)
    if borders is not None:
        webs.append(borders.web)
        story += borders.story
        act.forwarded_url = borders.page_url
        act.forwarded_item = borders.item_id
        act.partner_db = str(across.partner_db(services.settings.db))
    quick = [link for to, link in mailbox.links() if "quick.demo.test" in to]
    act.provider_link = quick[-1] if quick else ""
    return act


def _answer_removed(services: Any, link: str, page_url: str) -> None:
    from meldpunt.act.notice_answers import provider_answer, provider_view

    token = link.rsplit("/", 1)[-1]
    for line in provider_view(services, token).items:
        if line.url == page_url:
            provider_answer(services, token, line.takedown_id, "removed")
