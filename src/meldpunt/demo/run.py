"""Setting up the demo: a fresh demo database with the demo hash lists, the benign demo web on
loopback, a few reports already walking, and an API token — everything ``meldpunt demo`` shows."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from meldpunt.banks.formats import get_format
from meldpunt.bootstrap import Services
from meldpunt.demo import BENIGN_LIST, KNOWN_LIST
from meldpunt.demo.acting import ActDemo, DemoResolver, Mailbox, act_settings, play
from meldpunt.demo.borders import DEMO_NAME
from meldpunt.demo.web import DemoWeb, demo_reports
from meldpunt.settings import Settings

log = logging.getLogger(__name__)

LISTS = (
    ("demo-known", KNOWN_LIST, "csv", "auto", "Demo list of already-classified items (synthetic labels)"),
    ("demo-benign", BENIGN_LIST, "te", "ignore", "Demo list of known benign files"),
)


def import_demo_lists(services: Services) -> list[tuple[str, str, int]]:
    out = []
    for name, file, fmt, policy, desc in LISTS:
        with file.open("rb") as fp:
            r = services.banks.import_records(
                name,
                get_format(fmt).read(fp),
                source_name=file.name,
                source_sha256="",
                fmt=fmt,
                replace=True,
                policy=policy,
                description=desc,
            )
        out.append((name, policy, r.entries))
    return out


def reset_database(db: Path) -> None:
    """Remove a demo database and everything kept beside it, so the demo starts from nothing."""
    for p in db.parent.glob(db.name + "*"):
        shutil.rmtree(p) if p.is_dir() else p.unlink()


DEMO_PASSWORD = "demo-password-not-for-production"

#: what two of the demo's reporters wrote: the same (made-up) Telegram account and a Bitcoin
#: address (BIP-173's test vector), so link analysis has a group to show (#13)
DEMO_DESCRIPTIONS = {
    0: "The seller advertises on t.me/demo_seller_example and wants payment to "
    "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",
    2: "Same account as in my last report: telegram @demo_seller_example",
}


@dataclass(frozen=True)
class DemoLogin:
    name: str
    role: str
    password: str
    totp_secret: str
    #: a code accepted now (enrolment used the step before the current one; see demo_accounts)
    code: str


@dataclass
class Demo:
    services: Services
    web: DemoWeb
    token: str
    receipts: list[str]
    logins: list[DemoLogin]
    #: the page whose item the demo leaves in disagreement (see :func:`seed_disagreement`)
    disputed_url: str = ""
    #: where the demo's notices and alerts arrive (a real SMTP server on loopback)
    mailbox: Mailbox | None = None
    #: the locate-and-act story played into the database (None: not played)
    act: ActDemo | None = None
    #: the reference of the police referral package the demo made (None: none)
    referral: str | None = None

    def stop(self) -> None:
        """Stop the demo's webs and mailbox (the services stay open)."""
        self.web.stop()
        if self.act is not None:
            for web in self.act.webs:
                web.stop()
        if self.mailbox is not None:
            self.mailbox.stop()


#: accounts beyond one per role: a second senior, so that a disagreement between the analyst and
#: a senior (who may give opinions too) still leaves a senior who gave neither opinion to resolve it
EXTRA_ACCOUNTS = (("demo-senior2", "senior"),)


def demo_accounts(services: Services) -> list[DemoLogin]:
    """One enrolled account per role and :data:`EXTRA_ACCOUNTS`, so a newcomer can sign in at once
    and try every flow: a second opinion, a disagreement and its resolution, administration."""
    import pyotp

    from meldpunt.accounts.roles import ROLES
    from meldpunt.accounts.service import TOTP_STEP

    accounts = services.accounts()
    logins = []
    for name, role in [*((f"demo-{r}", r) for r in ROLES), *EXTRA_ACCOUNTS]:
        accounts.create_user(name, role, DEMO_PASSWORD)
        info = accounts.user(name)
        assert info is not None
        secret = accounts.begin_enrolment(info.id)
        assert secret is not None
        totp = pyotp.TOTP(secret)
        # Enrol with the code of the step *before* this one (accepted: one step either side). The
        # replay guard remembers the step enrolment used, and refuses it ever after: enrolling with
        # the current code made every authenticator app — and the "later codes" command — show a
        # refused code for the rest of this 30-second step.
        if accounts.finish_enrolment(info.id, totp.at(time.time() - TOTP_STEP)) is None:
            accounts.finish_enrolment(info.id, totp.now())  # the step changed in between
        logins.append(DemoLogin(name, role, DEMO_PASSWORD, secret, totp.now()))
    return logins


