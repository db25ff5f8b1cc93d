#!/usr/bin/env bash
# Install everything the tests need and run the whole suite: lint, types, tests on SQLite and on a
# real PostgreSQL server (started by the tests themselves from Debian's binaries), browser tests in
# Debian's headless Chromium (driven by Playwright, which never downloads a browser of its own).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v pdftoppm >/dev/null || need+=(poppler-utils)  # the annual report's PDF turned into pictures
if [ ${#need[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need[*]}…" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

EXTRAS=dev scripts/install.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
# One worker per core (at most 4), each with its own PostgreSQL cluster, temp dirs and Chromium; a test
# file stays on one worker, in order (its module fixtures are made once). `scripts/test.sh -n 0`: serial.
MELDPUNT_REQUIRE_POSTGRES=1 MELDPUNT_REQUIRE_BROWSER=1 .venv/bin/pytest -q -n auto --maxprocesses=4 --dist loadfile --no-loadscope-reorder "$@"
