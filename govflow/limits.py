"""Limits on what any caller may send, checked for every request before a servicer runs.

A request is walked field by field; every string (map keys and values included) must hold no
NUL character (PostgreSQL cannot store one, and no Govflow field needs one) and be no longer
than its limit; a repeated field or map holds at most ``MAX_REPEATED`` items; an enum holds
one of its defined values; a timestamp lies between ``TIMESTAMP_MIN`` and ``TIMESTAMP_MAX``
with nanos in [0, 1e9). Every violation is named in one INVALID_ARGUMENT. The services then
apply their own, tighter rules (ID formats, codes, purposes, ...). docs/security.md
("Limits") lists these figures; keep the two in step.
"""

from __future__ import annotations

import datetime as dt

from google.protobuf import descriptor, message

from govflow.errors import InvalidArgument

F = descriptor.FieldDescriptor

# Any string field, unless named below. 512 characters are at most 2 KiB of UTF-8, under
# PostgreSQL's limit for an indexed value, so identifiers can always be stored.
MAX_STRING_CHARS = 512
# Longer text, by field name (the same name means the same kind of text in every message).
STRING_LIMITS: dict[str, int] = {
    "filter": 1000,
    "reason": 1000,
    "status_reason": 1000,
    "reasons": 2000,
    "comment": 2000,
    "explanations": 2000,
    "upload_uri": 4096,
    "signature": 4096,
    "signed_payload": 65536,
    "definition_yaml": 65536,
    # A foreign issuer's compact certificate (ImportCertificate) and its public keys
    # (AddTrustedIssuer).
    "token": 16384,
    "jwks_json": 16384,
    # Internal read-model updates from the worker carry composed texts.
    "message": 262144,
    "inputs_json": 262144,
}
# Values of map fields, by the map's field name (certificate fields).
MAP_VALUE_LIMITS: dict[str, int] = {"fields": 2000}
MAX_REPEATED = 100
TIMESTAMP_MIN = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
TIMESTAMP_MAX = dt.datetime(2999, 12, 31, 23, 59, 59, tzinfo=dt.UTC)
_TS_MIN_SECONDS = int(TIMESTAMP_MIN.timestamp())
_TS_MAX_SECONDS = int(TIMESTAMP_MAX.timestamp())
_MAX_DEPTH = 16


def _string_problem(value: str, limit: int) -> str | None:
    if "\x00" in value:
        return "must not contain NUL characters"
    if len(value) > limit:
        return f"longer than {limit} characters"
    return None


def _scalar_problem(field: descriptor.FieldDescriptor, value: object, limit: int) -> str | None:
    if field.type == F.TYPE_STRING:
        return _string_problem(value, limit)  # type: ignore[arg-type]  # the walker types field values as object
    if field.type == F.TYPE_ENUM and field.enum_type is not None \
            and (not isinstance(value, int) or field.enum_type.values_by_number.get(value) is None):
        return "not a defined value"
    return None


def _timestamp_problem(ts: message.Message) -> str | None:
    seconds, nanos = ts.seconds, ts.nanos  # type: ignore[attr-defined]  # a Timestamp walked as a plain Message
    if not 0 <= nanos < 1_000_000_000:
        return "nanos must be in [0, 999999999]"
    if not _TS_MIN_SECONDS <= seconds <= _TS_MAX_SECONDS:
        return (f"must lie between {TIMESTAMP_MIN.date().isoformat()} and "
                f"{TIMESTAMP_MAX.date().isoformat()}")
    return None


class _Field:
    """What the walk needs to know of a field, worked out once per field descriptor (a
    descriptor's options and types cost more to ask for than checking a value)."""

    __slots__ = ("check", "key", "limit", "name", "nested", "repeated", "value", "value_limit")

    def __init__(self, field: descriptor.FieldDescriptor) -> None:
        self.name = field.name
        self.repeated = field.is_repeated
        self.limit = STRING_LIMITS.get(field.name, MAX_STRING_CHARS)
        self.key = self.value = None
        self.value_limit = MAP_VALUE_LIMITS.get(field.name, MAX_STRING_CHARS)
        self.nested = False  # a message walked in turn (a map's values, for a map)
        message_type = field.message_type
        if field.type == F.TYPE_MESSAGE and message_type is not None \
                and message_type.GetOptions().map_entry:
            self.check = "map"
            self.key = message_type.fields_by_name["key"]
            self.value = message_type.fields_by_name["value"]
            self.nested = self.value.type == F.TYPE_MESSAGE
        elif field.type == F.TYPE_MESSAGE and message_type is not None:
            timestamp = message_type.full_name == "google.protobuf.Timestamp"
            self.check = "timestamp" if timestamp else "message"
        elif field.type == F.TYPE_STRING:
            self.check = "string"
        elif field.type == F.TYPE_ENUM:
            self.check = "enum"
        else:
            self.check = ""  # numbers, bools, bytes: nothing to check


_FIELDS: dict[descriptor.FieldDescriptor, _Field] = {}


def _walk(msg: message.Message, prefix: str, out: dict[str, str], depth: int) -> None:
    if depth > _MAX_DEPTH:
        out[prefix.rstrip(".") or "request"] = "nested too deeply"
        return
    for field, value in msg.ListFields():
        f = _FIELDS.get(field)
        if f is None:
            f = _FIELDS[field] = _Field(field)
        if not f.check:
            continue
        if f.check == "string" and not f.repeated and len(value) <= f.limit \
                and "\x00" not in value:
            continue  # most fields: one string within its limit
        path = prefix + f.name
        if f.repeated and len(value) > MAX_REPEATED:
            out[path] = f"more than {MAX_REPEATED} items"
            continue
        if f.check == "map":
            for key, item in value.items():
                # mypy, next line: the walker types field values as object
                bad = _scalar_problem(f.key, key, MAX_STRING_CHARS)  # type: ignore[arg-type]
                if bad:
                    out[f"{path} key"] = bad
                    continue
                shown = key if isinstance(key, str) and len(key) <= 64 else "..."
                if f.nested:
                    _walk(item, f"{path}[{shown}].", out, depth + 1)
                else:
                    # mypy, next line: the walker types field values as object
                    bad = _scalar_problem(f.value, item, f.value_limit)  # type: ignore[arg-type]
                    if bad:
                        out[f"{path}[{shown}]"] = bad
            continue
        items = value if f.repeated else (value,)
        for i, item in enumerate(items):
            where = f"{path}[{i}]" if f.repeated else path
            if f.check == "timestamp":
                bad = _timestamp_problem(item)
            elif f.check == "message":
                _walk(item, where + ".", out, depth + 1)
                continue
            else:
                bad = _scalar_problem(field, item, f.limit)
            if bad:
                out[where] = bad


def check_request(msg: message.Message) -> None:
    """Raises one INVALID_ARGUMENT naming every field of ``msg`` outside the limits."""
    problems: dict[str, str] = {}
    _walk(msg, "", problems, 0)
    if problems:
        raise InvalidArgument(fields=problems, reason="REQUEST_LIMITS")
