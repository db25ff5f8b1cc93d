"""The sections of the settings: the web app (``MELDPUNT_WEB_*``), triage (``MELDPUNT_TRIAGE_*``)
and staff sign-in (``MELDPUNT_STAFF_*``). Each is part of :class:`meldpunt.settings.Settings` and is
handed to the service that reads it; each can also be built alone (tests, ``from_env``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from meldpunt.settings.table import SettingsError, read, setting


class _Section:
    SECTION: ClassVar[str]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Self:
        """This section from ``MELDPUNT_<SECTION>_<NAME>`` variables, then ``overrides``."""
        made: Self = read(cls, os.environ if environ is None else environ, cls.SECTION)
        return replace(made, **{k: v for k, v in overrides.items() if v is not None})  # type: ignore[type-var]


@dataclass(frozen=True)
class WebSettings(_Section):
    SECTION: ClassVar[str] = "web"

    emergency_numbers: tuple[str, ...] = setting(
        ("112=EU emergency number",),
        "Emergency numbers of the hotline's country, shown on the form's urgent box and the receipt "
        "(comma-separated): NUMBER=LABEL (a label the pages translate), or NUMBER=en:LABEL|nl:LABEL|"
        "fr:LABEL (a label per language; English, else the first, for the others). A Belgian hotline: "
        "112=EU emergency number,101=Police,116 000=Missing children (Child Focus). Free text without "
        "'=' (the old form) is shown as written.",
    )
    help_service_name: str = setting(
        "Stop it Now", "Help service for people worried about their own thoughts or behaviour."
    )
    help_service_url: str = setting("https://stopitnow.nl/", "Address of that help service.")
    hotline_name: str = setting(
        "meldpunt", "The hotline's name, shown in the page header and titles and in authenticator apps."
    )
    secret: str = setting(
        "",
        "Key for signing form tokens (hex or text). Empty: a random key per process, so several "
        "processes behind one address need the same key.",
        secret=True,
    )
    form_token_s: int = setting(
        2 * 3600, "How long a report form stays valid after it is shown.", unit="seconds"
    )
    max_form_bytes: int = setting(64 * 1024, "Largest public form post (bigger: 413).", unit="bytes")
    max_api_bytes: int = setting(1024 * 1024, "Largest JSON body of an API call.", unit="bytes")
    max_upload_bytes: int = setting(
        32 * 1024 * 1024, "Largest upload to /api/v1/match (all files together).", unit="bytes"
    )
    max_import_bytes: int = setting(
        512 * 1024 * 1024, "Largest hash-list upload to /banks/import (bigger: 413).", unit="bytes"
    )
    max_match_queries: int = setting(1000, "Most hashes (or files) in one /api/v1/match call.")
    report_rate: int = setting(10, "Reports one visitor may send per rate window.")
    urgent_rate: int = setting(
        3,
        "Urgent reports one visitor may send per rate window; beyond it a report is still accepted "
        "but not marked urgent (and the receipt says so). Counted on a keyed hash, never the address.",
    )
    status_rate: int = setting(30, "Status look-ups one visitor may make per rate window.")
    rate_window_s: int = setting(
        600, "Length of the rate window of reports and status look-ups.", unit="seconds"
    )
    login_rate_per_name: int = setting(
        10, "Password attempts one staff account name may get per login window."
    )
    login_rate_per_client: int = setting(30, "Password attempts one visitor may make per login window.")
    login_window_s: int = setting(
        900,
        "Length of the login rate window; failed sign-ins that name no account are also written to "
        "the audit log once per window, with a count.",
        unit="seconds",
    )
    trusted_proxies: tuple[str, ...] = setting(
        (),
        "Behind a reverse proxy: the proxies' addresses or networks (CIDR, comma-separated). From "
        "them only, X-Forwarded-For gives the client (its right-most address that is not a trusted "
        "proxy; used only in memory, only hashed, for rate limits) and X-Forwarded-Proto the scheme "
        "(https: staff cookies are Secure). Empty: the socket's peer, and no header is believed.",
    )
    time_zone: str = setting(
        "Europe/Brussels",
        "Time zone of the times on staff pages (an IANA name, e.g. Europe/Brussels or UTC); each staff "
        "member may choose their own on /me/preferences.",
    )

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise SettingsError(f"MELDPUNT_WEB_TIME_ZONE: not a time zone: {self.time_zone!r}") from None


@dataclass(frozen=True)
class TriageSettings(_Section):
    SECTION: ClassVar[str] = "triage"

    hotline: str = setting(
        "hotline", "The hotline's name: bank entries it adds carry the source 'meldpunt:<hotline>'."
    )
    own_bank: str = setting("hotline-own", "The hotline's own bank, created with policy auto on first use.")
    second_opinion: bool = setting(
        True, "Illegal classifications need a second analyst's agreement before they are final."
    )
    second_opinion_all: bool = setting(
        False,
        "Not-illegal classifications need a second opinion too (no: a not-illegal classification is final at once).",
    )
    bank_not_illegal: bool = setting(
        False,
        "Not-illegal final classifications are added to the own bank too (no: only illegal ones, as an "
        "automatic 'not illegal' entry would close near-duplicates of it unseen).",
    )
    purge_media: bool = setting(
        True, "Delete the review copies of a final item's media (unless a keep-media flag is set)."
    )
    group_distance: int = setting(
        10, "PDQ distance (bits, of 256) within which media of queued items are near-duplicates.", unit="bits"
    )
    claim_minutes: int = setting(15, "How long an analyst's claim on an item lasts.", unit="minutes")
    schemes_file: str = setting(
        "", "An extra classification schemes file of the hotline's (YAML), added to the defaults."
    )


@dataclass(frozen=True)
class StaffSettings(_Section):
    SECTION: ClassVar[str] = "staff"

    max_failures: int = setting(
        5, "Failed sign-ins in a row (password or second factor) that lock an account."
    )
    lock_minutes: int = setting(15, "How long a lock after too many failed sign-ins lasts.", unit="minutes")
    session_hours: int = setting(
        12, "A signed-in session ends this long after sign-in, whatever happens.", unit="hours"
    )
    idle_minutes: int = setting(
        60, "A signed-in session also ends after this long without a request.", unit="minutes"
    )
    half_session_minutes: int = setting(
        10,
        "The half-signed-in state (password given, second factor not yet) lasts this long.",
        unit="minutes",
    )
    cookie_secure: str = setting(
        "auto",
        "The Secure flag of the session cookie: auto (when the request came over https), always, never. "
        "Behind a TLS-terminating proxy: auto with the proxy in MELDPUNT_WEB_TRUSTED_PROXIES (its "
        "X-Forwarded-Proto then counts), or always.",
        choices=("auto", "always", "never"),
    )


@dataclass(frozen=True)
class LocateSettings(_Section):
    """Where content is hosted: embedded geo data by default, the user's own files and RDAP."""

    SECTION: ClassVar[str] = "locate"

    geo_dir: str = setting(
        "",
        "Where `meldpunt geo update` keeps the geo files it is given (.mmdb, IP-to-ASN tables). "
        "Empty: a geo folder beside the database.",
    )
    rdap: bool = setting(
        True,
        "Ask RDAP (the registries' WHOIS successor) for network owners, registrars and abuse contacts; "
        "answers are cached. Without a network the look-up fails quickly and locating goes on.",
    )
    rdap_bootstrap_url: str = setting(
        "https://data.iana.org/rdap/", "Where RDAP's bootstrap files (which registry serves what) are."
    )
    rdap_timeout_s: float = setting(5.0, "Longest wait for one RDAP answer.", unit="seconds")
    rdap_cache_days: int = setting(
        7, "How long an RDAP answer is used before it is asked again.", unit="days"
    )


