import datetime as dt

from workflows import working_days as wd

CN = dt.timezone(dt.timedelta(hours=8))


def test_national_day_holiday_is_skipped() -> None:
    # Submitted Tue 29 Sep 2026; 30 Sep is a working day, 1-7 Oct are the National Day
    # holiday, and Sat 10 Oct 2026 is an adjusted working day (调休).
    start = dt.datetime(2026, 9, 29, 10, 0, tzinfo=CN)
    due = wd.due_time(start, 2).astimezone(CN)
    assert due.date() == dt.date(2026, 10, 8)
    assert wd.due_time(start, 4).astimezone(CN).date() == dt.date(2026, 10, 10)


def test_weekend_is_skipped_and_day_ends_at_midnight() -> None:
    friday = dt.datetime(2026, 11, 20, 16, 0, tzinfo=CN)
    due = wd.due_time(friday, 1).astimezone(CN)
    assert due.date() == dt.date(2026, 11, 23)
    assert (due.hour, due.minute) == (23, 59)


def test_year_without_data_falls_back_to_weekdays() -> None:
    cal = wd.ChinaCalendar()
    assert not cal.covered(dt.date(2030, 1, 2))
    start = dt.datetime(2030, 1, 4, 9, 0, tzinfo=CN)  # a Friday
    assert wd.due_time(start, 1, cal).astimezone(CN).date() == dt.date(2030, 1, 7)


def test_working_days_between_counts_only_working_days() -> None:
    a = dt.datetime(2026, 9, 29, 10, 0, tzinfo=CN)
    b = dt.datetime(2026, 10, 9, 10, 0, tzinfo=CN)
    assert wd.working_days_between(a, b) == 3  # 30 Sep, 8 Oct, 9 Oct
