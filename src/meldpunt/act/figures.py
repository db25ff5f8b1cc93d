"""The hotline's figures for a period (#13 "Understand"): what the statistics page charts and the
annual report prints, each computed in SQL (SQLAlchemy Core, SQLite and PostgreSQL alike).

What each figure counts (the method notes of the page and the report say the same in words):

- intake: reports received (``reports.created_at`` in the period) and items (URLs) first reported
  (``items.created_at``), per ISO week (Monday to Sunday, UTC) and channel — ``public`` (the
  reporting form), ``api`` (an API token), ``partner`` (forwarded by a partner hotline), ``other``;
  an item counts for the channel of the report that first named it;
- assessed: items first reported in the period with a final decision — by a hash list (state
  ``known``) or by analysts (``classified``); confirmed illegal: those with a takedown or a final
  classification that is illegal; settled unseen: assessed items a hash list decided that no one
  ever opened or revealed (no ``item.view`` / ``item.reveal`` in the audit log);
- hosting countries: the confirmed-illegal items by the country their takedown was located in
  ("" : not located) — so the countries add up to the confirmed-illegal count;
- time to removal: takedowns confirmed removed in the period (``removed_at``), hours from the
  report and from the first notice; median and 90th percentile (linear interpolation between
  ranks, like PostgreSQL's ``percentile_cont``), a distribution, and per provider and per country;
- notices: sent in the period; outstanding (sent, not closed) and overdue (escalated to the
  overdue queue, not closed) at the period's end;
- forwards: forwarded to partner hotlines in the period, by partner and outcome (the partner's
  newest status; ``failed``: not delivered; ``no_answer``: delivered, nothing back yet);
- urgent: reports marked urgent, alerts raised, acknowledged by the period's end, and the time to
  acknowledgement (minutes);
- viewing: analysts' viewing time in hours per week and in all, and how many people viewed — never
  per person; a week (or the period) with fewer than :data:`VIEWING_MIN_PEOPLE` people viewing
  shows no hours, since its total would be one or two people's own.

Percentiles: the database counts each group's distinct durations, sums those counts cumulatively
(window functions over the counted rows, not over every duration) and returns only the durations
at the ranks a median and a 90th percentile need; Python interpolates between them. Memory holds
four values per group, never the durations.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    Engine,
    String,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
)
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from meldpunt.domain.reports import ItemState
from meldpunt.store.acting import Alert, Contact, Location, Notice, Takedown
from meldpunt.store.audit import AuditEntryRow
from meldpunt.store.forwarding import ForwardOut
from meldpunt.store.reports import Item, Report
from meldpunt.store.triage import TriageStatus
from meldpunt.store.wellness import ViewingTime

#: the intake channels, in the order charts stack them
CHANNELS: tuple[str, ...] = ("public", "api", "partner", "other")
#: fewer people than this viewing in a week (or the period): its hours are not shown
VIEWING_MIN_PEOPLE = 3
#: the time-to-removal distribution's buckets: (key, upper bound in hours, None: open)
BUCKETS: tuple[tuple[str, float | None], ...] = (
    ("under_1h", 1),
    ("1h_24h", 24),
    ("1d_3d", 72),
    ("3d_7d", 168),
    ("over_7d", None),
)
#: the audit actions that mean a person looked at an item
VIEWS = ("item.view", "item.reveal")
#: items with a final decision: a hash list's (known) or analysts' (classified)
ASSESSED = (ItemState.KNOWN.value, ItemState.CLASSIFIED.value)


# -- week arithmetic in SQL --------------------------------------------------------------------------


class week_of_time(FunctionElement[date]):
    """The Monday (UTC) of a timestamp's ISO week, as a date (SQLite: its ``YYYY-MM-DD`` text)."""

    type = Date()
    name = "week_of_time"
    inherit_cache = True


class week_of_day(FunctionElement[date]):
    """The Monday of a date's ISO week."""

    type = Date()
    name = "week_of_day"
    inherit_cache = True