@dataclass(frozen=True)
class ActSettings(_Section):
    """Routing: what is done with an item found illegal, by where it is hosted."""

    SECTION: ClassVar[str] = "act"

    home_country: str = setting(
        "BE",
        "The hotline's country (ISO code): content hosted here gets a notice, and a police referral by rule.",
    )
    tick_s: float = setting(
        10.0,
        "How often a worker looks for due locate-and-act work (notices to send, re-checks, alert "
        "escalations).",
        unit="seconds",
    )
    act_on_hash_list: bool = setting(
        True, "Act on items classified illegal by an auto hash list's label, not only on analysts' decisions."
    )
    hash_list_categories: tuple[str, ...] = setting(
        ("baseline", "nationally_illegal", "A1", "A2", "B1", "B2", "A", "B", "C"),
        "Label categories of an auto hash list's entry that make a match illegal (comma-separated; a "
        "baseline label always does); the defaults are the illegal values of the default schemes.",
    )


@dataclass(frozen=True)
class MailSettings(_Section):
    """The SMTP server notices and alerts leave by."""

    SECTION: ClassVar[str] = "mail"

    smtp_host: str = setting("", "SMTP server for notices and alerts (empty: nothing is sent by e-mail).")
    smtp_port: int = setting(25, "The SMTP server's port.")
    smtp_user: str = setting("", "User name at the SMTP server (empty: no login).")
    smtp_password: str = setting("", "Password at the SMTP server.", secret=True)
    smtp_starttls: bool = setting(False, "Use STARTTLS with the SMTP server.")
    smtp_timeout_s: float = setting(20.0, "Longest wait for the SMTP server.", unit="seconds")
    webhook_timeout_s: float = setting(
        10.0,
        "Longest wait for a webhook (a provider's notice API, a chat or paging service).",
        unit="seconds",
    )
    sender: str = setting("meldpunt@localhost", "The From address of notices and alerts.")
    reply_to: str = setting(
        "", "Where providers' replies go (the reference address); empty: the From address."
    )
    public_url: str = setting(
        "http://127.0.0.1:8000",
        "This meldpunt's public address, for the links in notices (a provider's answer page) and alerts.",
    )


