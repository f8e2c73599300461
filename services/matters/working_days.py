"""Working days: turns "N working days" into a due time on a published calendar.

A calendar is data: per region and year, the public holidays and the adjusted working
days (调休, weekend days worked in exchange for a longer holiday). Administrators publish a
year; the years the ``chinese-calendar`` package covers are seeded from it.

The counting convention of statutory time limits: the day of submission (or of the
step's opening) does not count; a limit of N working days ends at the end of the Nth
working day after it (23:59:59, China time). In a year no published calendar covers, the
count falls back to Monday to Friday, and the result says it is *provisional*: it is
recomputed when that year is published.

Pure rules, no I/O: the matters service loads the years and calls these; workflow code
never does (its due times are recorded results, so new calendar data never changes a
replay).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

CHINA_TZ = ZoneInfo("Asia/Shanghai")
# A limit of N working days runs to the end of the Nth working day.
END_OF_DAY = dt.time(23, 59, 59)
# Regions whose calendars administrators publish, and the time zone their days are in.
REGIONS: dict[str, dt.tzinfo] = {"CN": CHINA_TZ}
# A built-in calendar with no holidays (tests and places without data); never provisional.
WEEKDAYS = "weekdays"


@dataclasses.dataclass(frozen=True)
class YearDays:
    """One published year of one region's calendar."""

    region: str
    year: int
    # Days off (weekend days inside a holiday period may be listed too), by date: name.
    holidays: Mapping[dt.date, str]
    # Weekend days that are working days (调休), by date: the holiday they make up for.
    working_days: Mapping[dt.date, str]
    source: str = ""


@dataclasses.dataclass(frozen=True)
class Due:
    """A due time and whether any day counted lies in a year with no published calendar."""

    time: dt.datetime
    provisional: bool
    # The years counted on the Monday-to-Friday fallback (empty when not provisional).
    missing_years: tuple[int, ...] = ()


class Calendar:
    """A region's calendar over the years loaded into it."""

    def __init__(self, region: str, years: Iterable[YearDays] = ()) -> None:
        self.region = region
        self.tz = REGIONS.get(region, dt.UTC)
        self.years = {y.year: y for y in years}

    def covered(self, day: dt.date) -> bool:
        return self.region == WEEKDAYS or day.year in self.years

    def is_working_day(self, day: dt.date) -> bool:
        year = self.years.get(day.year)
        if year is not None:
            if day in year.working_days:
                return True
            if day in year.holidays:
                return False
        return day.weekday() < 5


def due_time(start: dt.datetime, days: int, calendar: Calendar) -> Due:
    """End of the ``days``-th working day after the day of ``start`` (UTC out).

    The day of ``start`` does not count: a 1-day limit on a Friday before a national
    holiday runs to the end of the next working day after the holiday.
    """
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    day = start.astimezone(calendar.tz).date()
    missing: set[int] = set()
    left = max(days, 0)
    while left > 0:
        day += dt.timedelta(days=1)
        if not calendar.covered(day):
            missing.add(day.year)
        if calendar.is_working_day(day):
            left -= 1
    end = dt.datetime.combine(day, END_OF_DAY, tzinfo=calendar.tz).astimezone(dt.UTC)
    return Due(time=end, provisional=bool(missing), missing_years=tuple(sorted(missing)))


def years_spanned(start: dt.datetime, days: int) -> range:
    """The calendar years a count of ``days`` working days from ``start`` can reach (a
    generous bound: no year has fewer than 150 working days)."""
    first = start.astimezone(CHINA_TZ).year
    return range(first, first + 2 + max(days, 0) // 150)


def working_days_between(start: dt.datetime, end: dt.datetime, calendar: Calendar) -> int:
    """Working days from the day after ``start`` through the day of ``end``."""
    a = start.astimezone(calendar.tz).date()
    b = end.astimezone(calendar.tz).date()
    count = 0
    while a < b:
        a += dt.timedelta(days=1)
        if calendar.is_working_day(a):
            count += 1
    return count


# ---------------------------------------------------------------- publishing a year
def parse_entries(entries: Any, field: str, year: int | None,
                  problems: dict[str, str]) -> dict[dt.date, str]:
    """Days from a list of ``{date, name}`` or ``{from, to, name}`` entries (as parsed from
    YAML or JSON). Every problem is added to ``problems`` under its field path: a date that
    is not a date, one outside ``year``, a range that runs backwards, a day listed twice."""
    out: dict[dt.date, str] = {}
    if entries is None:
        return out
    if not isinstance(entries, list):
        problems[field] = "must be a list of {date, name} or {from, to, name} entries"
        return out
    for i, entry in enumerate(entries):
        path = f"{field}[{i}]"
        if not isinstance(entry, dict):
            problems[path] = "must be {date, name} or {from, to, name}"
            continue
        unknown = sorted(set(entry) - {"date", "from", "to", "name"})
        if unknown:
            problems[path] = f"unknown keys: {', '.join(map(str, unknown))}"
            continue
        name = str(entry.get("name") or "").strip()
        if "date" in entry and ("from" in entry or "to" in entry):
            problems[path] = "give either date or from/to, not both"
            continue
        if "date" in entry:
            first = _date(entry["date"], f"{path}.date", problems)
            last = first
        else:
            first = _date(entry.get("from"), f"{path}.from", problems)
            last = _date(entry.get("to"), f"{path}.to", problems)
        if first is None or last is None:
            continue
        if last < first:
            problems[path] = f"runs backwards: {first} to {last}"
            continue
        if (last - first).days > 31:
            problems[path] = f"{first} to {last} is longer than a month"
            continue
        day = first
        while day <= last:
            if year is not None and day.year != year:
                problems[path] = f"{day} is outside {year}"
                break
            if day in out:
                problems[path] = f"{day} is listed twice"
                break
            out[day] = name
            day += dt.timedelta(days=1)
    return out


def _date(value: Any, path: str, problems: dict[str, str]) -> dt.date | None:
    if isinstance(value, dt.datetime):
        problems[path] = "must be a date (YYYY-MM-DD), not a time"
        return None
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except (TypeError, ValueError):
        problems[path] = f"{value!r} is not a date (YYYY-MM-DD)"
        return None


def check_year(region: str, year: int, holidays: Mapping[dt.date, str],
               working_days: Mapping[dt.date, str], problems: dict[str, str]) -> None:
    """The rules of a whole year: a known region, a plausible year, no day both off and
    worked, adjusted working days on weekends only, holidays named."""
    if region not in REGIONS:
        problems["region"] = (f"unknown region {region!r}; known: {', '.join(sorted(REGIONS))}"
                              if region else
                              f"required; known: {', '.join(sorted(REGIONS))}")
    if not 2000 <= year <= 2100:
        problems["year"] = "required, between 2000 and 2100"
    both = sorted(set(holidays) & set(working_days))
    if both:
        problems["working_days"] = ("listed as holidays too: "
                                    + ", ".join(d.isoformat() for d in both))
    weekdays = sorted(d for d in working_days if d.weekday() < 5)
    if weekdays and "working_days" not in problems:
        problems["working_days"] = ("adjusted working days fall on weekends; these are "
                                    "weekdays already: " + ", ".join(d.isoformat() for d in weekdays))
    unnamed = sorted(d for d, n in holidays.items() if not n)
    if unnamed and "holidays" not in problems:
        problems["holidays"] = "every holiday needs a name: " + ", ".join(
            d.isoformat() for d in unnamed)
