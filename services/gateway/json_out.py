"""Answers as proto3 JSON, with each message type's conversion planned once.

``json_format.MessageToDict`` works out afresh, for every field of every answer, what kind
of field it is (map, repeated, message, enum, 64-bit, bytes, ...): on a ``GetApplication``
answer that is about 250 µs of the gateway's ~650 µs per call (bench figure 8). Here
each message type gets a plan once — the JSON name and the conversion of each field —
and an answer is one walk of its set fields (``ListFields``, as ``json_format`` walks
them) through the plan. The output is ``MessageToDict``'s with its default options.

Only what Govflow's answers hold is planned: strings, bools, integers, doubles, bytes,
open enums, maps with string or integer keys, nested messages and
``google.protobuf.Timestamp``. A type that holds anything
else (another well-known type, a float, bool map keys, a closed enum) is converted by
``json_format`` itself. tests/unit/test_gateway_json.py holds the two equal on every
answer type the gateway routes.
"""

from __future__ import annotations

import base64
import math
import time
from collections.abc import Callable
from typing import Any

from google.protobuf import descriptor, json_format, message

F = descriptor.FieldDescriptor
Convert = Callable[[Any], Any] | None  # None: the value as it is
Plan = dict[descriptor.FieldDescriptor, tuple[str, Convert]]

_PLANS: dict[str, Plan | None] = {}
_INT64 = {F.CPPTYPE_INT64, F.CPPTYPE_UINT64}
_TIMESTAMP = "google.protobuf.Timestamp"


class _NotPlanned(Exception):
    """A field kind left to json_format."""


def message_to_dict(msg: message.Message) -> dict[str, Any]:
    """``json_format.MessageToDict(msg)``, faster for the types Govflow answers with."""
    plan = _plan(msg.DESCRIPTOR)  # type: ignore[arg-type]  # upb's Descriptor is the same type at run time
    if plan is None:
        return json_format.MessageToDict(msg)
    return _convert(msg, plan)


def _convert(msg: message.Message, plan: Plan) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field, value in msg.ListFields():
        name, conv = plan[field]
        out[name] = value if conv is None else conv(value)
    return out


def _plan(desc: descriptor.Descriptor) -> Plan | None:
    name = desc.full_name
    if name in _PLANS:
        return _PLANS[name]
    plan: Plan = {}
    _PLANS[name] = plan  # filled below; a type that holds itself finds it here
    try:
        for field in desc.fields:
            plan[field] = (field.json_name, _field(field))
    except _NotPlanned:
        _PLANS[name] = None
        return None
    return plan


def _field(field: descriptor.FieldDescriptor) -> Convert:
    entry = field.message_type
    if field.type == F.TYPE_MESSAGE and entry is not None and entry.GetOptions().map_entry:
        key = entry.fields_by_name["key"]
        if key.type == F.TYPE_BOOL:
            raise _NotPlanned
        value = _value(entry.fields_by_name["value"])
        if value is None:
            return lambda m: {str(k): v for k, v in m.items()}
        return lambda m: {str(k): value(v) for k, v in m.items()}
    conv = _value(field)
    if field.is_repeated:
        if conv is None:
            return list
        return lambda items: [conv(v) for v in items]
    return conv


def _value(field: descriptor.FieldDescriptor) -> Convert:
    """The conversion of one value of ``field``."""
    if field.is_extension:
        raise _NotPlanned
    cpp = field.cpp_type
    if cpp == F.CPPTYPE_MESSAGE:
        sub = field.message_type
        if sub is None:
            raise _NotPlanned
        if sub.full_name == _TIMESTAMP:
            return _timestamp
        if sub.full_name.startswith("google.protobuf."):
            raise _NotPlanned
        plan = _plan(sub)
        if plan is None:
            raise _NotPlanned
        return lambda m: _convert(m, plan)
    if cpp == F.CPPTYPE_ENUM:
        enum = field.enum_type
        if enum is None or enum.is_closed:
            raise _NotPlanned
        names = {v.number: v.name for v in enum.values}
        return lambda n: names.get(n, n)
    if field.type == F.TYPE_BYTES:
        return lambda b: base64.b64encode(b).decode("utf-8")
    if cpp in _INT64:
        return str
    if cpp == F.CPPTYPE_DOUBLE:
        return _double
    if cpp == F.CPPTYPE_FLOAT:
        raise _NotPlanned  # json_format rounds floats to their shortest form
    return None  # strings, bools, 32-bit integers


# Timestamps from the year 1000 on: glibc's strftime pads %Y to four digits only there.
_FAST_MIN = -30610224000  # 1000-01-01T00:00:00Z
_FAST_MAX = 253402300799  # 9999-12-31T23:59:59Z, the last valid Timestamp second


def _timestamp(ts: Any) -> str:
    """``ts.ToJsonString()`` (RFC 3339, UTC, 0, 3, 6 or 9 digits of fraction), from
    ``time.gmtime``: the SDK's own costs about four times as much, and an answer holds a
    dozen. Anything out of the fast range, valid or not, is left to the SDK."""
    seconds, nanos = ts.seconds, ts.nanos
    if not _FAST_MIN <= seconds <= _FAST_MAX or not 0 <= nanos < 1_000_000_000:
        return ts.ToJsonString()  # type: ignore[no-any-return]  # an untyped value from generated code or the library
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    if nanos == 0:
        return text + "Z"
    if nanos % 1_000_000 == 0:
        return f"{text}.{nanos // 1_000_000:03d}Z"
    if nanos % 1000 == 0:
        return f"{text}.{nanos // 1000:06d}Z"
    return f"{text}.{nanos:09d}Z"


def _double(x: float) -> Any:
    if math.isinf(x):
        return "-Infinity" if x < 0 else "Infinity"
    if math.isnan(x):
        return "NaN"
    return x