@dataclass(frozen=True)
class NoticeSettings(_Section):
    """Notice and takedown: batching, reminders, escalation, the days notices are sent."""

    SECTION: ClassVar[str] = "notice"

    batch_hours: float = setting(
        24.0, "Items for one abuse contact are gathered this long into one notice.", unit="hours"
    )
    renotice_hours: float = setting(
        24.0, "A reminder is sent this long after the last message while anything is online.", unit="hours"
    )
    escalate_after: int = setting(3, "Reminders after which a notice goes to the seniors' overdue queue.")
    police_after_hours: float = setting(
        72.0,
        "After escalation to a senior, how long until the notice is escalated to the police (0: never).",
        unit="hours",
    )
    quiet_weekdays: tuple[str, ...] = setting(
        ("sat", "sun"), "Weekdays no notice or reminder is sent on (mon ... sun, comma-separated)."
    )
    holidays: tuple[str, ...] = setting(
        (), "Dates no notice or reminder is sent on (YYYY-MM-DD, comma-separated)."
    )
    link_days: int = setting(60, "How long the provider's answer link in a notice stays valid.", unit="days")
    delivery_attempts: int = setting(8, "Attempts to deliver one message before it counts as failed.")
    language: str = setting("en", "Language of notices to contacts whose language is not known (nl, fr, en).")
    templates_dir: str = setting(
        "",
        "A folder of the hotline's own notice templates (notice.<lang>.txt), used before the shipped ones.",
    )


