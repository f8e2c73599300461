"""Working-day calendars as data: the years administrators publish (and the years seeded
from the ``chinese-calendar`` package), due times counted on them, and the recomputation
of provisional due times when a missing year is published.

The rules live in ``working_days`` (pure); this module loads and stores the years and
tells running workflows when a year they counted without arrives."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from sqlmodel import Session, col, select
from temporalio.service import RPCError

from govflow import auth, log
from govflow.db import Database
from govflow.errors import InvalidArgument, NotFound
from services.matters import working_days as wd
from services.matters.store import audit
from services.matters.store.tables import CalendarYearRow, utcnow
from workflows.models import SA_DUE_PROVISIONAL

# The signal an application workflow takes to recompute its provisional due times.
CALENDAR_SIGNAL = "calendar_published"

logger = log.get_logger("govflow.matters.calendars")


@dataclasses.dataclass(frozen=True)
class PublishedYear:
    """A stored year with who published it and when."""

    days: wd.YearDays
    published_by: str
    publish_time: dt.datetime
    revision: int


def _to_domain(row: CalendarYearRow) -> PublishedYear:
    days = wd.YearDays(
        region=row.region, year=row.year,
        holidays={dt.date.fromisoformat(k): v for k, v in json.loads(row.holidays_json).items()},
        working_days={dt.date.fromisoformat(k): v
                      for k, v in json.loads(row.working_days_json).items()},
        source=row.source)
    publish_time = row.publish_time if row.publish_time.tzinfo else \
        row.publish_time.replace(tzinfo=dt.UTC)
    return PublishedYear(days=days, published_by=row.published_by, publish_time=publish_time,
                         revision=row.revision)


def _days_json(days: dict[dt.date, str]) -> str:
    return json.dumps({d.isoformat(): n for d, n in sorted(days.items())}, ensure_ascii=False)


def year_from_entries(region: str, year: int, holidays: object, working_days: object,
                      source: str, *, prefix: str = "") -> wd.YearDays:
    """A year from its parts as a client sent them (lists of ``{date, name}`` or
    ``{from, to, name}``); INVALID_ARGUMENT naming every problem (field paths under
    ``prefix``), or the checked year."""
    problems: dict[str, str] = {}
    if len(source) > 500:
        problems["source"] = "at most 500 characters"
    known_year = year if 2000 <= year <= 2100 else None
    h = wd.parse_entries(holidays, "holidays", known_year, problems)
    w = wd.parse_entries(working_days, "working_days", known_year, problems)
    wd.check_year(region, year, h, w, problems)
    if problems:
        problems = {prefix + k: v for k, v in problems.items()}
        raise InvalidArgument(f"calendar {region or '?'}/{year or '?'} refused: "
                              + "; ".join(f"{k}: {v}" for k, v in sorted(problems.items())),
                              fields=problems, reason="CALENDAR_INVALID")
    return wd.YearDays(region=region, year=year, holidays=h, working_days=w, source=source)


class CalendarStore:
    """The calendar years of matters' database: typed reads and writes, domain values out."""

    @staticmethod
    def get(s: Session, region: str, year: int) -> PublishedYear | None:
        row = s.get(CalendarYearRow, (region, year))
        return _to_domain(row) if row is not None else None

    @staticmethod
    def years(s: Session, region: str, years: Iterable[int]) -> list[wd.YearDays]:
        wanted = sorted(set(years))
        rows = s.exec(select(CalendarYearRow).where(
            CalendarYearRow.region == region, col(CalendarYearRow.year).in_(wanted)))
        return [_to_domain(r).days for r in rows]

    @staticmethod
    def listing(s: Session, region: str, *, offset: int, limit: int) -> list[PublishedYear]:
        rows = s.exec(select(CalendarYearRow).where(CalendarYearRow.region == region)
                      .order_by(col(CalendarYearRow.year).desc()).offset(offset).limit(limit))
        return [_to_domain(r) for r in rows]

    @staticmethod
    def put(s: Session, days: wd.YearDays, published_by: str) -> PublishedYear:
        """Stores the year (a new revision when it exists) and appends it to the audit chain
        in the same transaction."""
        row = s.get(CalendarYearRow, (days.region, days.year))
        before = _to_domain(row) if row is not None else None
        if row is None:
            row = CalendarYearRow(region=days.region, year=days.year, holidays_json="",
                                  working_days_json="")
            s.add(row)
        row.holidays_json = _days_json(dict(days.holidays))
        row.working_days_json = _days_json(dict(days.working_days))
        row.source = days.source
        row.published_by = published_by
        row.publish_time = utcnow()
        row.revision = before.revision + 1 if before is not None else 1
        s.flush()
        details: dict[str, object] = {
            "region": days.region, "year": days.year, "revision": row.revision,
            "source": days.source, "holidays": len(days.holidays),
            "working_days": len(days.working_days)}
        if before is not None:
            details["changed"] = sorted(
                d.isoformat() for d in
                (set(before.days.holidays) ^ set(days.holidays))
                | (set(before.days.working_days) ^ set(days.working_days)))
        audit.append(s, action="calendar.published", actor=published_by,
                     subject=f"calendars/{days.region}/years/{days.year}", details=details)
        return _to_domain(row)


