"""The staff workspace builder: a world with staff users and a signed-in app."""

from __future__ import annotations

import io
import secrets
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update

from meldpunt.audit import entries as audit_entries
from meldpunt.bootstrap import Services
from meldpunt.clock import ManualClock
from meldpunt.settings import Settings
from meldpunt.store.reports import Item, Medium
from meldpunt.stores.review import ReviewStore
from meldpunt.triage import Triage, TriageConfig
from tests.helpers.accounts import PASSWORD
from tests.helpers.imagegen import scene
from tests.helpers.staff import Staff, enrol, token
from tests.helpers.webclient import WebClient
from tests.helpers.world import Clock, World


def png(seed: int) -> bytes:
    out = io.BytesIO()
    scene(seed, 320, 240).save(out, format="PNG")
    return out.getvalue()


@dataclass
class Workspace:
    staff: Staff
    world: World
    triage: Triage

    def user(self, name: str, role: str) -> WebClient:
        """A new user of ``role``, signed in (enrolment signs in)."""
        self.staff.accounts.create_user(name, role, PASSWORD)
        client = self.staff.client()
        enrol(self.staff, client, name)
        return client

    def item(
        self, *, images: int = 2, urgent: bool = False, source: str = "public", pdqs: tuple[str, ...] = ()
    ) -> int:
        """An item awaiting review with ``images`` benign generated images in the review store
        (synthetic PDQ hashes: ``pdqs``, else random ones)."""
        pdqs = pdqs or tuple(self.world.pdq() for _ in range(images))
        iid = self.world.item(pdqs=pdqs, blobs=False, urgent=urgent, source=source)
        with self.world.engine.begin() as conn:
            conn.execute(update(Item).where(Item.id == iid).values(server_ip="192.0.2.7"))
            for n, mid in enumerate(conn.execute(select(Medium.id).where(Medium.item_id == iid)).scalars()):
                self.world.store.put(conn, int(mid), png(iid * 10 + n))
        return iid

    def media(self, item_id: int) -> list[int]:
        with self.world.engine.connect() as conn:
            return [
                int(m)
                for m in conn.execute(
                    select(Medium.id).where(Medium.item_id == item_id).order_by(Medium.id)
                ).scalars()
            ]

    def stored(self, medium_id: int) -> bytes:
        with self.world.engine.connect() as conn:
            return self.world.store.get(conn, medium_id)

    def audit(self, action: str) -> list[tuple[str, str, dict[str, object]]]:
        with self.world.engine.connect() as conn:
            return [(e.actor, e.subject, dict(e.details)) for e in audit_entries(conn, action=action)]


def _workspace(db_url: str, stack: ExitStack) -> Workspace:
    # the one clock of the app's services: a test moves it on instead of waiting
    services = Services(Settings.from_env({}, db=db_url), clock=ManualClock(datetime.now(UTC)))
    stack.callback(services.close)
    staff = Staff(services, stack)
    store = ReviewStore(secrets.token_bytes(32))
    world = World(services.engine, services.settings, Clock(), store)
    t = Triage(
        services.engine, settings=services.settings, config=TriageConfig(hotline="test"), review_store=store
    )
    staff.app.state.triage = t
    return Workspace(staff, world, t)


def classify(client: WebClient, item_id: int, page_html: str, data: Mapping[str, Any]) -> int:
    body: dict[str, str | list[str]] = {"token": token(page_html)}
    for k, v in data.items():
        if k == "flags":
            body["flag"] = [str(f) for f in v]
        elif k == "series":
            body["series"] = str(v)
        else:
            body[f"scheme.{k}"] = str(v)
    r = client.post(f"/items/{item_id}/classify", data=body)
    return r.status_code


def reveal(client: WebClient, item_id: int, medium_id: int, page_html: str) -> str:
    r = client.post(f"/items/{item_id}/media/{medium_id}/reveal", data={"token": token(page_html)})
    assert r.status_code == 303, r.text
    return str(r.headers["location"])
