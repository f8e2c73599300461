"""Working days: turns "N working days" into a due time on an official calendar.

Mainland China's holidays and adjusted working days (调休) come from the maintained
``chinese-calendar`` package (State Council notices, 2004 through 2026 in the pinned
release). For a year the package does not cover yet, the calendar falls back to Monday to
Friday and says so (``covered``), so a due time is never refused, only less exact.

Pure and deterministic: workflows call it with ``workflow.now()``.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol
from zoneinfo import ZoneInfo

import chinese_calendar

CHINA_TZ = ZoneInfo("Asia/Shanghai")
# Office hours end; a limit of N working days runs to the end of the Nth working day.
END_OF_DAY = dt.time(23, 59, 59)


class Calendar(Protocol):
    tz: dt.tzinfo

    def is_working_day(self, day: dt.date) -> bool: ...

    def covered(self, day: dt.date) -> bool: ...


class ChinaCalendar:
    """The mainland China calendar (holidays and adjusted working days)."""

    tz: dt.tzinfo = CHINA_TZ

    def covered(self, day: dt.date) -> bool:
        try:
            chinese_calendar.is_workday(day)
            return True
        except NotImplementedError:
            return False

    def is_working_day(self, day: dt.date) -> bool:
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:
            return day.weekday() < 5


class WeekdayCalendar:
    """Monday to Friday, no holidays (for tests and places without data)."""

    tz: dt.tzinfo = dt.UTC

    def covered(self, day: dt.date) -> bool:
        return True

    def is_working_day(self, day: dt.date) -> bool:
        return day.weekday() < 5


CALENDARS: dict[str, Calendar] = {"CN": ChinaCalendar(), "weekdays": WeekdayCalendar()}


def due_time(start: dt.datetime, working_days: int, calendar: Calendar | None = None) -> dt.datetime:
    """End of the ``working_days``-th working day after the day of ``start`` (UTC out).

    The day of submission does not count, as with statutory limits: a 1-day limit on a
    Friday before a national holiday runs to the end of the next working day after it.
    """
    cal = calendar or CALENDARS["CN"]
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    day = start.astimezone(cal.tz).date()
    left = max(working_days, 0)
    while left > 0:
        day += dt.timedelta(days=1)
        if cal.is_working_day(day):
            left -= 1
    return dt.datetime.combine(day, END_OF_DAY, tzinfo=cal.tz).astimezone(dt.UTC)


def working_days_between(start: dt.datetime, end: dt.datetime, calendar: Calendar | None = None) -> int:
    """Working days from the day after ``start`` through the day of ``end``."""
    cal = calendar or CALENDARS["CN"]
    a = start.astimezone(cal.tz).date()
    b = end.astimezone(cal.tz).date()
    count = 0
    while a < b:
        a += dt.timedelta(days=1)
        if cal.is_working_day(a):
            count += 1
    return count


def extend(due: dt.datetime, paused: dt.timedelta) -> dt.datetime:
    """Pushes a due time by the time the clock stood still (supplement requests)."""
    return due + paused