@dataclass(frozen=True)
class RecheckSettings(_Section):
    """Re-checking acted-on URLs until the content is gone."""

    SECTION: ClassVar[str] = "recheck"

    first_min_minutes: int = setting(60, "Shortest interval between re-checks at first.", unit="minutes")
    first_max_minutes: int = setting(240, "Longest interval between re-checks at first.", unit="minutes")
    daily_after_hours: int = setting(72, "After this long online, a URL is re-checked daily.", unit="hours")
    removal_misses: int = setting(3, "Consecutive misses after which content counts as removed.")
    miss_spacing_minutes: int = setting(
        5, "Interval between the re-checks that confirm a miss.", unit="minutes"
    )
    daily_jitter_minutes: int = setting(
        60,
        "Once daily, each re-check comes 24 h plus or minus up to this much later (so re-checks do not "
        "bunch up).",
        unit="minutes",
    )
    answer_check_minutes: int = setting(
        10,
        "After a provider answers that it removed a URL, it is re-checked within this long (the answer "
        "counts only once the re-check confirms it).",
        unit="minutes",
    )
    concurrency: int = setting(
        32,
        "Fetches one re-check job runs at once (at most the worker's fetch_concurrency, whose "
        "connection pool it shares).",
    )
    batch_size: int = setting(
        1000,
        "Due takedowns one re-check job takes and fetches concurrently (a worker runs one such job at "
        "a time; new reports go first between jobs).",
    )
    claim_minutes: int = setting(
        30,
        "A due takedown handed to a re-check job is held this long; if the job has not finished by "
        "then (its worker died and the job was lost), the takedown comes due again.",
        unit="minutes",
    )
    max_media: int = setting(
        5,
        "When none of an item's media addresses is on its page any more, at most this many of the "
        "page's media are fetched to look for the same content under another address.",
    )


@dataclass(frozen=True)
class AlertSettings(_Section):
    """Urgent cases: who is alerted, how, and when it escalates."""

    SECTION: ClassVar[str] = "alert"

    oncall: tuple[str, ...] = setting(
        (),
        "The on-call people in order, as 'Name <address>' (comma-separated): the first is alerted, the "
        "next when nobody acknowledges in time.",
    )
    webhook_url: str = setting(
        "", "A webhook (chat or paging service) every alert is posted to as JSON; empty: none."
    )
    ack_minutes: int = setting(
        10,
        "Minutes without acknowledgement before an alert escalates to the next on-call person; after "
        "the last one, every on-call person is alerted again every this many minutes until someone "
        "acknowledges it.",
        unit="minutes",
    )
    raise_within_hours: float = setting(
        24.0,
        "An urgent item changed this recently without an alert gets one (a report that committed just "
        "before a crash still alerts); older urgent items (say, from before alerts were set up) do not.",
        unit="hours",
    )


@dataclass(frozen=True)
class KeySettings(_Section):
    """The instance's Ed25519 signing keys (partner messages, referral manifests): see
    ``meldpunt.stores.signing``."""

    SECTION: ClassVar[str] = "keys"

    file: str = setting(
        "",
        "The signing key ring (JSON, 0600). Empty: beside a SQLite database (<db>.signkeys), else in "
        "the user data directory. Every web and worker process needs the same file; back it up.",
    )
    grace_days: int = setting(
        30,
        "After `meldpunt keys rotate`, how long signatures by the old key are still accepted.",
        unit="days",
    )


@dataclass(frozen=True)
class PartnerSettings(_Section):
    """Forwarding to partner hotlines' meldpunt instances over signed messages, and status back."""

    SECTION: ClassVar[str] = "partner"

    instance_name: str = setting(
        "",
        "This hotline's name as partners know it (the sender in signed messages). Empty: the web "
        "section's hotline name.",
    )
    max_message_bytes: int = setting(
        1024 * 1024,
        "Largest signed message a partner may send to /api/v1/partner/inbox (bigger: 413, refused "
        "before it is parsed).",
        unit="bytes",
    )
    max_skew_s: int = setting(
        600,
        "How far a partner message's sent_at may be from our clock (older: stale, newer: from the "
        "future; both refused). Nonces are kept twice as long.",
        unit="seconds",
    )
    request_timeout_s: float = setting(
        20.0,
        "The whole exchange of one delivery to a partner's inbox (connect, send, answer).",
        unit="seconds",
    )
    retry_max_hours: int = setting(
        96,
        "How long a message a partner cannot take (down, 5xx, unreachable) is retried before it becomes "
        "a dead letter. Later messages to that partner wait behind it meanwhile.",
        unit="hours",
    )
    backoff_max_minutes: int = setting(
        30,
        "The longest wait between two delivery attempts to a partner that is down (the first waits a "
        "minute, each next one twice as long, up to this).",
        unit="minutes",
    )


