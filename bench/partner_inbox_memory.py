"""Peak memory (VmHWM) of a real ``meldpunt serve`` process while its partner inbox takes the worst
inputs an attacker or a broken partner can send, beside the same process after a small good
message (the baseline, same run): a 1 MiB body of the most members allowed, one 1 MiB string, a
nesting bomb, 10^5 URLs, 1 MiB of junk, and a body that trickles in (slowloris) while others post.

    .venv/bin/python bench/partner_inbox_memory.py

VmHWM only grows: each row is the high-water mark after that input (and all before it).
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from meldpunt.stores.signing import kid_of

BIN = Path(sys.executable).with_name("meldpunt")
MIB = 1 << 20


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM")


def main() -> None:
    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    kid = kid_of(raw)

    def signed(body: object, *, payload: bytes | None = None) -> bytes:
        data = (
            payload
            or json.dumps(
                {
                    "from": "nl-hotline",
                    "to": "be-hotline",
                    "id": str(uuid.uuid4()),
                    "seq": 1,
                    "kind": "forward",
                    "nonce": base64.b64encode(os.urandom(16)).decode(),
                    "sent_at": datetime.now(UTC).isoformat(),
                    "body": body,
                }
            ).encode()
        )
        sig = base64.b64encode(key.sign(data)).decode()
        return json.dumps(
            {"v": 1, "payload": base64.b64encode(data).decode(), "kid": kid, "sig": sig}
        ).encode()

    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "MELDPUNT_DB": f"sqlite:///{tmp}/b.db",
            "MELDPUNT_KEYS_FILE": f"{tmp}/b.signkeys",
            "MELDPUNT_PARTNER_INSTANCE_NAME": "be-hotline",
        }
        subprocess.run(
            [BIN, "partner", "add", "nl-hotline", "--url", "http://127.0.0.1:9", "--country", "NL", "--key",
             base64.b64encode(raw).decode()],
            env=env, check=True, capture_output=True,
        )  # fmt: skip
        port = _port()
        proc = subprocess.Popen(
            [BIN, "serve", "--port", str(port), "--workers", "0"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(base + "/api/v1/partner/keys", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            inbox = base + "/api/v1/partner/inbox"

            def post(raw_body: bytes) -> str:
                r = httpx.post(inbox, content=raw_body, timeout=60)
                return f"{r.status_code} {r.json().get('status') or r.json().get('error')}"

            rows: list[tuple[str, str, int]] = []
            small = signed({"reference": "NL-0", "url": "https://files.example/0"})
            rows.append(("baseline: a small good forward", post(small), _hwm_kib(proc.pid)))
            limit = MIB - 64 * 1024  # under max_message_bytes once base64 grows it by 4/3
            members = signed({"reference": "NL-1", "url": "https://files.example/1", "x": [0] * 49_000})
            rows.append(("49,000 members (the limit is 50,000)", post(members), _hwm_kib(proc.pid)))
            one = signed(
                {"reference": "NL-2", "url": "https://files.example/2", "x": "a" * (limit * 3 // 4 - 400)}
            )
            rows.append(("one string, body near 1 MiB", post(one), _hwm_kib(proc.pid)))
            bomb = signed({}, payload=b"[" * (limit * 3 // 8) + b"]" * (limit * 3 // 8))
            rows.append(("nesting bomb near 1 MiB", post(bomb), _hwm_kib(proc.pid)))
            urls = signed({"reference": "NL-3", "url": ["https://u.example/"] * 100_000})
            rows.append(("10^5 URLs (over 1 MiB)", post(urls), _hwm_kib(proc.pid)))
            rows.append(("1 MiB of junk bytes", post(os.urandom(limit)), _hwm_kib(proc.pid)))

            def slowloris() -> None:
                with socket.create_connection(("127.0.0.1", port)) as s:
                    s.sendall(
                        b"POST /api/v1/partner/inbox HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n"
                    )
                    for _ in range(20):
                        s.sendall(b" " * 10)
                        time.sleep(0.1)

            slow = [threading.Thread(target=slowloris) for _ in range(50)]
            for t in slow:
                t.start()
            answer = post(signed({"reference": "NL-4", "url": "https://files.example/4"}))
            for t in slow:
                t.join()
            rows.append(("50 trickling bodies, a good one meanwhile", answer, _hwm_kib(proc.pid)))
        finally:
            proc.terminate()
            proc.wait(30)
    baseline = rows[0][2]
    print(f"{'input':45} {'answer':28} {'VmHWM MiB':>10} {'x baseline':>10}")
    for what, answer, kib in rows:
        print(f"{what:45} {answer:28} {kib / 1024:10.1f} {kib / baseline:10.2f}")


if __name__ == "__main__":
    main()