def package_years() -> list[wd.YearDays]:
    """The mainland China years the pinned ``chinese-calendar`` package covers."""
    from chinese_calendar import constants

    by_year: dict[int, tuple[dict[dt.date, str], dict[dt.date, str]]] = {}
    for day, name in constants.holidays.items():
        by_year.setdefault(day.year, ({}, {}))[0][day] = str(name)
    for day, name in constants.workdays.items():
        by_year.setdefault(day.year, ({}, {}))[1][day] = str(name)
    return [wd.YearDays(region="CN", year=y, holidays=h, working_days=w,
                        source="chinese-calendar package (State Council notices)")
            for y, (h, w) in sorted(by_year.items())]


class Calendars:
    """Publishing and reading calendars, counting due times, and moving the timers of
    running applications when a year they counted without is published."""

    def __init__(self, db: Database, temporal: object | None = None) -> None:
        self.db = db
        self.temporal = temporal  # services.matters.workflow_client.TemporalLink

    def seed(self, s: Session) -> int:
        """Stores each year the package covers that nobody has published yet (an
        administrator's publication is never overwritten); returns how many."""
        have = set(s.exec(select(CalendarYearRow.year).where(CalendarYearRow.region == "CN")))
        added = 0
        for days in package_years():
            if days.year not in have:
                CalendarStore.put(s, days, "system")
                added += 1
        return added

    async def publish(self, p: auth.Principal, days: wd.YearDays, *,
                      validate_only: bool = False) -> tuple[PublishedYear, int]:
        """Stores the year (platform administrators only) and asks every running
        application with provisional due times to recompute them. Returns the stored year
        and how many applications were asked."""
        if validate_only:
            return PublishedYear(days=days, published_by=p.subject, publish_time=utcnow(),
                                 revision=0), 0
        try:
            stored = await self.db.run(lambda s: CalendarStore.put(s, days, p.subject))
        except sa.exc.IntegrityError:
            # Two first publications of one year at once: the second becomes revision 2.
            stored = await self.db.run(lambda s: CalendarStore.put(s, days, p.subject))
        logger.info("calendar.published", region=days.region, year=days.year,
                    revision=stored.revision, holidays=len(days.holidays),
                    working_days=len(days.working_days))
        return stored, await self.recompute_provisional(days.region, days.year)

    async def recompute_provisional(self, region: str, year: int) -> int:
        """Signals every running application whose due times are provisional (its
        ``GovflowDueProvisional`` search attribute); each recomputes them from the
        calendar as it is now and moves its timers. A workflow that finished meanwhile is
        skipped."""
        if self.temporal is None:
            return 0
        # mypy, next line: a TemporalLink, untyped here to avoid an import cycle
        client = await self.temporal.client()  # type: ignore[attr-defined]
        query = f"{SA_DUE_PROVISIONAL} = true AND ExecutionStatus = 'Running'"
        sent = 0
        async for wf in client.list_workflows(query):
            try:
                await client.get_workflow_handle(wf.id).signal(
                    CALENDAR_SIGNAL, f"calendars/{region}/years/{year}")
                sent += 1
            except RPCError as err:
                logger.warning("calendar.recompute_signal_failed", workflow_id=wf.id,
                               error=str(err))
        logger.info("calendar.recompute_requested", region=region, year=year, applications=sent)
        return sent

    async def get(self, name: str) -> PublishedYear:
        region, year = parse_name(name)
        found = await self.db.run(lambda s: CalendarStore.get(s, region, year))
        if found is None:
            raise NotFound(f"{name} is not published", reason="CALENDAR_YEAR_NOT_FOUND")
        return found

    async def listing(self, parent: str, *, offset: int, limit: int) -> list[PublishedYear]:
        region = parent.removeprefix("calendars/")
        if not parent.startswith("calendars/") or region not in wd.REGIONS:
            raise InvalidArgument(fields={"parent": "must be calendars/{region}, region one of "
                                          + ", ".join(sorted(wd.REGIONS))})
        return await self.db.run(lambda s: CalendarStore.listing(
            s, region, offset=offset, limit=limit))

    async def due_times(self, region: str, queries: Sequence[tuple[dt.datetime, int]]
                        ) -> list[wd.Due]:
        """Due times of ``queries`` (start, working days) on the region's calendar."""
        region = region or "CN"
        if region != wd.WEEKDAYS and region not in wd.REGIONS:
            raise InvalidArgument(fields={"region": "one of " + ", ".join(
                sorted([*wd.REGIONS, wd.WEEKDAYS]))})
        cal = wd.Calendar(region)
        if region != wd.WEEKDAYS:
            years = {y for start, days in queries for y in wd.years_spanned(start, days)}
            cal = wd.Calendar(region, await self.db.run(
                lambda s: CalendarStore.years(s, region, years)))
        return [wd.due_time(start, days, cal) for start, days in queries]



def parse_name(name: str) -> tuple[str, int]:
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != "calendars" or parts[2] != "years" \
            or not parts[3].isdigit():
        raise InvalidArgument(fields={"name": "must be calendars/{region}/years/{year}"})
    return parts[1], int(parts[3])
