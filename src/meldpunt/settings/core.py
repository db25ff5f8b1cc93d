"""The one settings object: every setting of meldpunt, core and sections, as data.

Values come from (highest first) explicit arguments (the command line's ``--db``, a test's own),
``MELDPUNT_<NAME>`` environment variables (``MELDPUNT_<SECTION>_<NAME>`` in a section), then the
defaults below. ``bootstrap.Services`` is built from one of these and hands each service its part.
``meldpunt settings`` lists them; ``docs/settings.md`` is generated from them and a test keeps it in step.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import platformdirs

from meldpunt.settings.sections import (
    ActSettings,
    AlertSettings,
    IccamSettings,
    KeySettings,
    LocateSettings,
    MailSettings,
    NoticeSettings,
    PartnerSettings,
    RecheckSettings,
    ReferralSettings,
    StaffSettings,
    TriageSettings,
    WebSettings,
)
from meldpunt.settings.table import SECTION, Setting, read, setting, table


def _default_db() -> str:
    return str(Path(platformdirs.user_data_dir("meldpunt")) / "meldpunt.db")


_doc = setting


@dataclass(frozen=True)
class Settings:
    db: str = _doc(
        _default_db,
        "Database: a SQLite file path or an SQLAlchemy URL (postgresql://...). Also --db.",
        shown_default="meldpunt.db in the user's data directory",
    )
    max_file_bytes: int = _doc(
        512 * 1024 * 1024,
        "Largest file hashed as media; bigger files get exact hashes and an error.",
        unit="bytes",
    )
    max_image_pixels: int = _doc(
        50_000_000,
        "Largest image (width x height) decoded; bigger ones are refused as bombs.",
        unit="pixels",
    )
    max_video_s: float = _doc(4 * 3600.0, "Longest video hashed with vPDQ (of stream).", unit="seconds")
    max_video_frames: int = _doc(100_000, "Most vPDQ frames hashed from one video.")
    pdq_fast_decode_size: int = _doc(
        512,
        "Large images are decoded (JPEG) or reduced (others, video frames) to no less than this many"
        " pixels a side before PDQ (0: off).",
        unit="pixels",
    )
    vpdq_frame_interval_s: float = _doc(1.0, "vPDQ hashes one frame per this much video.", unit="seconds")
    pdq_threshold: int = _doc(
        31, "Default PDQ match distance (of 256 bits); a bank's own threshold wins.", unit="bits"
    )
    pdq_min_quality: int = _doc(50, "PDQ hashes below this quality are not matched (too little detail).")
    pdq_hint_distance: int = _doc(
        50,
        "Media that need review are shown with near matches in any bank up to this PDQ distance (beyond "
        "the banks' own thresholds): hints for the analyst, never a classification. 0: none.",
        unit="bits",
    )
    vpdq_frame_share: float = _doc(
        0.8, "A video matches when at least this share of its frames match one entry's frames."
    )
    hash_workers: int = _doc(0, "Processes hashing files in a batch (0: one per CPU core).")
    media_memory_mb: int = _doc(
        1024,
        "Memory (MB) a child process that decodes media for the walk or renders it for the workspace"
        " may use beyond what it starts with; going over it fails that file only (0: decode"
        " in-process, no limit).",
        unit="MB",
    )
    review_key: str = _doc(
        "",
        "AES-256 key (base64 of 32 bytes) encrypting the bytes of media awaiting review; empty: use "
        "review_key_file. Every worker and web process must have the same key.",
        secret=True,
    )
    review_key_file: str = _doc(
        "",
        "File holding the review key (base64), created with a new random key if missing; empty: "
        "beside a SQLite database (<db>.reviewkey), else in the user data directory.",
    )
    evidence_key: str = _doc(
        "",
        "AES-256 key (base64 of 32 bytes) encrypting media kept as evidence; must differ from the "
        "review key; empty: use evidence_key_file.",
        secret=True,
    )
    evidence_key_file: str = _doc(
        "",
        "File holding the evidence key (base64), created with a new random key if missing; empty: "
        "beside a SQLite database (<db>.evidencekey), else evidence.key in the user data directory.",
    )
    evidence_retention_days: int = _doc(
        730,
        "Days media kept as evidence are retained before 'meldpunt evidence purge' deletes them: "
        "set it to the hotline's legal retention period.",
        unit="days",
    )
    fetch_allowed_networks: str = _doc(
        "",
        "Comma-separated CIDRs the fetcher may contact despite the SSRF guard (e.g. 127.0.0.0/8 for "
        "a local test web); empty in production.",
    )
    fetch_concurrency: int = _doc(32, "Fetches one worker runs at once (also its connection-pool size).")
    fetch_timeout_s: float = _doc(
        30.0, "Seconds for fetching one page or medium, redirects included.", unit="seconds"
    )
    fetch_read_timeout_s: float = _doc(
        10.0,
        "Seconds without a byte from a server before a fetch is abandoned as stalled; a stalled or "
        "too slow medium is recorded as such and not tried again.",
        unit="seconds",
    )
    fetch_item_budget_s: float = _doc(
        300.0,
        "Seconds from an item's page fetch within which its media are fetched; each media fetch gets "
        "what is left, media still waiting after it are not fetched (item_budget). 0: no budget.",
        unit="seconds",
    )
    fetch_host_concurrency: int = _doc(
        1,
        "Fetches from one host at once in one process; that host's further jobs wait a moment while "
        "the workers serve other hosts (urgent reports first). 0: no limit.",
    )
    serve_header_timeout_s: float = _doc(
        10.0,
        "meldpunt serve: seconds a client has to send a request's line and headers, else closed.",
        unit="seconds",
    )
    serve_body_timeout_s: float = _doc(
        60.0,
        "meldpunt serve: seconds a client has to send a request's body after its headers.",
        unit="seconds",
    )
    serve_keep_alive_s: float = _doc(
        5.0, "meldpunt serve: seconds an idle kept-alive connection stays open.", unit="seconds"
    )
    serve_max_connections: int = _doc(
        2000,
        "meldpunt serve: most open connections (also kept under the open-files limit); over it the "
        "oldest one that has not sent a whole request is closed.",
    )
    worker_poll_s: float = _doc(
        1.0, "Seconds an idle worker waits before looking for jobs again.", unit="seconds"
    )
    job_lease_s: float = _doc(
        30.0,
        "Seconds a worker holds a job, renewed every third of it while the job runs; a job whose "
        "worker died is taken again after this (at once by a worker on the same machine).",
        unit="seconds",
    )
    job_max_attempts: int = _doc(5, "Attempts of a walk step (media jobs) before it is dead.")
    matcher_refresh_s: float = _doc(
        1.0,
        "Workers and the match API look for changed hash lists at most this often: one database row; "
        "new hashes are taken in without reloading the index, and a worker matches items waiting for "
        "review again.",
        unit="seconds",
    )

    web: WebSettings = field(default_factory=WebSettings, metadata=SECTION)
    triage: TriageSettings = field(default_factory=TriageSettings, metadata=SECTION)
    staff: StaffSettings = field(default_factory=StaffSettings, metadata=SECTION)
    locate: LocateSettings = field(default_factory=LocateSettings, metadata=SECTION)
    act: ActSettings = field(default_factory=ActSettings, metadata=SECTION)
    mail: MailSettings = field(default_factory=MailSettings, metadata=SECTION)
    notice: NoticeSettings = field(default_factory=NoticeSettings, metadata=SECTION)
    recheck: RecheckSettings = field(default_factory=RecheckSettings, metadata=SECTION)
    alert: AlertSettings = field(default_factory=AlertSettings, metadata=SECTION)
    keys: KeySettings = field(default_factory=KeySettings, metadata=SECTION)
    partner: PartnerSettings = field(default_factory=PartnerSettings, metadata=SECTION)
    iccam: IccamSettings = field(default_factory=IccamSettings, metadata=SECTION)
    referral: ReferralSettings = field(default_factory=ReferralSettings, metadata=SECTION)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """The settings from the environment, then ``overrides`` (core names; None: not given)."""
        return cls.load(environ, **overrides)[0]

    @classmethod
    def load(
        cls, environ: Mapping[str, str] | None = None, origin: str = "argument", **overrides: Any
    ) -> tuple[Settings, dict[str, str]]:
        """The settings and, per setting not left at its default, where its value came from (an
        environment variable, or ``origin`` for ``overrides``: ``--db`` on the command line)."""
        sources: dict[str, str] = {}
        made: Settings = read(cls, os.environ if environ is None else environ, "", sources)
        given = {k: v for k, v in overrides.items() if v is not None}
        sources.update(dict.fromkeys(given, origin))
        return replace(made, **given), sources

    @classmethod
    def table(cls) -> list[Setting]:
        """Every setting, sections included: name, variable, type, default, unit, help."""
        return table(cls)

    @classmethod
    def documented(cls) -> list[tuple[str, str, Any]]:
        """(name, help, default) for every setting (the older form of :meth:`table`)."""
        return [(r.name, r.help, r.default) for r in cls.table()]

    def value(self, name: str) -> Any:
        """The value of a dotted name: ``db``, ``web.secret``."""
        here: Any = self
        for part in name.split("."):
            here = getattr(here, part)
        return here
