"""How certificate times are kept and signed: UTC always, whole seconds in a signed payload,
written ``YYYY-MM-DDTHH:MM:SSZ``."""

from __future__ import annotations

import datetime as dt


def aware(t: dt.datetime) -> dt.datetime:
    """SQLite hands datetimes back naive; all stored times are UTC."""
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def whole_seconds(t: dt.datetime) -> dt.datetime:
    # Signed times carry whole seconds only, so a stored datetime always round-trips to
    # exactly the string that was signed, on every database.
    return aware(t).astimezone(dt.UTC).replace(microsecond=0)


def format_time(t: dt.datetime | None) -> str | None:
    if t is None:
        return None
    return whole_seconds(t).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: object) -> dt.datetime | None:
    if text is None:
        return None
    if not isinstance(text, str):
        raise TypeError("time must be a string")
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
