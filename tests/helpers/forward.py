"""Two meldpunt instances that forward to each other (#11 part "forward"): each its own database,
key ring and ``Services``, both on one shared ``ManualClock``, each web app served by uvicorn in a
thread on loopback (the partner inbox is a real HTTP endpoint), configured as partners both ways
with each other's public keys."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from meldpunt.act.ticks import settle
from meldpunt.bootstrap import Services
from meldpunt.clock import ManualClock
from meldpunt.domain.acting import TakedownState
from meldpunt.settings import KeySettings, LocateSettings, PartnerSettings, Settings
from meldpunt.store.acting import ActionEvent, Takedown
from meldpunt.store.forwarding import ForwardIn, ForwardOut
from tests.helpers.smtp import _free_port


@dataclass
class Instance:
    name: str
    country: str
    services: Services
    base: str
    server: Any = None
    thread: threading.Thread | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def clock(self) -> ManualClock:
        clock = self.services.clock
        assert isinstance(clock, ManualClock)
        return clock

    def public_key(self) -> str:
        return str(self.services.signing_keys().current.public_b64)

    def events(self, item_id: int, kind: str | None = None) -> list[tuple[str, dict[str, Any], datetime]]:
        q = select(ActionEvent).where(ActionEvent.item_id == item_id).order_by(ActionEvent.id)
        if kind:
            q = q.where(ActionEvent.kind == kind)
        with self.services.engine.connect() as conn:
            return [(r.kind, json.loads(r.detail), r.at) for r in conn.execute(q)]

    def takedown(self, item_id: int) -> Any:
        with self.services.engine.connect() as conn:
            return conn.execute(select(Takedown).where(Takedown.item_id == item_id)).first()

    def forwards_out(self) -> list[Any]:
        with self.services.engine.connect() as conn:
            return list(conn.execute(select(ForwardOut).order_by(ForwardOut.id)).all())

    def forwards_in(self) -> list[Any]:
        with self.services.engine.connect() as conn:
            return list(conn.execute(select(ForwardIn).order_by(ForwardIn.id)).all())

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=10)
        self.services.close()


def start(
    db: str,
    name: str,
    country: str,
    clock: ManualClock,
    tmp: Path,
    *,
    resolver: Callable[[str], list[str]] | None = None,
    settings: Callable[[Settings], Settings] | None = None,
) -> Instance:
    """An instance called ``name`` (its partners know it so) in ``country``, served on loopback."""
    import uvicorn

    from meldpunt.web import create_app

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    s = Settings(
        db=db,
        fetch_allowed_networks="127.0.0.0/8",
        locate=LocateSettings(rdap=False),
        keys=KeySettings(file=str(tmp / f"{name}.signkeys")),
        partner=PartnerSettings(instance_name=name),
    )
    s = replace(s, act=replace(s.act, home_country=country))
    if settings is not None:
        s = settings(s)
    services = Services(s, clock, resolver=resolver) if resolver else Services(s, clock)
    server = uvicorn.Server(
        uvicorn.Config(create_app(services), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    return Instance(name, country, services, base, server, thread)


def pair(a: Instance, b: Instance) -> None:
    """Each knows the other: its address, country and public key; A forwards B's country to B."""
    from meldpunt.act.contacts import add_rule
    from meldpunt.act.partners import Partners

    Partners(a.services).add(b.name, b.base, [b.country], [b.public_key()], actor="test")
    Partners(b.services).add(a.name, a.base, [a.country], [a.public_key()], actor="test")
    add_rule(
        a.services, {"country": b.country, "action": "forward", "partner": b.name, "position": "0"}, "test"
    )


def settle_all(*instances: Instance, rounds: int = 30) -> None:
    """Ticks and jobs on every instance until none has anything left (messages cross over)."""
    for _ in range(rounds):
        done = sum(settle(i.services) for i in instances)
        if done == 0:
            return
    raise RuntimeError("the instances did not settle")


def route_to(inst: Instance, item_id: int, *, country: str, **location: Any) -> None:
    """The item's takedown located in ``country`` (the locate step's row written directly, as the
    other act tests do: loopback has no country) and back to routing."""
    from tests.helpers.acting import seed_location

    lid = seed_location(inst.services.engine, item_id, now=inst.clock.now(), country=country, **location)
    with inst.services.engine.begin() as conn:
        conn.execute(
            update(Takedown)
            .where(Takedown.item_id == item_id)
            .values(state=TakedownState.TO_ROUTE.value, location_id=lid)
        )
