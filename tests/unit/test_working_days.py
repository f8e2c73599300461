"""The counting rules of working days on published calendars (services/matters/working_days.py)."""

import datetime as dt

import pytest

from services.matters import calendars
from services.matters import working_days as wd

CN = dt.timezone(dt.timedelta(hours=8))
SEEDED = wd.Calendar("CN", calendars.package_years())


def test_national_day_holiday_is_skipped() -> None:
    # Submitted Tue 29 Sep 2026; 30 Sep is a working day, 1-7 Oct are the National Day
    # holiday, and Sat 10 Oct 2026 is an adjusted working day (调休).
    start = dt.datetime(2026, 9, 29, 10, 0, tzinfo=CN)
    due = wd.due_time(start, 2, SEEDED)
    assert due.time.astimezone(CN).date() == dt.date(2026, 10, 8)
    assert not due.provisional
    assert wd.due_time(start, 4, SEEDED).time.astimezone(CN).date() == dt.date(2026, 10, 10)


def test_weekend_is_skipped_and_the_limit_ends_at_the_end_of_the_day_china_time() -> None:
    friday = dt.datetime(2026, 11, 20, 16, 0, tzinfo=CN)
    due = wd.due_time(friday, 1, SEEDED).time.astimezone(CN)
    assert due.date() == dt.date(2026, 11, 23)
    assert (due.hour, due.minute, due.second) == (23, 59, 59)


def test_the_day_of_submission_does_not_count() -> None:
    monday_early = dt.datetime(2026, 11, 23, 0, 1, tzinfo=CN)
    assert wd.due_time(monday_early, 1, SEEDED).time.astimezone(CN).date() == dt.date(2026, 11, 24)
    # Submitted late on Sunday evening UTC is already Monday in China: Monday does not count.
    sunday_utc = dt.datetime(2026, 11, 22, 17, 0, tzinfo=dt.UTC)
    assert wd.due_time(sunday_utc, 1, SEEDED).time.astimezone(CN).date() == dt.date(2026, 11, 24)


def test_a_year_without_a_published_calendar_counts_weekdays_and_is_provisional() -> None:
    start = dt.datetime(2026, 12, 30, 9, 0, tzinfo=CN)  # a Wednesday
    due = wd.due_time(start, 2, SEEDED)
    # 31 Dec 2026, then Fri 1 Jan 2027 counted as a weekday for want of the 2027 calendar.
    assert due.time.astimezone(CN).date() == dt.date(2027, 1, 1)
    assert due.provisional and due.missing_years == (2027,)
    published = wd.Calendar("CN", [*calendars.package_years(), wd.YearDays(
        region="CN", year=2027, holidays={dt.date(2027, 1, 1): "New Year's Day"},
        working_days={})])
    again = wd.due_time(start, 2, published)
    assert again.time.astimezone(CN).date() == dt.date(2027, 1, 4)
    assert not again.provisional and again.missing_years == ()


def test_a_limit_inside_published_years_is_not_provisional_and_weekdays_never_is() -> None:
    start = dt.datetime(2026, 3, 2, 9, 0, tzinfo=CN)
    assert not wd.due_time(start, 20, SEEDED).provisional
    assert not wd.due_time(dt.datetime(2031, 1, 1, tzinfo=CN), 5, wd.Calendar(wd.WEEKDAYS)).provisional


def test_working_days_between_counts_only_working_days() -> None:
    a = dt.datetime(2026, 9, 29, 10, 0, tzinfo=CN)
    b = dt.datetime(2026, 10, 9, 10, 0, tzinfo=CN)
    assert wd.working_days_between(a, b, SEEDED) == 3  # 30 Sep, 8 Oct, 9 Oct


def test_the_package_seeds_every_year_it_covers_and_they_pass_the_publication_checks() -> None:
    years = calendars.package_years()
    assert [y.year for y in years] == list(range(2004, 2027))
    for y in years:
        problems: dict[str, str] = {}
        wd.check_year(y.region, y.year, y.holidays, y.working_days, problems)
        assert not problems, (y.year, problems)


def test_a_bad_year_is_refused_with_every_problem_named() -> None:
    from govflow.errors import InvalidArgument

    with pytest.raises(InvalidArgument) as caught:
        calendars.year_from_entries(
            "XX", 2027,
            [{"date": "2027-01-01", "name": "New Year's Day"},
             {"date": "2027-01-01", "name": "New Year's Day again"},
             {"date": "2028-02-01", "name": "Next year"},
             {"from": "2027-02-10", "to": "2027-02-06", "name": "Backwards"},
             {"date": "2027-13-01", "name": "No such month"},
             {"date": "2027-05-01"}],
            [{"date": "2027-02-03", "name": "A Wednesday"}],
            "test", prefix="calendar_year.")
    fields = caught.value.fields
    assert fields["calendar_year.region"].startswith("unknown region 'XX'")
    assert "listed twice" in fields["calendar_year.holidays[1]"]
    assert "outside 2027" in fields["calendar_year.holidays[2]"]
    assert "runs backwards" in fields["calendar_year.holidays[3]"]
    assert "not a date" in fields["calendar_year.holidays[4].date"]
    assert "2027-05-01" in fields["calendar_year.holidays"]  # unnamed
    assert "2027-02-03" in fields["calendar_year.working_days"]  # a weekday
    assert caught.value.reason == "CALENDAR_INVALID"


def test_ranges_expand_to_days() -> None:
    y = calendars.year_from_entries(
        "CN", 2027, [{"from": "2027-02-06", "to": "2027-02-13", "name": "Spring Festival"}],
        [{"date": "2027-02-20", "name": "Spring Festival"}], "")
    assert len(y.holidays) == 8 and dt.date(2027, 2, 20) in y.working_days
