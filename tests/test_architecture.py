"""Import direction, documented settings, and the promise that importing meldpunt builds nothing."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import meldpunt
from meldpunt.settings import Settings

SRC = Path(meldpunt.__file__).parent

#: room -> rooms it may import from (besides itself)
ALLOWED = {
    "domain": set(),
    "settings": set(),
    "signals": {"domain", "settings"},
    "index": set(),
    "banks": {"domain"},
    "store": {"domain"},
    "fetch": {"domain", "settings"},
    "audit": {"domain", "settings", "store"},
    "accounts": {"domain", "settings", "store", "audit"},  # admin actions audit in their transaction
    "review": {"domain", "settings", "signals"},
    # the encrypted review and evidence stores: beside the pipeline and triage, below both
    "stores": {"domain", "settings", "store", "audit"},
    # its actions audit in their transaction
    "wellness": {"domain", "settings", "store", "audit", "accounts"},
    # triage: the workspace's services (queue, decisions, reveals, item facts, the bank service)
    "triage": {
        "domain",
        "settings",
        "store",
        "stores",
        "audit",
        "pipeline",
        "accounts",
        "index",
        "banks",
        "wellness",
    },
    # web only translates: it reads forms, calls one service method and renders; never the store
    "web": {
        "domain",
        "settings",
        "signals",
        "pipeline",
        "bootstrap",
        "index",
        "banks",
        "accounts",
        "triage",
        "review",
        "stores",
        "audit",
        "wellness",
        "act",
        "locate",
        "estimate",
        "links",
    },
    "pipeline": {
        "domain",
        "settings",
        "signals",
        "index",
        "banks",
        "store",
        "stores",
        "fetch",
        "audit",
        "entities",
    },
    # link analysis (#13): entities found in text and pages, pure (no database, no network)
    "entities": set(),
    # the graph of reports, items, hosts, providers and entities; its pages' services and exports
    "links": {"domain", "settings", "store", "audit", "entities", "pipeline", "referral"},
    # where content is hosted: geo data, RDAP; no database (the act room records what it finds)
    "locate": {"domain", "settings"},
    # locate and act: takedowns, routing, notices, the outbox, re-checks, alerts (after triage)
    "act": {
        "domain",
        "settings",
        "signals",
        "index",
        "store",
        "stores",
        "fetch",
        "audit",
        "accounts",
        "pipeline",
        "locate",
        "exchange",
        "iccam",
        "referral",
    },
    # across borders (#11): pure formats, no database (the act room records and sends)
    # signed partner messages: envelopes, nonces, timestamps
    "exchange": {"domain", "settings"},
    # ICCAM 3.0's REST shapes, the classification mapping as data, a client
    "iccam": {"domain", "settings"},
    # police referral packages (VICS 2.0, CSV, HTML/PDF, signed manifest) and CyberTipline XML;
    # the VICS file is written by the bank formats' VICS writer (banks is pure: domain only)
    "referral": {"domain", "settings", "banks"},
    # multiple systems estimation (#13): pure statistics on a count table (numpy, scipy, statsmodels)
    "estimate": {"domain"},
    # the CLI, like the web, goes through services (``bootstrap.Services`` opens the database)
    "cli": {
        "domain",
        "settings",
        "signals",
        "index",
        "banks",
        "fetch",
        "audit",
        "accounts",
        "review",
        "stores",
        "wellness",
        "triage",
        "pipeline",
        "bootstrap",
        "demo",
        "web",
        "act",
        "locate",
        "exchange",
        "iccam",
        "referral",
        "estimate",
        "links",
    },
}
#: rooms that run no SQL of their own: they may not import SQLAlchemy at all
NO_SQL = {"web"}


def _room(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "meldpunt" and len(parts) > 1 else None


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_dependencies_point_inward() -> None:
    wrong = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC)
        room = rel.parts[0].removesuffix(".py")
        if room not in ALLOWED:
            continue
        for mod in _imports(path):
            target = _room(mod)
            if target is not None and target != room and target not in ALLOWED[room]:
                wrong.append(f"{rel} imports {mod}")
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


def test_web_runs_no_sql() -> None:
    """The web reads forms, calls services and renders: no module of it imports SQLAlchemy or
    the store (``test_dependencies_point_inward`` keeps ``web → store`` out)."""
    wrong = [
        f"{path.relative_to(SRC)} imports {mod}"
        for room in NO_SQL
        for path in (SRC / room).rglob("*.py")
        for mod in _imports(path)
        if mod == "sqlalchemy" or mod.startswith("sqlalchemy.")
    ]
    assert not wrong, "SQL outside the services:\n" + "\n".join(wrong)


def test_every_setting_is_documented() -> None:
    for name, help_text, _default in Settings.documented():
        assert len(help_text) > 15, f"setting {name} has no help text"


def test_settings_come_from_the_environment() -> None:
    s = Settings.from_env({"MELDPUNT_MAX_IMAGE_PIXELS": "1000", "MELDPUNT_DB": "/x.db"})
    assert s.max_image_pixels == 1000 and s.db == "/x.db"


def test_importing_the_cli_touches_no_database(tmp_path: Path) -> None:
    code = "import meldpunt.cli, meldpunt.bootstrap, meldpunt.index, meldpunt.signals; print('ok')"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        check=True,
    )
    assert out.stdout.strip() == "ok"
    assert not any(tmp_path.rglob("*.db"))


TESTS = Path(__file__).parent


def _test_module_imports(path: Path) -> set[str]:
    """Every module ``path`` imports from ``tests``, as dotted names (``from tests import x`` counts as
    ``tests.x``), wherever in the file the import stands."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            found.add("<relative import>")
    return {m for m in found if m.startswith("tests.") or m == "<relative import>"}


def test_no_test_module_imports_another() -> None:
    """Shared pieces of the tests live in ``tests/helpers/`` (fixtures shared across files are
    imported by ``conftest.py``): a test module imports no other test module, and the helpers
    import no test module either."""
    wrong = [
        f"{path.relative_to(TESTS)} imports {mod}"
        for path in sorted(TESTS.rglob("*.py"))
        for mod in _test_module_imports(path)
        if mod == "<relative import>"
        or mod.split(".")[1].startswith("test_")
        or mod.split(".")[1] == "conftest"
    ]
    assert not wrong, "test modules importing test modules (move the piece to tests/helpers/):\n" + "\n".join(
        wrong
    )
