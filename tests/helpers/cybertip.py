"""Seeds and facts for the CyberTipline export's tests: synthetic hashes (never of real material),
media rows with an outcome, a final classification written straight into ``triage_status``, and a
loopback HTTP server that counts every request (validation must make none)."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, insert

from meldpunt.store.reports import Medium
from meldpunt.store.triage import FINAL, TriageStatus


def fake_hashes(seed: str) -> dict[str, str]:
    """Synthetic digests of the text ``seed`` (MD5, SHA1, SHA256 and a PDQ-shaped 256-bit hex)."""
    b = seed.encode()
    return {
        "MD5": hashlib.md5(b).hexdigest(),
        "SHA1": hashlib.sha1(b).hexdigest(),
        "SHA256": hashlib.sha256(b).hexdigest(),
        "PDQ": hashlib.sha256(b"pdq:" + b).hexdigest(),
    }


def seed_medium(
    engine: Engine,
    item_id: int,
    url: str,
    *,
    now: datetime,
    outcome: str,
    seed: str | None = None,
    matches: list[dict[str, Any]] | None = None,
) -> int:
    h = fake_hashes(seed or url)
    with engine.begin() as conn:
        return int(
            conn.execute(
                insert(Medium)
                .values(
                    item_id=item_id,
                    url=url,
                    url_key=hashlib.sha256(url.encode()).hexdigest(),
                    kind="image",
                    size=1234,
                    md5=h["MD5"],
                    sha1=h["SHA1"],
                    sha256=h["SHA256"],
                    pdq=h["PDQ"],
                    outcome=outcome,
                    matches=json.dumps(matches or []),
                    created_at=now,
                )
                .returning(Medium.id)
            ).scalar_one()
        )


def seed_final(
    engine: Engine, item_id: int, classification: dict[str, Any], *, illegal: bool, now: datetime
) -> None:
    """The item's final classification, as triage leaves it (canonical JSON)."""
    with engine.begin() as conn:
        conn.execute(
            insert(TriageStatus).values(
                item_id=item_id,
                stage=FINAL,
                final=json.dumps(classification, sort_keys=True, separators=(",", ":")),
                illegal=illegal,
                bank_pending=False,
                bank_import_id=None,
                finalized_at=now,
                updated_at=now,
            )
        )


class _Counting(http.server.BaseHTTPRequestHandler):
    hits: list[str]

    def do_GET(self) -> None:
        self.hits.append(self.path)
        body = b'<?xml version="1.0"?><x/>'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def counting_server() -> Iterator[tuple[str, list[str]]]:
    """A loopback HTTP server that answers anything and records each path asked: (base, hits)."""
    hits: list[str] = []
    handler = type("Handler", (_Counting,), {"hits": hits})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
