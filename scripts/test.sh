#!/usr/bin/env bash
# Install everything the tests need and run the whole suite: lint, types, tests on SQLite and on a
# real PostgreSQL server (started by the tests themselves from Debian's binaries).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "installing PostgreSQL server (Debian package)…" >&2
  as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi

EXTRAS=dev scripts/install.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
MELDPUNT_REQUIRE_POSTGRES=1 .venv/bin/pytest -q "$@"