def prepare(
    settings: Settings,
    db: Path,
    *,
    web_port: int = 0,
    public_url: str = "http://127.0.0.1:8000",
    act_story: bool = True,
) -> Demo:
    """A fresh demo: lists imported, the demo web started, reports submitted (not yet walked);
    with ``act_story``, nine days of locate and act played first (``demo.acting``), its notices
    and alerts in the demo's mailbox. ``public_url``: where the web app will be (for the links in
    notices and alerts)."""
    from meldpunt.pipeline.api_tokens import SCOPES, create_api_token
    from meldpunt.pipeline.intake import ReportIn, submit_report

    reset_database(db)
    # The demo web lives on loopback, which the SSRF guard refuses: allow it, for the demo only.
    settings = replace(
        settings,
        db=str(db),
        fetch_allowed_networks="127.0.0.0/8",
        worker_poll_s=0.2,
        partner=replace(settings.partner, instance_name=DEMO_NAME),
    )
    mailbox = Mailbox(db.parent / (db.name + ".mailbox")).start()
    resolver = DemoResolver()
    services = Services(act_settings(settings, mailbox, public_url), resolver=resolver)
    import_demo_lists(services)
    services.pdq_index()
    act = None
    if act_story:
        try:
            act = play(services, mailbox, resolver, _free_port(), lists=import_demo_lists)
        except OSError as exc:  # 127.0.0.2-3 are loopback on Linux, not on every system
            log.warning("the demo's locate-and-act story is left out: %s", exc)
    web = DemoWeb(port=web_port).start()
    receipts = [
        submit_report(
            services,
            ReportIn(
                urls=urls,
                urgent=urgent,
                seen_on="website",
                source="public",
                description=DEMO_DESCRIPTIONS.get(n, ""),
            ),
        ).code
        for n, (urls, urgent) in enumerate(demo_reports(web))
    ]
    token = create_api_token(services, "demo", SCOPES)  # every scope: /internal/items too
    disputed = web.url(DISPUTED_PAGE)
    logins = demo_accounts(services)
    referral = make_referral(services) if act is not None else None
    return Demo(services, web, token, receipts, logins, disputed, mailbox, act, referral)


#: the page whose police referral the demo makes (Demo Hosting never removed it)
REFERRED_PAGE = "/act/stubborn.html"


def make_referral(services: Services) -> str | None:
    """As demo-senior, a police referral package for the stubborn item (hosted in the home
    country, so due by the default rule): ``/referrals`` shows it made, with the other cases still
    due. Its reference; None when there is no such item due."""
    from sqlalchemy import select

    from meldpunt.act.referrals import create
    from meldpunt.store.acting import Takedown
    from meldpunt.store.reports import Item

    with services.engine.connect() as conn:
        item = conn.execute(
            select(Item.id)
            .join(Takedown, Takedown.item_id == Item.id)
            .where(Item.url.like(f"%{REFERRED_PAGE}"), Takedown.police == "due")
            .order_by(Item.id)
            .limit(1)
        ).scalar()
    if item is None:
        return None
    return create(services, [int(item)], by="demo-senior").referral.reference


def _free_port() -> int:
    """A port free on the demo providers' loopback addresses (127.0.0.4 too where it is one)."""
    import socket

    from meldpunt.demo.acting import PROVIDERS
    from meldpunt.demo.borders import NL_HOST

    addresses = [ip for ip, *_rest in PROVIDERS.values()]
    try:
        with socket.socket() as t:
            t.bind((NL_HOST[1], 0))
        addresses.append(NL_HOST[1])
    except OSError:  # not loopback here: the forwarding story is left out (demo.acting.play)
        pass
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        try:
            for ip in addresses:
                with socket.socket() as t:
                    t.bind((ip, port))
        except OSError:
            continue
        return port
    raise OSError(f"no port free on {', '.join(addresses)} for the demo's providers")


#: the demo page whose item is left in disagreement (its twin behind the slow host stays in the
#: queue for the analysts to classify themselves)
DISPUTED_PAGE = "/gallery/mixed.html"
#: the two opinions that disagree: the analyst's and the second senior's
FIRST_OPINION = ("demo-analyst", {"status": "baseline", "us": "A1", "age_band": "prepubescent"})
SECOND_OPINION = ("demo-senior2", {"status": "not_illegal"})


def seed_disagreement(services: Services, url: str) -> int | None:
    """Give the item reported as ``url`` two opinions that disagree — the demo analyst's and the
    second senior's — so a disagreement waits for ``demo-senior`` (who gave neither) to resolve.
    Returns the item's id; None while the item is not yet waiting for review (call again later)
    or when it has opinions already."""
    from sqlalchemy import select

    from meldpunt.store.reports import Item

    with services.engine.connect() as conn:
        item_id = conn.execute(
            select(Item.id).where(Item.url == url, Item.state == "needs_review").order_by(Item.id).limit(1)
        ).scalar()
    if item_id is None:
        return None
    triage = services.triage  # under settings.triage (read from the environment, as before)
    if triage.stage(item_id) is not None:
        return None
    for user, classification in (FIRST_OPINION, SECOND_OPINION):
        triage.claim(item_id, user)
        triage.classify(item_id, user, classification)
    return int(item_id)


def seed_when_walked(
    services: Services, url: str, wait: Callable[[float], bool], tries: int = 240
) -> int | None:
    """:func:`seed_disagreement` once the workers have walked the item (the demo's background
    thread; ``wait`` is a stop event's wait: it returns True when the demo stops)."""
    for _ in range(tries):
        found = seed_disagreement(services, url)
        if found is not None or wait(0.5):
            return found
    return None
