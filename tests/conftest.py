"""Shared fixtures: databases on real engines (SQLite and a throw-away PostgreSQL cluster)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from meldpunt.store.db import create_db_engine
from tests.helpers.api import auth, client, services  # noqa: F401  (fixtures shared across files)
from tests.helpers.iccam import fake_iccam  # noqa: F401  (fixture)
from tests.helpers.locate import rdap_server  # noqa: F401  (fixture)
from tests.helpers.pipeline import services_factory  # noqa: F401  (fixture)
from tests.helpers.smtp import smtp_sink  # noqa: F401  (fixture)

REQUIRE_POSTGRES = os.environ.get("MELDPUNT_REQUIRE_POSTGRES") == "1"


def pytest_configure(config: pytest.Config) -> None:
    """Keep the user's data and cache directories out of the tests' way (and the tests' out of them)."""
    home = Path(tempfile.mkdtemp(prefix="meldpunt-test-home-"))
    os.environ["XDG_DATA_HOME"] = str(home / "data")
    os.environ["XDG_CACHE_HOME"] = str(home / "cache")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under xdist (scripts/test.sh), files with a test marked ``slow`` are handed out first, so the
    last files a worker gets are quick ones and the workers finish together (a browser journey
    handed out last kept one worker busy minutes after the other was done). Every worker sorts
    alike; within a file the order stays."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresCluster:
    """A PostgreSQL server owned by this test run: initdb into a temp dir, listening only on a
    Unix socket, stopped at the end. As root it runs as the ``postgres`` user (initdb refuses root)."""

    def __init__(self, *, durable: bool = False) -> None:
        #: durable: PostgreSQL's defaults (fsync on), for benchmarks; tests turn fsync off for speed
        self.durable = durable
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            raise RuntimeError("PostgreSQL server binaries not found (apt-get install postgresql)")
        self.bin = Path(found[-1]).parent
        self.base = Path(tempfile.mkdtemp(prefix="meldpunt-pg-"))
        self.data = self.base / "data"
        self.sock = self.base / "sock"
        self.sock.mkdir()
        self.port = _free_port()
        self._template = ""  # the migrated database new ones are copied from (made at first need)
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres")
            shutil.chown(self.sock, "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"
        )
        opts = f"-k {self.sock} -p {self.port} -c listen_addresses=''"
        if not self.durable:
            opts += " -c fsync=off -c full_page_writes=off"
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            opts,
            "-l",
            str(self.base / "log"),
            "-w",
            "start",
        )

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            # A run leaves a database per test (gigabytes of small files): deleting them took the
            # run's last 25-100 s. A process of its own deletes them while the run ends.
            subprocess.Popen(
                ["rm", "-rf", "--", str(self.base)],
                start_new_session=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

    def url(self, dbname: str) -> str:
        return f"postgresql+psycopg://postgres@/{dbname}?host={self.sock}&port={self.port}"

    def create_database(self, *, migrated: bool = False, name: str = "") -> str:
        """A new database: empty, or (``migrated``) a copy of one the migrations built once per run."""
        import psycopg

        if migrated and not self._template:
            # Running every migration took 1-2 s per test; copying their result takes a fraction.
            create_db_engine(self.create_database(name="template")).dispose()
            self._template = "template"
        name = name or "t_" + uuid.uuid4().hex[:12]
        create = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{self._template}"' if migrated else "")
        deadline = time.monotonic() + 10
        while True:
            try:
                with psycopg.connect(
                    host=str(self.sock), port=self.port, user="postgres", dbname="postgres", autocommit=True
                ) as conn:
                    conn.execute(create)
                return self.url(name)
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster | None]:
    try:
        cluster = PostgresCluster()
        cluster.start()
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        if REQUIRE_POSTGRES:
            raise
        pytest.skip(f"no PostgreSQL server could be started: {e}")  # type: ignore[unreachable]
        return
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database the migrations built once per run (per xdist worker), copied for each test."""
    path = tmp_path_factory.mktemp("template") / "meldpunt.db"
    create_db_engine(str(path)).dispose()  # the last connection closed: WAL checkpointed, one file
    assert not path.with_name(path.name + "-wal").exists()
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """A fresh database on each engine meldpunt supports, at the newest schema: a copy of one the
    migrations built once per run, as opening it would have built it (opening finds nothing to do).
    Tests of the migrations themselves are marked ``empty_db`` and get an empty database."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_db"))
    empty = request.node.get_closest_marker("empty_db") is not None
    cluster = request.getfixturevalue("postgres_cluster")
    return str(cluster.create_database(migrated=not empty))


@pytest.fixture
def db_b(request: pytest.FixtureRequest, db_url: str, tmp_path: Path) -> str:
    """A second, empty database on the same engine as ``db_url`` (a partner hotline's own): made
    at the newest schema when the partner's services open it."""
    if "://" not in db_url:
        return str(tmp_path / "b.db")
    return str(request.getfixturevalue("postgres_cluster").create_database())


@pytest.fixture
def sqlite_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A SQLite database file at the newest schema, like ``db_url``'s: a copy of the migrated
    template (running the migrations took about a second a test). ``empty_db``: no file yet."""
    path = tmp_path / "meldpunt.db"
    if request.node.get_closest_marker("empty_db") is None:
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
    return str(path)


@pytest.fixture(autouse=True, scope="session")
def _cheap_survivor_passphrases() -> Iterator[None]:
    """Survivors' passphrases hashed in this process with argon2's cheapest parameters, as the
    staff's are (``tests.helpers.accounts.FAST``): the library's defaults cost 0.15-0.25 s of CPU a
    hash or check, hundreds of times a run. What is tested (one verification on every path, the
    same parameters for the dummy as for a case) holds for any parameters; ``meldpunt serve`` and
    the other processes the tests start keep the defaults."""
    from argon2 import PasswordHasher

    from meldpunt.act import survivors

    real = survivors._HASHER
    survivors._HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    survivors._dummy.cache_clear()
    yield
    survivors._HASHER = real
    survivors._dummy.cache_clear()
