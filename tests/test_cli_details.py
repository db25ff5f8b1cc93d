"""Details of the ``meldpunt`` command: boolean options read as flags in every command's help,
``scan`` says when there is nothing to match against, ``bank list`` shows the threshold a bank
really uses, and the demo's banner keeps its addresses whole on an 80-column terminal."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any, cast

import typer
from rich.console import Console
from typer.testing import CliRunner

from meldpunt.cli import app
from meldpunt.cli.demo import print_banner
from meldpunt.demo.run import Demo, DemoLogin
from meldpunt.signals import hash_file
from tests.helpers.imagegen import save_scene

runner = CliRunner()


def _commands(group: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every command of the tree (Typer 0.29 vendors click: its own Group and Option classes)."""
    found = [(path, group)]
    for name, sub in sorted(getattr(group, "commands", {}).items()):
        found += _commands(sub, (*path, name))
    return found


def test_every_boolean_option_is_shown_as_a_flag_in_every_help() -> None:
    commands = _commands(typer.main.get_command(app))
    assert len(commands) > 20  # every group and command, the tree itself included
    flags = 0
    for path, command in commands:
        result = runner.invoke(app, [*path, "--help"], catch_exceptions=False)
        assert result.exit_code == 0, path
        help_text = result.stdout
        assert "<bool>" not in help_text and "BOOLEAN" not in help_text, (path, help_text)
        for param in command.params:
            if param.param_type_name == "option" and param.is_flag and not param.hidden:
                flags += 1
                long = max(param.opts, key=len)
                assert re.search(rf"^\s+(-\w, )?{re.escape(long)}\s{{2,}}\S", help_text, re.M), (path, long)
    assert flags >= 10  # --scan, --json, --dihedral, --replace, --strict, --expired, ... and --help


def _scene(tmp_path: Path) -> Path:
    path = tmp_path / "scene.jpg"
    save_scene(path, 1, quality=92)
    return path


def test_scan_warns_when_no_bank_is_loaded(sqlite_db: str, tmp_path: Path) -> None:
    image = _scene(tmp_path)
    result = runner.invoke(app, ["--db", sqlite_db, "scan", str(image)], catch_exceptions=False)
    assert result.exit_code == 0
    assert "warning: no bank is loaded" in result.stderr and "bank import" in result.stderr
    known = tmp_path / "known.te"
    known.write_text(f"pdq {hash_file(image).pdq}\n")
    runner.invoke(app, ["--db", sqlite_db, "bank", "import", "--policy", "auto", "known", str(known)])
    result = runner.invoke(app, ["--db", sqlite_db, "scan", str(image)], catch_exceptions=False)
    assert "warning" not in result.stderr and "1 matched" in result.stderr


def test_bank_list_shows_the_effective_pdq_threshold(db_url: str, tmp_path: Path) -> None:
    image = _scene(tmp_path)
    known = tmp_path / "known.te"
    known.write_text(f"pdq {hash_file(image).pdq}\n")
    db = ["--db", db_url]
    runner.invoke(app, [*db, "bank", "import", "--policy", "auto", "own-default", str(known)])
    runner.invoke(
        app, [*db, "bank", "import", "--policy", "hint", "strict", str(known), "--pdq-threshold", "12"]
    )
    out = runner.invoke(app, [*db, "bank", "list"], env={"COLUMNS": "200"}).stdout
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") > 3}
    assert (
        "31 (default)" in rows["own-default"] and "12" in rows["strict"] and "default" not in rows["strict"]
    )
    out = runner.invoke(
        app, [*db, "bank", "list"], env={"COLUMNS": "200", "MELDPUNT_PDQ_THRESHOLD": "20"}
    ).stdout
    assert "20 (default)" in out


def test_the_demo_banner_keeps_addresses_whole_at_80_columns(tmp_path: Path) -> None:
    base = "http://meldpunt-demo.hotline.example.internal:8000"
    web = type("Web", (), {"base": "http://127.0.0.1:45678"})()
    demo = Demo(
        services=cast(Any, None),
        web=cast(Any, web),
        token="mp_" + "x" * 43,
        receipts=["K7QX-4M2P-9RTA", "B3NW-8HZE-2LCU", "Q9FD-6JYS-4VKE"],
        logins=[DemoLogin("demo-analyst", "analyst", "p" * 20, "A" * 32, "123456")],
    )
    long_path = tmp_path / ("very-long-user-data-directory-" * 3) / "demo.db"
    out = io.StringIO()
    print_banner(Console(file=out, width=80, color_system=None), demo, long_path, base)
    text = out.getvalue()
    for address in (
        f"items by state     {base}/internal/items   (user: demo",  # a line runs on, never wraps
        f"{base}/api/docs",
        f"{base}/login",
        f"{base}/status/<receipt>",
        "http://127.0.0.1:45678/gallery/mixed.html",
        str(long_path),
    ):
        assert any(address in line for line in text.splitlines()), address
