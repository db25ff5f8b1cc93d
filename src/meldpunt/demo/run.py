"""Setting up the demo: a fresh demo database with the demo hash lists, the benign demo web on
loopback, a few reports already walking, and an API token — everything ``meldpunt demo`` shows."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

from meldpunt.banks.formats import get_format
from meldpunt.bootstrap import Services
from meldpunt.demo import BENIGN_LIST, KNOWN_LIST
from meldpunt.demo.web import DemoWeb, demo_reports
from meldpunt.settings import Settings

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


def demo_accounts(services: Services) -> list[DemoLogin]:
    """One enrolled account per role, so a newcomer can sign in at once."""
    import pyotp

    from meldpunt.accounts.roles import ROLES
    from meldpunt.accounts.service import TOTP_STEP

    accounts = services.accounts()
    logins = []
    for role in ROLES:
        name = f"demo-{role}"
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


def prepare(settings: Settings, db: Path, *, web_port: int = 0) -> Demo:
    """A fresh demo: lists imported, the demo web started, reports submitted (not yet walked)."""
    from meldpunt.pipeline.api_tokens import SCOPES, create_api_token
    from meldpunt.pipeline.intake import ReportIn, submit_report

    reset_database(db)
    # The demo web lives on loopback, which the SSRF guard refuses: allow it, for the demo only.
    settings = replace(settings, db=str(db), fetch_allowed_networks="127.0.0.0/8", worker_poll_s=0.2)
    services = Services(settings)
    import_demo_lists(services)
    services.pdq_index()
    web = DemoWeb(port=web_port).start()
    receipts = [
        submit_report(services, ReportIn(urls=urls, urgent=urgent, seen_on="website", source="public")).code
        for urls, urgent in demo_reports(web)
    ]
    token = create_api_token(services, "demo", SCOPES)  # every scope: /internal/items too
    return Demo(services, web, token, receipts, demo_accounts(services))