@compiles(week_of_time, "sqlite")
@compiles(week_of_day, "sqlite")
def _week_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    # 'weekday 0' moves to the next Sunday (or stays on one); six days back is that week's Monday
    return f"date({compiler.process(element.clauses, **kw)}, 'weekday 0', '-6 days')"


@compiles(week_of_time, "postgresql")
def _week_pg_time(element: Any, compiler: Any, **kw: Any) -> str:
    return f"CAST(date_trunc('week', ({compiler.process(element.clauses, **kw)}) AT TIME ZONE 'UTC') AS DATE)"


@compiles(week_of_day, "postgresql")
def _week_pg_day(element: Any, compiler: Any, **kw: Any) -> str:
    return f"CAST(date_trunc('week', CAST({compiler.process(element.clauses, **kw)} AS TIMESTAMP)) AS DATE)"


def _as_date(value: Any) -> date:
    """A week's Monday as the database hands it back (a date, or SQLite's text)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def week_label(day: date) -> str:
    """``2026-W09``: the ISO week a Monday starts."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


# -- the period --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """From ``start`` (included) to ``end`` (excluded), UTC."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("a period's bounds carry their time zone (UTC)")
        if self.end <= self.start:
            raise ValueError("a period ends after it starts")
        if self.end - self.start > timedelta(days=3660):
            raise ValueError("a period spans ten years at most")

    @classmethod
    def year(cls, year: int) -> Period:
        if not 1970 <= year <= 9998:
            raise ValueError(f"no such year: {year}")
        return cls(datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC))

    @classmethod
    def days(cls, first: date, last: date) -> Period:
        """From the start of ``first`` to the end of ``last`` (both days included)."""
        if last < first:
            raise ValueError("the period's last day comes before its first")
        start = datetime(first.year, first.month, first.day, tzinfo=UTC)
        return cls(start, datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1))

    @property
    def first_day(self) -> date:
        return self.start.date()

    @property
    def last_day(self) -> date:
        return (self.end - timedelta(microseconds=1)).date()

    def weeks(self) -> list[date]:
        """The Monday of every ISO week the period touches."""
        out, day = [], monday(self.first_day)
        while day <= self.last_day:
            out.append(day)
            day += timedelta(days=7)
        return out

    def holds(self, column: Any) -> ColumnElement[bool]:
        return and_(column >= self.start, column < self.end)


# -- what the figures are ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Spread:
    """How long something took: how many, the median and the 90th percentile (None: none)."""

    count: int
    median: float | None
    p90: float | None


@dataclass(frozen=True)
class GroupSpread:
    name: str
    count: int
    median: float | None
    p90: float | None


@dataclass(frozen=True)
class Week:
    monday: date
    #: channel -> count
    reports: dict[str, int]
    items: dict[str, int]

    @property
    def label(self) -> str:
        return week_label(self.monday)


@dataclass(frozen=True)
class ViewingWeek:
    monday: date
    #: None: fewer than VIEWING_MIN_PEOPLE people viewed that week
    hours: float | None
    people: int


@dataclass(frozen=True)
class Table:
    """One figure as rows: what its CSV holds (header: stable snake_case names)."""

    key: str
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]

    def csv(self) -> str:
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\r\n")
        w.writerow(self.columns)
        for row in self.rows:
            w.writerow(["" if v is None else _cell(v) for v in row])
        return out.getvalue()


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value  # a spreadsheet must not read a provider's name as a formula
    return value


