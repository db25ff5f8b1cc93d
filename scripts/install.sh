#!/usr/bin/env bash
# Create .venv/ at the repository root and install meldpunt into it (pinned by constraints.txt).
# EXTRAS=dev scripts/install.sh adds the test and benchmark tools.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "meldpunt needs Python 3.11 or newer ($PYTHON is $("$PYTHON" --version 2>&1))" >&2
  exit 2
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
spec="."
[ -n "${EXTRAS:-}" ] && spec=".[${EXTRAS}]"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e "$spec"
echo "installed: $(.venv/bin/meldpunt --version) in .venv/ (run .venv/bin/meldpunt --help)" >&2