@dataclass(frozen=True)
class IccamSettings(_Section):
    """The ICCAM-compatible bridge (ICCAM 3.0's REST shapes): export and import."""

    SECTION: ClassVar[str] = "iccam"

    url: str = setting("", "The ICCAM API's base address (empty: the bridge is off).")
    username: str = setting("", "The hotline's ICCAM API user (POST Authentication).")
    password: str = setting("", "That user's password.", secret=True)
    analyst: str = setting(
        "",
        "The analyst name sent as reportingAnalystName, assessingAnalystName and actioningAnalystName "
        "(ICCAM knows its API user, not our staff). Empty: the username.",
    )
    country: str = setting(
        "", "The hotline's country (ISO 3166 alpha-2): the hosting country of a URL not yet located."
    )
    reference_prefix: str = setting(
        "MP", "Our hotlineReference is this prefix, a dash and the item number (ICCAM refuses a repeat)."
    )
    export_on: bool = setting(False, "Export classified items and their actions to ICCAM.")
    import_on: bool = setting(False, "Import the reports ICCAM assigns to this hotline into the walk.")
    export_window_days: int = setting(
        30,
        "The export tick plans items whose classification became final this recently (older ones: "
        "`meldpunt iccam export --since`).",
        unit="days",
    )
    poll_minutes: float = setting(5.0, "How often the import asks ICCAM's queue.", unit="minutes")
    queue: str = setting(
        "no-reference",
        "The ICCAM work queue imported from (content assigned to us that has no reference of ours yet).",
        choices=("no-reference", "unassessed", "unactioned", "unassigned-to-hotline", "orphaned", "offline"),
    )
    timeout_s: float = setting(
        20.0, "One ICCAM call's whole deadline (connect, send, answer).", unit="seconds"
    )
    attempts: int = setting(
        8, "Tries of one export call (a timeout, 429 or 5xx waits and tries again) before it fails."
    )
    max_answer_bytes: int = setting(4 * 1024 * 1024, "Largest ICCAM answer read.", unit="bytes")
    mapping_file: str = setting(
        "", "A YAML mapping of our schemes to ICCAM's codes (empty: the one shipped, iccam/mapping.yaml)."
    )


@dataclass(frozen=True)
class ReferralSettings(_Section):
    """Police referral packages (VICS 2.0 JSON, CSV, HTML and PDF summary, signed manifest) and the
    CyberTipline-style XML export."""

    SECTION: ClassVar[str] = "referral"

    dir: str = setting(
        "", "Where referral packages are written. Empty: a referrals folder beside the database."
    )
    cybertip_reporter_email: str = setting(
        "",
        "The CyberTipline export's reporting person: the e-mail address NCMEC writes back to "
        "(required for an export).",
    )
    cybertip_reporter_first_name: str = setting(
        "", "The CyberTipline export's reporting person: first name (empty: left out)."
    )
    cybertip_reporter_last_name: str = setting(
        "", "The CyberTipline export's reporting person: last name (empty: left out)."
    )
    cybertip_reporter_phone: str = setting(
        "", "The CyberTipline export's reporting person: telephone number (empty: left out)."
    )
    cybertip_company_template: str = setting(
        "",
        "The name NCMEC registered the hotline or platform under (the report's companyTemplate; "
        "empty: left out).",
    )
    cybertip_legal_url: str = setting(
        "",
        "Where NCMEC and police send legal process to the hotline or platform (the report's "
        "legalURL; empty: left out).",
    )
    cybertip_third_party_hosted: bool = setting(
        True,
        "The CyberTipline export says the content is hosted by a third party (a hotline: yes; a "
        "platform reporting what is on its own service: no).",
    )
    vics_profile: str = setting(
        "US",
        "The VICS national profile whose category numbers vics.json uses (US: Project VIC US, "
        "UK: CAID); the mapping from the classification schemes is in meldpunt.referral.vics.",
        choices=("US", "UK"),
    )
    max_items: int = setting(200, "Most items one referral package may cover.")
