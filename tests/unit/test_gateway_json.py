"""The gateway's planned proto3 JSON (services/gateway/json_out.py) against the standard
path it replaces, ``json_format.MessageToDict``: equal on every answer (and request)
type the gateway routes, for generated messages of every shape."""

from __future__ import annotations

import math

import pytest
from google.protobuf import json_format, message
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from govflow.matters.v1 import matters_pb2 as mpb
from services.gateway import json_out
from services.gateway.routes import build_routes
from tests.security.strategies import messages

ROUTES = build_routes()
TYPES = sorted({t for r in ROUTES.values() for t in (r.response, r.request)},
               key=lambda t: t.DESCRIPTOR.full_name)


def _same(msg: message.Message) -> None:
    try:
        expected = json_format.MessageToDict(msg)
    except Exception:  # e.g. a timestamp out of range: the planned path refuses too
        with pytest.raises(Exception):  # noqa: B017
            json_out.message_to_dict(msg)
        return
    got = json_out.message_to_dict(msg)
    assert _nan_safe(got) == _nan_safe(expected)
    assert list(got) == list(expected)  # same keys in the same order


def _nan_safe(x: object) -> object:
    if isinstance(x, float) and math.isnan(x):
        return "nan-float"
    if isinstance(x, dict):
        return {k: _nan_safe(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_nan_safe(v) for v in x]
    return x


@pytest.mark.parametrize("cls", TYPES, ids=lambda t: t.DESCRIPTOR.full_name)
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_planned_json_is_json_format(cls: type[message.Message], data: st.DataObject) -> None:
    try:
        msg = data.draw(messages(cls.DESCRIPTOR))
    except TypeError:  # the shared strategy's 150-entry map is of strings: not for int maps
        reject()
    _same(msg)


def test_every_answer_type_is_planned() -> None:
    """The shortcut covers what the gateway answers with (else it is json_format anyway)."""
    unplanned = [r.response.DESCRIPTOR.full_name for r in ROUTES.values()
                 if json_out._plan(r.response.DESCRIPTOR) is None]
    assert unplanned == []


def test_edges() -> None:
    app = mpb.Application(name="applications/x")
    app.create_time.FromSeconds(1_800_000_000)
    app.timeline.add(kind="submitted", message="提交 \x00 \"quoted\"")
    _same(mpb.GetApplicationResponse(application=app))
    _same(mpb.GetApplicationResponse())
    # Timestamps at the edges of the fast path and past them, with every fraction length.
    for seconds in (-62135596800, -30610224001, -30610224000, -1, 0, 1_800_000_000,
                    253402300799, 253402300800):
        for nanos in (0, 1, 1000, 1_000_000, 123_456_789, 999_999_999, 1_000_000_000, -1):
            ts = mpb.Application(name="x")
            ts.create_time.seconds, ts.create_time.nanos = seconds, nanos
            _same(ts)
    # Unknown enum numbers (open enums) stay numbers.
    _same(mpb.Application(status=99))


class _Channels(dict):  # type: ignore[type-arg]  # any service name: a stand-in channel
    def __missing__(self, key: str) -> object:
        class _Channel:
            def unary_unary(self, path: str) -> object:
                return None

        return _Channel()


def test_the_json_of_an_answer_is_kept_by_its_bytes() -> None:
    """The gateway keeps the JSON of recent answers by their bytes: the same bytes give
    the same JSON without converting again; other bytes (the timeline moved) are
    converted afresh. Either way the body is json_format's."""
    import json

    from services.gateway.app import Gateway

    gw = Gateway(_Channels())
    route = ROUTES["/govflow.matters.v1.MattersService/GetApplication"]
    answer = mpb.GetApplicationResponse(application=mpb.Application(
        name="applications/a1", status=mpb.APPLICATION_STATUS_IN_REVIEW))
    first = gw._json(route, answer.SerializeToString())
    assert gw._json(route, answer.SerializeToString()) is first  # kept, not converted again
    assert json.loads(first) == json_format.MessageToDict(answer)
    answer.application.status = mpb.APPLICATION_STATUS_COMPLETED
    moved = gw._json(route, answer.SerializeToString())
    assert json.loads(moved) == json_format.MessageToDict(answer)
    assert json.loads(moved)["application"]["status"] == "APPLICATION_STATUS_COMPLETED"
    # A large answer (a long page) is converted every time, never kept.
    from services.gateway.app import JSON_KEPT_MAX_BYTES

    big = mpb.GetApplicationResponse(application=mpb.Application(
        name="applications/a2", timeline=[mpb.TimelineEvent(event_id=f"{i:04d}", message="x" * 100)
                                          for i in range(JSON_KEPT_MAX_BYTES // 100)]))
    big_bytes = big.SerializeToString()
    assert len(big_bytes) > JSON_KEPT_MAX_BYTES
    once = gw._json(route, big_bytes)
    assert gw._json(route, big_bytes) is not once and json.loads(once) == json_format.MessageToDict(big)