@dataclass(frozen=True)
class Figures:
    period: Period
    weeks: list[Week]
    reports: dict[str, int]
    items: dict[str, int]
    assessed: int
    illegal: int
    illegal_by_hash_list: int
    illegal_by_analysts: int
    settled_unseen: int
    #: (country code, confirmed-illegal items), most first
    countries: list[tuple[str, int]]
    #: hours
    removal_from_report: Spread
    removal_from_notice: Spread
    #: (bucket key, removals)
    removal_buckets: list[tuple[str, int]]
    removal_by_provider: list[GroupSpread]
    removal_by_country: list[GroupSpread]
    notices_sent: int
    notices_outstanding: int
    notices_overdue: int
    #: (partner, outcome, forwards)
    forwards: list[tuple[str, str, int]]
    urgent_reports: int
    alerts_raised: int
    alerts_acknowledged: int
    #: minutes from raising to acknowledgement
    acknowledgement: Spread
    viewing: list[ViewingWeek]
    #: None: fewer than VIEWING_MIN_PEOPLE people in the period
    viewing_hours: float | None
    viewing_people: int
    tables: dict[str, Table] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """Nothing happened in the period: the page and the report say "no data" (notices still
        outstanding from before do not count: they are a state, not something that happened)."""
        return not (
            sum(self.reports.values())
            or sum(self.items.values())
            or self.removal_from_report.count
            or self.notices_sent
            or self.forwards
            or self.alerts_raised
            or self.viewing_people
        )

    @staticmethod
    def share(part: int, whole: int) -> float | None:
        return None if whole == 0 else part / whole


#: every figure's table, in the order the page and the report show them
TABLE_KEYS = (
    "intake",
    "decisions",
    "countries",
    "removal",
    "removal_distribution",
    "removal_by_provider",
    "removal_by_country",
    "notices",
    "forwards",
    "urgent",
    "viewing",
)


# -- streamed percentiles ----------------------------------------------------------------------------


def interpolate(sorted_values: Sequence[float], p: float) -> float:
    """The ``p`` quantile of sorted values, linear between ranks (``percentile_cont``)."""
    k = p * (len(sorted_values) - 1)
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


#: the percentiles as fractions (numerator, denominator): the ranks are whole-number arithmetic,
#: the same in SQL and in Python
QUANTILES = ((1, 2), (9, 10))


