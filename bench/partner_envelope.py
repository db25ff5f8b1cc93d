"""What opening a partner message costs before anything is trusted: the cheap scan for nesting and
member counts, ``json.loads`` of envelope and payload, and the Ed25519 verification — beside the
baseline of ``json.loads`` of the same payload alone (the least any receiver must do), and the scan's
peak memory beside the naive string expression it replaced, from the same run.

    .venv/bin/python bench/partner_envelope.py [--kib 900] [--rounds 20]

The last row is a nesting bomb of the same size: refused by the scan before any parse.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.console import Console
from rich.table import Table

from meldpunt.exchange.envelope import (
    EnvelopeError,
    Payload,
    new_message_id,
    new_nonce,
    open_envelope,
    scan_limits,
    seal,
)
from meldpunt.stores.signing import verify_with

NAIVE = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def timed(fn: Callable[[], Any], rounds: int) -> float:
    start = time.perf_counter()
    for _ in range(rounds):
        fn()
    return (time.perf_counter() - start) / rounds


def peak(fn: Callable[[], Any]) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kib", type=int, default=700, help="body size (KiB of JSON)")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    key = Ed25519PrivateKey.generate()
    body = {"hashes": ["ab" * 32] * (args.kib * 1024 // 67)}
    payload = Payload("nl", "be", new_message_id(), 1, "forward", new_nonce(), datetime.now(UTC), body)
    raw = seal(payload, lambda d: ("0" * 16, base64.b64encode(key.sign(d)).decode()))
    data = base64.b64decode(json.loads(raw)["payload"])

    def ours() -> None:
        opened = open_envelope(raw, max_bytes=len(raw) + 1)
        assert verify_with(key.public_key(), opened.data, opened.sig)

    bomb = b"[" * (len(raw) // 2) + b"]" * (len(raw) // 2)

    def refuse_bomb() -> None:
        try:
            open_envelope(bomb, max_bytes=len(bomb) + 1)
        except EnvelopeError:
            return

    t_ours, t_base = timed(ours, args.rounds), timed(lambda: json.loads(data), args.rounds)
    t_bomb = timed(refuse_bomb, args.rounds)
    m_scan, m_naive = peak(lambda: scan_limits(raw)), peak(lambda: NAIVE.sub(b'""', raw))
    table = Table(title=f"one message of {len(raw) / 1024:.0f} KiB ({args.rounds} rounds)")
    for col in ("what", "ours", "baseline", "ratio"):
        table.add_column(col)
    table.add_row("open + verify vs json.loads(payload)", f"{t_ours * 1000:.1f} ms", f"{t_base * 1000:.1f} ms",
                  f"{t_ours / t_base:.2f}")  # fmt: skip
    table.add_row("scan peak memory vs naive expression", f"{m_scan / 2**20:.1f} MiB", f"{m_naive / 2**20:.1f} MiB",
                  f"{m_scan / m_naive:.3f}")  # fmt: skip
    table.add_row("nesting bomb refused vs json.loads(message)", f"{t_bomb * 1000:.2f} ms",
                  f"{t_base * 1000:.1f} ms", f"{t_bomb / t_base:.3f}")  # fmt: skip
    Console().print(table)


if __name__ == "__main__":
    main()
