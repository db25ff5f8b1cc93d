"""Across borders in the demo (#11): a partner hotline, played beside the demo's own instance.

The demo's instance is "meldpunt-demo" (home BE). Its partner, "offlimits-demo" (home NL), is a
second meldpunt instance in the same process: its own SQLite database and signing key ring beside
the demo's (``<db>.partner.db``, ``<db>.partner.db.signkeys``), the same injected clock and
resolver, the demo's hash lists (its ``auto`` list decides without an analyst), and an abuse
contact for NL Demo Hosting (whose notices arrive in the demo's mailbox). Both web apps are served
by uvicorn on free loopback ports for the play, because the signed channel is real HTTP: the demo
forwards to the partner's inbox, the partner sends its statuses back to the demo's. The two are
partners both ways (each with the other's public key), and the demo routes NL to the partner.

Nothing here steps the clock: ``demo.acting.play`` settles both instances as it moves the clock,
and calls :meth:`Borders.step` so that NL Demo Hosting removes the page a day after its notice.
The servers stop at the end of the play; the partner's database stays for a look afterwards.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from meldpunt.act.forwarding import forward_of
from meldpunt.act.ticks import settle
from meldpunt.bootstrap import Services
from meldpunt.clock import ManualClock
from meldpunt.demo import survivor as demo_survivor
from meldpunt.demo.acting import DemoResolver, Mailbox, act_settings, demo_locator
from meldpunt.demo.web import DemoWeb
from meldpunt.settings import KeySettings, Settings

#: the demo's instance and its partner, as each names itself in signed messages
DEMO_NAME = "meldpunt-demo"
PARTNER_NAME = "offlimits-demo"
#: the partner's provider: host, address, name, abuse contact, language
NL_HOST = ("nl.demo.test", "127.0.0.4", "NL Demo Hosting B.V.", "abuse@nl.demo.test", "nl")
#: the page hosted in the Netherlands (media on the demo's auto list; one is the demo survivor's
#: picture, so the forward shows on the survivor's timeline too)
ABROAD_PAGE = "/act/abroad.html"
ABROAD_PAGES = {
    ABROAD_PAGE: f'<img src="/media/sunset-over-hills.jpg" alt="">{demo_survivor.ABROAD_IMG}<p>abroad</p>'
}
#: how long NL Demo Hosting takes from the partner's notice to removing the page
PROVIDER_TAKES = timedelta(days=1)


def partner_db(db: str | Path) -> Path:
    """Where the partner's side is kept: ``<db>.partner.db`` beside the demo's database."""
    db = Path(db)
    return db.parent / (db.name + ".partner.db")


@dataclass
class Served:
    """An instance's web app served by uvicorn in a thread on a free loopback port."""

    server: Any
    thread: threading.Thread
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve(services: Services) -> Served:
    """Serve ``services``' real web app (the partner inbox is one of its routes) until :meth:`Served.stop`."""
    import socket

    import uvicorn

    from meldpunt.web import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    config = uvicorn.Config(
        create_app(services),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        log_config=None,
        access_log=False,
        server_header=False,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"demo-serve-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30  # waits for the socket to listen, not for a time
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise OSError(f"the demo could not serve an instance on 127.0.0.1:{port}")
        time.sleep(0.02)
    return Served(server, thread, port)


def partner_settings(settings: Settings, mailbox: Mailbox, public_url: str) -> Settings:
    """The partner's settings: the demo's (its mailbox, its fetch allowance), its own database and
    key ring beside the demo's, its own name, the Netherlands as its home country."""
    db = partner_db(settings.db)
    s: Settings = act_settings(replace(settings, db=str(db)), mailbox, public_url)
    return replace(
        s,
        keys=KeySettings(file=str(db.parent / (db.name + ".signkeys"))),
        partner=replace(s.partner, instance_name=PARTNER_NAME),
        act=replace(s.act, home_country="NL"),
        mail=replace(
            s.mail, sender="offlimits-demo@hotline.demo.test", reply_to="reports@offlimits.demo.test"
        ),
    )


@dataclass
class Borders:
    """The partner and the servers of the play; :meth:`close` at its end."""

    played: Services
    partner: Services
    servers: list[Served]
    web: DemoWeb
    web_port: int
    #: when the partner's notice to NL Demo Hosting went out (None: not yet)
    noticed_at: datetime | None = None
    story: list[str] = field(default_factory=list)
    #: the demo's item of the forwarded page (once reported)
    item_id: int | None = None
    #: ``removed`` came back from the partner: the story is told
    finished: bool = False

    @property
    def page_url(self) -> str:
        return f"http://{NL_HOST[0]}:{self.web_port}{ABROAD_PAGE}"

    def report(self) -> None:
        """The page in the Netherlands reported to the demo (which forwards it to the partner)."""
        from meldpunt.pipeline.intake import ReportIn, submit_report

        self.item_id = submit_report(self.played, ReportIn(urls=[self.page_url])).item_ids[0]

    def settle(self, now: datetime) -> None:
        """The partner's ticks and jobs (the demo's are settled by the play), from the report until
        ``removed`` is back; and NL Demo Hosting's part: a day after the partner's notice it takes
        the page down. Only while the story runs: an idle partner would cost the play time."""
        if self.item_id is None or self.finished:
            return
        settle(self.partner)
        if self.noticed_at is None:
            self.noticed_at = _first_notice(self.partner, self.page_url)
        elif now >= self.noticed_at + PROVIDER_TAKES:
            self.web.gone.add(ABROAD_PAGE)
        fwd = forward_of(self.played, self.item_id)
        self.finished = fwd is not None and any(line.status == "removed" for line in fwd.statuses)

    def close(self) -> None:
        """Tell the story, stop the servers (the statuses are in) and close the partner (its
        database stays)."""
        try:
            self.story = self.tell()
        finally:
            for served in self.servers:
                served.stop()
            self.partner.close()

    def tell(self) -> list[str]:
        """The story's lines for the banner, from what the two databases say."""
        item = self.item_id
        if item is None:
            return []
        fwd = forward_of(self.played, item)
        statuses = ", ".join(line.status.replace("_", " ") for line in fwd.statuses) if fwd else ""
        return [
            f"abroad.html on nl.demo.test (NL) was forwarded to the partner hotline {PARTNER_NAME}, "
            f"which noticed NL Demo Hosting; its statuses came back: {statuses or 'none yet'} "
            f"(its item is /items/{item})",
        ]


def start(
    played: Services,
    mailbox: Mailbox,
    resolver: DemoResolver,
    web_port: int,
    lists: Callable[[Services], object],
) -> Borders:
    """The partner instance with its lists, contact and provider web; both instances served and
    configured as partners both ways; the demo's rule: NL -> forward to the partner. ``OSError``
    when 127.0.0.4 is not a loopback address here (or a port is taken): nothing is left running."""
    from meldpunt.act.contacts import add_contact, add_rule
    from meldpunt.act.partners import Partners

    host, ip, provider, address, language = NL_HOST
    web = DemoWeb(ip, web_port, extra=ABROAD_PAGES).start()
    resolver.hosts[host] = [ip]
    clock = played.clock
    assert isinstance(clock, ManualClock)
    servers: list[Served] = []
    partner: Services | None = None
    try:
        servers.append(serve(played))
        settings = partner_settings(played.settings, mailbox, "http://127.0.0.1")
        partner = Services(settings, clock, resolver=resolver)
        partner.locator = demo_locator(partner)
        lists(partner)
        partner.pdq_index()
        servers.append(serve(partner))
        add_contact(
            partner,
            {
                "scope": "network",
                "match": f"{ip}/32",
                "name": provider,
                "channel": "email",
                "address": address,
                "language": language,
                "note": f"demo provider behind {host}",
            },
            actor="demo",
        )
        mine, theirs = servers
        Partners(played).add(
            PARTNER_NAME,
            theirs.url,
            ["NL"],
            [partner.signing_keys().current.public_b64],
            "the demo's partner hotline (in this process during the play)",
            actor="demo",
        )
        Partners(partner).add(
            DEMO_NAME,
            mine.url,
            ["BE"],
            [played.signing_keys().current.public_b64],
            "the demo's own instance",
            actor="demo",
        )
        add_rule(
            played, {"country": "NL", "action": "forward", "partner": PARTNER_NAME, "position": "0"}, "demo"
        )
    except BaseException:
        for served in servers:
            served.stop()
        if partner is not None:
            partner.close()
        web.stop()
        raise
    return Borders(played, partner, servers, web, web_port)


def _first_notice(services: Services, url: str) -> datetime | None:
    from sqlalchemy import select

    from meldpunt.act.context import utc
    from meldpunt.store.acting import Takedown
    from meldpunt.store.reports import Item

    with services.engine.connect() as conn:
        at = conn.execute(
            select(Takedown.first_notice_at)
            .join(Item, Item.id == Takedown.item_id)
            .where(Item.url == url, Takedown.first_notice_at.is_not(None))
            .limit(1)
        ).scalar()
    return utc(at) if at is not None else None