def _spreads(
    conn: Connection, group: Any, value: Any, source: Any, where: Sequence[Any]
) -> list[GroupSpread]:
    """Per ``group``: how many values, their median and 90th percentile. The database counts each
    group's distinct values (``GROUP BY`` group, value: far fewer rows than values, since
    durations repeat to the minute), runs a cumulative sum over those counts (so each distinct
    value knows the ranks it covers, ``first`` to ``end``) and hands back only the values covering
    the ranks the percentiles need — at most four per group, whatever the number of values;
    Python interpolates between them (``percentile_cont``'s definition). Counting first rather
    than ranking every value (``row_number`` and ``count`` over two windows) sorts the values
    once, not twice, and the windows then run over the counts."""
    cond = [*where, value.is_not(None)]
    if group is None:
        counted = (
            select(literal_column("'all'").label("g"), value.label("v"), func.count().label("c"))
            .select_from(source)
            .where(*cond)
            .group_by(value)
            .subquery("counted")
        )
        partition: dict[str, Any] = {}
    else:
        # grouped by position: SQLite would otherwise compute the group's expression twice per
        # row (its bound parameters make the two copies look different to it)
        counted = (
            select(group.label("g"), value.label("v"), func.count().label("c"))
            .select_from(source)
            .where(*cond)
            .group_by(literal_column("1"), literal_column("2"))
            .subquery("counted")
        )
        partition = {"partition_by": counted.c.g}

    # sum() of counts is NUMERIC on PostgreSQL: cast back so the rank arithmetic stays integral.
    # Both windows share their order (only the frames differ): one sort serves them both.
    def running(frame: tuple[int | None, int | None]) -> Any:
        return cast(func.sum(counted.c.c).over(order_by=counted.c.v, rows=frame, **partition), BigInteger)

    end = running((None, 0))
    ranked = select(
        counted.c.g,
        counted.c.v,
        (end - counted.c.c).label("first"),
        end.label("end"),
        running((None, None)).label("n"),
    ).subquery("ranked")
    lows = [((ranked.c.n - 1) * num) // den for num, den in QUANTILES]
    wanted = [*lows, *(lo + 1 for lo in lows)]
    rows = conn.execute(
        select(ranked.c.g, ranked.c.v, ranked.c.first, ranked.c.end, ranked.c.n).where(
            or_(*(and_(ranked.c.first <= r, ranked.c.end > r) for r in wanted))
        )
    ).all()
    picked: dict[str, list[tuple[int, int, float]]] = {}
    counts: dict[str, int] = {}
    for name, v, first, stop, n in rows:
        key = str(name or "")
        picked.setdefault(key, []).append((int(first), int(stop), float(v)))
        counts[key] = int(n)
    out = []
    for key, n in counts.items():
        spans = picked[key]

        def at(rank: int, spans: list[tuple[int, int, float]] = spans) -> float:
            return next(v for first, stop, v in spans if first <= rank < stop)

        def q(num: int, den: int, n: int = n) -> float:
            lo, rest = divmod((n - 1) * num, den)
            hi = min(lo + 1, n - 1)
            return at(lo) + (at(hi) - at(lo)) * rest / den

        out.append(GroupSpread(key, n, q(*QUANTILES[0]), q(*QUANTILES[1])))
    out.sort(key=lambda s: (-s.count, s.name))
    return out


def _one_spread(conn: Connection, value: Any, source: Any, where: Sequence[Any]) -> Spread:
    found = _spreads(conn, None, value, source, where)
    if not found:
        return Spread(0, None, None)
    return Spread(found[0].count, found[0].median, found[0].p90)


def _hours(s: Spread | GroupSpread, per_hour: float) -> Any:
    if isinstance(s, Spread):
        return Spread(s.count, _div(s.median, per_hour), _div(s.p90, per_hour))
    return GroupSpread(s.name, s.count, _div(s.median, per_hour), _div(s.p90, per_hour))


def _div(v: float | None, by: float) -> float | None:
    return None if v is None else v / by


# -- the queries -------------------------------------------------------------------------------------


def channel_of(source: Any) -> ColumnElement[str]:
    """A report's channel from its ``source`` ("public", "api:<token>", "partner:<hotline>")."""
    return case(
        (source == "public", literal("public")),
        (source.like("api:%"), literal("api")),
        (source.like("partner:%"), literal("partner")),
        else_=literal("other"),
    )


def _intake(conn: Connection, period: Period) -> tuple[list[Week], dict[str, int], dict[str, int]]:
    reports: dict[tuple[date, str], int] = {}
    channel = channel_of(Report.source)
    week = week_of_time(Report.created_at)
    for w, c, n in conn.execute(
        select(week, channel, func.count()).where(period.holds(Report.created_at)).group_by(week, channel)
    ):
        reports[(_as_date(w), str(c))] = int(n)
    items: dict[tuple[date, str], int] = {}
    iweek = week_of_time(Item.created_at)
    for w, c, n in conn.execute(
        select(iweek, channel, func.count())
        .select_from(Item)
        .join(Report, Report.id == Item.report_id)
        .where(period.holds(Item.created_at))
        .group_by(iweek, channel)
    ):
        items[(_as_date(w), str(c))] = int(n)
    weeks = [
        Week(
            m,
            {c: reports.get((m, c), 0) for c in CHANNELS},
            {c: items.get((m, c), 0) for c in CHANNELS},
        )
        for m in period.weeks()
    ]
    return (
        weeks,
        {c: sum(w.reports[c] for w in weeks) for c in CHANNELS},
        {c: sum(w.items[c] for w in weeks) for c in CHANNELS},
    )


def _seen_condition() -> ColumnElement[bool]:
    subject = literal("item:") + cast(Item.id, String)
    return exists().where(AuditEntryRow.subject == subject, AuditEntryRow.action.in_(VIEWS))


def _decisions(
    conn: Connection, period: Period
) -> tuple[tuple[int, int, int, int, int], list[tuple[str, int]]]:
    """The decisions and the hosting countries, in one pass over the period's assessed items:
    counted per the country of the confirmed-illegal ones (NULL: not confirmed illegal).

    An item has at most one takedown (``takedowns.item_id`` is unique) and one triage status (its
    key), so the outer joins neither add nor drop items; they replace the two ``EXISTS`` each
    item's illegality was asked with, twice per statement."""
    illegal_triage = TriageStatus.__table__.alias("illegal_triage")
    illegal = or_(Takedown.id.is_not(None), illegal_triage.c.item_id.is_not(None))
    known = Item.state == ItemState.KNOWN.value
    one, zero = literal(1), literal(0)
    country = case((illegal, func.coalesce(Location.country, "")), else_=None).label("illegal_country")
    rows = conn.execute(
        select(
            country,
            func.count(),
            func.sum(case((known, one), else_=zero)),
            func.sum(case((and_(known, ~_seen_condition()), one), else_=zero)),
        )
        .select_from(Item)
        .outerjoin(Takedown, Takedown.item_id == Item.id)
        .outerjoin(Location, Location.id == Takedown.location_id)
        .outerjoin(
            illegal_triage,
            and_(illegal_triage.c.item_id == Item.id, illegal_triage.c.illegal.is_(True)),
        )
        .where(period.holds(Item.created_at), Item.state.in_(ASSESSED))
        .group_by(literal_column("1"))  # by position, as in _spreads
    ).all()
    assessed = illegal_n = by_hash = unseen = 0
    countries = []
    for c, n, n_known, n_unseen in rows:
        assessed += int(n)
        unseen += int(n_unseen)
        if c is not None:
            illegal_n += int(n)
            by_hash += int(n_known)
            countries.append((str(c or "").upper(), int(n)))
    countries.sort(key=lambda r: (-r[1], r[0]))
    return (assessed, illegal_n, by_hash, illegal_n - by_hash, unseen), countries


def _removal_source() -> Any:
    return Takedown.__table__.outerjoin(Contact, Contact.id == Takedown.contact_id).outerjoin(
        Location, Location.id == Takedown.location_id
    )


def provider_of() -> ColumnElement[str]:
    """A takedown's provider: its abuse contact's name, else the contact's match, else the
    provider the locate step found ("" : unknown) — as the removals page names them."""
    return func.coalesce(
        func.nullif(Contact.name, ""), func.nullif(Contact.match, ""), func.nullif(Location.provider, ""), ""
    )


def _removals(
    conn: Connection, period: Period
) -> tuple[Spread, Spread, list[tuple[str, int]], list[GroupSpread], list[GroupSpread]]:
    removed = [Takedown.state == "removed", period.holds(Takedown.removed_at)]
    # each statement joins only the tables it reads: a takedown has at most one contact and one
    # location (joined on their keys), so the joins neither add nor drop rows
    takedowns = Takedown.__table__
    from_report = _hours(_one_spread(conn, Takedown.minutes_from_report, takedowns, removed), 60)
    from_notice = _hours(_one_spread(conn, Takedown.minutes_from_notice, takedowns, removed), 60)
    minutes = Takedown.minutes_from_report
    whens = []
    lower = 0.0
    for key, upper in BUCKETS:
        cond = minutes >= lower * 60 if upper is None else and_(minutes >= lower * 60, minutes < upper * 60)
        whens.append(func.coalesce(func.sum(case((cond, literal(1)), else_=literal(0))), 0).label(key))
        lower = upper or lower
    row = conn.execute(select(*whens).select_from(takedowns).where(*removed, minutes.is_not(None))).one()
    buckets = [(key, int(v)) for (key, _), v in zip(BUCKETS, row, strict=True)]
    by_provider = [_hours(s, 60) for s in _spreads(conn, provider_of(), minutes, _removal_source(), removed)]
    country = func.upper(func.coalesce(Location.country, ""))
    located = takedowns.outerjoin(Location, Location.id == Takedown.location_id)
    by_country = [_hours(s, 60) for s in _spreads(conn, country, minutes, located, removed)]
    return from_report, from_notice, buckets, by_provider, by_country


def _notices(conn: Connection, period: Period) -> tuple[int, int, int]:
    sent = conn.execute(select(func.count()).where(period.holds(Notice.sent_at))).scalar_one()
    open_at_end = and_(
        Notice.sent_at.is_not(None),
        Notice.sent_at < period.end,
        or_(Notice.closed_at.is_(None), Notice.closed_at >= period.end),
    )
    overdue = and_(Notice.escalated_at.is_not(None), Notice.escalated_at < period.end)
    row = conn.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((overdue, literal(1)), else_=literal(0))), 0),
        ).where(open_at_end)
    ).one()
    return int(sent), int(row[0]), int(row[1])


