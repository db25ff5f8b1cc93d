"""Link analysis worlds (#13): a loopback web of pages that carry entities, a small world of
reports that share a Telegram handle and a Bitcoin address, and a bulk world of many entities
built with bulk inserts (for the bounded-memory checks)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from typing import ClassVar

from sqlalchemy import DateTime, Engine

from meldpunt.store.entities import entity_key, link_entities
from tests.helpers.acting import seed_report_item
from tests.helpers.fakeweb import _send
from tests.helpers.pipeline import png

HANDLE = "telegram:shared_handle"
BTC = "btc:1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"


class LinksWeb:
    """``/gallery``: an image, a Telegram link and a Bitcoin address in its text, a link to a
    shop elsewhere; ``/plain``: text only (no media), a phone number; ``/img/1.png``."""

    pages: ClassVar[dict[str, str]] = {
        "/gallery": (
            "<!doctype html><html><head><meta name='description' content='gallery'></head><body>"
            "<img src='/img/1.png'><p>Join t.me/Shared_Handle · BTC 1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2</p>"
            "<a href='https://shop.example.org/buy?id=7'>buy</a><script>t.me/not_in_text</script>"
            "</body></html>"
        ),
        "/plain": "<!doctype html><html><body><p>Bel +32 470 12 34 56</p></body></html>",
    }

    def route(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path.split("?", 1)[0]
        if path in self.pages:
            _send(h, 200, self.pages[path].encode(), "text/html; charset=utf-8")
        elif path == "/img/1.png":
            _send(h, 200, png(41), "image/png")
        else:
            _send(h, 404, b"not here", "text/plain")


def seed_report(engine: Engine, now: datetime, url: str, description: str = "") -> tuple[int, int]:
    """A report naming ``url`` and its item, as intake stores them (no jobs): (report, item)."""
    rid, iid, _ = seed_report_item(engine, url, now=now, state="needs_review", description=description)
    return rid, iid


def shared_world(engine: Engine, now: datetime) -> dict[str, int]:
    """Two reports on two hosts that share a Telegram handle and a Bitcoin address (one in its
    description, one on its page), and a third that shares nothing."""
    r1, i1 = seed_report(engine, now, "http://gallery.example/one")
    r2, i2 = seed_report(engine, now, "http://files.example/two", "telegram @shared_handle")
    r3, i3 = seed_report(engine, now, "http://elsewhere.example/three", "mail other@example.net")
    with engine.begin() as conn:
        link_entities(
            conn, [("handle", HANDLE), ("crypto", BTC), ("domain", "shop.example.org")], now, item_id=i1
        )
        link_entities(conn, [("handle", HANDLE), ("crypto", BTC)], now, report_id=r2)
        link_entities(conn, [("email", "other@example.net")], now, report_id=r3)
    return {"r1": r1, "i1": i1, "r2": r2, "i2": i2, "r3": r3, "i3": i3}


def bulk_world(engine: Engine, now: datetime, entities: int, *, per_group: int = 8) -> int:
    """``entities`` entities in groups of ``per_group``: each group has two reports (one item
    each) that share the group's first entity, the others found in one of the two. Rows go in by
    bulk inserts with explicit ids. Returns the number of reports."""
    # timestamps rendered once as the dialect stores them (not once per row by the driver)
    stamp = DateTime(timezone=True).dialect_impl(engine.dialect).bind_processor(engine.dialect)
    now = stamp(now) if stamp is not None else now  # type: ignore[assignment]
    groups = entities // per_group
    reports = [
        {
            "id": n,
            "receipt_hash": hashlib.sha256(f"r{n}".encode()).hexdigest(),
            "source": "public",
            "seen_on": "website",
            "description": "",
            "contact": "",
            "urgent": False,
            "language": "en",
            "created_at": now,
        }
        for n in range(1, 2 * groups + 1)
    ]
    items = [
        {
            "id": n,
            "report_id": n,
            "url": f"http://h{n}.example/p",
            "url_key": hashlib.sha256(f"i{n}".encode()).hexdigest(),
            "host": f"h{n}.example",
            "state": "needs_review",
            "urgent": False,
            "error": "",
            "server_ip": "",
            "final_url": "",
            "created_at": now,
            "updated_at": now,
        }
        for n in range(1, 2 * groups + 1)
    ]
    ents = []
    e_reports = []
    e_items = []
    for g in range(groups):
        r_a, r_b = 2 * g + 1, 2 * g + 2
        for k in range(per_group):
            eid = g * per_group + k + 1
            value = f"telegram:user{eid}"
            ents.append(
                {
                    "id": eid,
                    "kind": "handle",
                    "value": value,
                    "key": entity_key("handle", value),
                    "first_seen": now,
                    "last_seen": now,
                }
            )
            if k == 0:
                e_reports.append({"entity_id": eid, "report_id": r_a, "first_seen": now, "last_seen": now})
                e_items.append({"entity_id": eid, "item_id": r_b, "first_seen": now, "last_seen": now})
            elif k % 2:
                e_reports.append({"entity_id": eid, "report_id": r_a, "first_seen": now, "last_seen": now})
            else:
                e_items.append({"entity_id": eid, "item_id": r_b, "first_seen": now, "last_seen": now})
    mark = "?" if engine.dialect.name == "sqlite" else "%s"
    with engine.begin() as conn:
        for table, rows in (
            ("reports", reports),
            ("items", items),
            ("report_items", [{"report_id": n, "item_id": n} for n in range(1, 2 * groups + 1)]),
            ("entities", ents),
            ("entity_reports", e_reports),
            ("entity_items", e_items),
        ):
            # the driver's executemany on plain tuples: a bulk insert without per-row objects
            columns = list(rows[0])
            sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"
            conn.exec_driver_sql(sql, [tuple(r[c] for c in columns) for r in rows])
        if engine.dialect.name == "postgresql":  # explicit ids: move the sequences past them
            for table in ("reports", "items", "entities"):
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
                )
    return len(reports)


__all__ = ["BTC", "HANDLE", "LinksWeb", "bulk_world", "seed_report", "shared_world"]
