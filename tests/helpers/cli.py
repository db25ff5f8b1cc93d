"""Running the CLI in tests."""

from __future__ import annotations

import json
from typing import Any

from typer.testing import CliRunner

from meldpunt.cli import app

runner = CliRunner()


def run(*args: str) -> tuple[int, list[dict[str, Any]], str]:  # JSON lines
    result = runner.invoke(app, list(args), catch_exceptions=False)
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return result.exit_code, lines, result.stderr