def outcome_of() -> ColumnElement[str]:
    """A forward's outcome: ``failed`` (not delivered), ``no_answer``, else the partner's newest status."""
    return case(
        (ForwardOut.state == "failed", literal("failed")),
        (ForwardOut.last_status == "", literal("no_answer")),
        else_=ForwardOut.last_status,
    )


def _forwards(conn: Connection, period: Period) -> list[tuple[str, str, int]]:
    outcome = outcome_of()
    rows = conn.execute(
        select(ForwardOut.partner, outcome, func.count())
        .where(period.holds(ForwardOut.created_at))
        .group_by(ForwardOut.partner, outcome)
    ).all()
    return sorted(((str(p), str(o), int(n)) for p, o, n in rows), key=lambda r: (r[0], -r[2], r[1]))


def _urgent(conn: Connection, period: Period) -> tuple[int, int, int, Spread]:
    urgent = conn.execute(
        select(func.count()).where(period.holds(Report.created_at), Report.urgent.is_(True))
    ).scalar_one()
    acked = and_(Alert.acknowledged_at.is_not(None), Alert.acknowledged_at < period.end)
    raised, acknowledged = conn.execute(
        select(func.count(), func.coalesce(func.sum(case((acked, literal(1)), else_=literal(0))), 0)).where(
            period.holds(Alert.raised_at)
        )
    ).one()
    ack = _hours(_one_spread(conn, Alert.ack_seconds, Alert.__table__, [period.holds(Alert.raised_at)]), 60)
    return int(urgent), int(raised), int(acknowledged), ack


def _viewing(conn: Connection, period: Period) -> tuple[list[ViewingWeek], float | None, int]:
    in_period = and_(ViewingTime.day >= period.first_day, ViewingTime.day <= period.last_day)
    week = week_of_day(ViewingTime.day)
    found = {
        _as_date(w): (int(s or 0), int(p))
        for w, s, p in conn.execute(
            select(week, func.sum(ViewingTime.seconds), func.count(ViewingTime.user.distinct()))
            .where(in_period)
            .group_by(week)
        )
    }
    weeks = []
    for m in period.weeks():
        seconds, people = found.get(m, (0, 0))
        hours = seconds / 3600 if people >= VIEWING_MIN_PEOPLE or people == 0 else None
        weeks.append(ViewingWeek(m, hours, people))
    seconds, people = conn.execute(
        select(
            func.coalesce(func.sum(ViewingTime.seconds), 0), func.count(ViewingTime.user.distinct())
        ).where(in_period)
    ).one()
    total = int(seconds) / 3600 if int(people) >= VIEWING_MIN_PEOPLE or int(people) == 0 else None
    return weeks, total, int(people)


# -- all of them -------------------------------------------------------------------------------------


def compute(engine: Engine, period: Period) -> Figures:
    """Every figure of ``period``, in one read-only transaction (one consistent snapshot on
    PostgreSQL's repeatable read; SQLite's reader sees one state of the file)."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        weeks, reports, items = _intake(conn, period)
        (assessed, illegal, by_hash, by_analysts, unseen), countries = _decisions(conn, period)
        from_report, from_notice, buckets, by_provider, by_country = _removals(conn, period)
        sent, outstanding, overdue = _notices(conn, period)
        forwards = _forwards(conn, period)
        urgent, raised, acknowledged, ack = _urgent(conn, period)
        viewing, viewing_hours, viewing_people = _viewing(conn, period)
    figures = Figures(
        period=period,
        weeks=weeks,
        reports=reports,
        items=items,
        assessed=assessed,
        illegal=illegal,
        illegal_by_hash_list=by_hash,
        illegal_by_analysts=by_analysts,
        settled_unseen=unseen,
        countries=countries,
        removal_from_report=from_report,
        removal_from_notice=from_notice,
        removal_buckets=buckets,
        removal_by_provider=by_provider,
        removal_by_country=by_country,
        notices_sent=sent,
        notices_outstanding=outstanding,
        notices_overdue=overdue,
        forwards=forwards,
        urgent_reports=urgent,
        alerts_raised=raised,
        alerts_acknowledged=acknowledged,
        acknowledgement=ack,
        viewing=viewing,
        viewing_hours=viewing_hours,
        viewing_people=viewing_people,
    )
    figures.tables.update(tables(figures))
    return figures


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 2)


def tables(f: Figures) -> dict[str, Table]:
    """Each figure as the rows of its CSV download."""
    share = Figures.share
    spread_cols = ("count", "median_hours", "p90_hours")
    out = [
        Table(
            "intake",
            ("week", "week_start", "channel", "reports", "items"),
            [(w.label, w.monday.isoformat(), c, w.reports[c], w.items[c]) for w in f.weeks for c in CHANNELS],
        ),
        Table(
            "decisions",
            ("figure", "value"),
            [
                ("assessed", f.assessed),
                ("confirmed_illegal", f.illegal),
                ("confirmed_illegal_by_hash_list", f.illegal_by_hash_list),
                ("confirmed_illegal_by_analysts", f.illegal_by_analysts),
                ("share_confirmed_illegal", _r(share(f.illegal, f.assessed))),
                ("settled_without_human_view", f.settled_unseen),
                ("share_settled_without_human_view", _r(share(f.settled_unseen, f.assessed))),
            ],
        ),
        Table("countries", ("country", "confirmed_illegal"), list(f.countries)),
        Table(
            "removal",
            ("measured_from", *spread_cols),
            [
                (
                    "report",
                    f.removal_from_report.count,
                    _r(f.removal_from_report.median),
                    _r(f.removal_from_report.p90),
                ),
                (
                    "first_notice",
                    f.removal_from_notice.count,
                    _r(f.removal_from_notice.median),
                    _r(f.removal_from_notice.p90),
                ),
            ],
        ),
        Table("removal_distribution", ("hours_from_report", "removed"), list(f.removal_buckets)),
        Table(
            "removal_by_provider",
            ("provider", *spread_cols),
            [(s.name, s.count, _r(s.median), _r(s.p90)) for s in f.removal_by_provider],
        ),
        Table(
            "removal_by_country",
            ("country", *spread_cols),
            [(s.name, s.count, _r(s.median), _r(s.p90)) for s in f.removal_by_country],
        ),
        Table(
            "notices",
            ("figure", "value"),
            [
                ("sent", f.notices_sent),
                ("outstanding_at_end", f.notices_outstanding),
                ("overdue_at_end", f.notices_overdue),
            ],
        ),
        Table("forwards", ("partner", "outcome", "forwards"), list(f.forwards)),
        Table(
            "urgent",
            ("figure", "value"),
            [
                ("urgent_reports", f.urgent_reports),
                ("alerts_raised", f.alerts_raised),
                ("alerts_acknowledged", f.alerts_acknowledged),
                ("acknowledgement_median_minutes", _r(f.acknowledgement.median)),
                ("acknowledgement_p90_minutes", _r(f.acknowledgement.p90)),
            ],
        ),
        Table(
            "viewing",
            ("week", "week_start", "hours", "people"),
            [(week_label(v.monday), v.monday.isoformat(), _r(v.hours), v.people) for v in f.viewing]
            + [("all", f.period.first_day.isoformat(), _r(f.viewing_hours), f.viewing_people)],
        ),
    ]
    assert tuple(t.key for t in out) == TABLE_KEYS
    return {t.key: t for t in out}


__all__ = [
    "BUCKETS",
    "CHANNELS",
    "TABLE_KEYS",
    "VIEWING_MIN_PEOPLE",
    "Figures",
    "GroupSpread",
    "Period",
    "Spread",
    "Table",
    "ViewingWeek",
    "Week",
    "compute",
    "interpolate",
    "week_label",
]
