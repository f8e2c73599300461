"""The access line every RPC writes (log.rpc_line): the same line structlog writes for the
same event and context, and held only briefly."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import sys
from collections.abc import Iterator

import grpc
import pytest
import structlog
from google.protobuf import empty_pb2

from govflow import log
from govflow.auth import Principal, TokenVerifier
from govflow.errors import FailedPrecondition
from govflow.grpckit import ServiceChecks


@pytest.fixture
def stream(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)
    log.configure("matters", json=True)
    yield out
    log.flush()
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()
    log._rpc_line = None


def _lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(x) for x in out.getvalue().splitlines()]


def test_the_access_line_is_the_line_structlog_writes(stream: io.StringIO) -> None:
    fields = {"request_id": "r1", "rpc": "GetApplication", "caller": "persons/p1", "ms": 1.5}
    log.rpc_line("rpc.ok", dict(fields))
    log.flush()
    bound = structlog.contextvars.bind_contextvars(**{k: v for k, v in fields.items()
                                                      if k != "ms"})
    log.get_logger("govflow.grpc").info("rpc.ok", ms=1.5)
    structlog.contextvars.reset_contextvars(**bound)
    fast, slow = _lines(stream)
    # The same keys and values but the time of writing (structlog's key order follows its
    # context's, which is not fixed).
    assert {k: v for k, v in fast.items() if k != "timestamp"} == \
        {k: v for k, v in slow.items() if k != "timestamp"}
    assert fast["service"] == "matters" and fast["event"] == "rpc.ok" and fast["level"] == "info"
    for line in (fast, slow):
        stamp = str(line["timestamp"])
        assert stamp.endswith("Z")
        when = dt.datetime.fromisoformat(stamp.removesuffix("Z") + "+00:00")
        assert abs((dt.datetime.now(dt.UTC) - when).total_seconds()) < 60


def test_values_json_cannot_hold_are_escaped_not_lost(stream: io.StringIO) -> None:
    log.rpc_line("rpc.ok", {"request_id": 'quote " and \n newline', "rpc": "X", "ms": 0.1})
    log.flush()
    (line,) = _lines(stream)
    assert line["request_id"] == 'quote " and \n newline'


def test_lines_on_a_loop_are_written_together_within_a_few_milliseconds(
        stream: io.StringIO) -> None:
    async def calls() -> tuple[str, str]:
        for i in range(3):
            log.rpc_line("rpc.ok", {"request_id": f"r{i}", "rpc": "X", "ms": 0.1})
        held = stream.getvalue()
        await asyncio.sleep(log._JsonLines.HOLD_SECONDS * 10)
        return held, stream.getvalue()

    held, written = asyncio.run(calls())
    assert held == ""
    assert [x["request_id"] for x in _lines(stream)] == ["r0", "r1", "r2"]
    assert written.endswith("\n")


def test_off_a_loop_a_line_is_written_at_once(stream: io.StringIO) -> None:
    log.rpc_line("rpc.ok", {"request_id": "r", "rpc": "X", "ms": 0.1})
    assert [x["request_id"] for x in _lines(stream)] == ["r"]


def test_above_info_no_access_line_is_written(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)
    log.configure("matters", json=True, level="warning")
    try:
        log.rpc_line("rpc.ok", {"request_id": "r", "rpc": "X", "ms": 0.1})
        log.flush()
        assert out.getvalue() == ""
    finally:
        structlog.reset_defaults()
        log._rpc_line = None


def test_the_access_line_is_encoded_as_the_json_encoder_would(stream: io.StringIO) -> None:
    fields: dict[str, object] = {"request_id": "r\u00e9\u2028\x01", "rpc": "X", "caller": "",
                                 "ms": 1e-7, "n": 3, "flag": True, "none": None,
                                 "odd": dt.date(2026, 12, 2)}
    log.rpc_line("rpc.ok", dict(fields))
    log.flush()
    written = stream.getvalue().rstrip("\n")
    expected = {"service": "matters", **fields, "event": "rpc.ok", "level": "info",
                "timestamp": json.loads(written)["timestamp"]}
    assert written == log._ENCODER.encode(expected)
    assert json.loads(written)["odd"] == repr(dt.date(2026, 12, 2))


# ---------------------------------------------------------------- inside a served call

class _Verifier(TokenVerifier):
    """Accepts any token as one citizen (what is tested here is the logging, not tokens)."""

    def __init__(self) -> None:
        pass

    async def verify(self, token: str) -> Principal:
        return Principal(subject="persons/p-7", kind="person")


async def _served(stream: io.StringIO, fail: bool) -> tuple[grpc.aio.AioRpcError | None, str]:
    async def handler(request: empty_pb2.Empty,
                      context: grpc.aio.ServicerContext) -> empty_pb2.Empty:
        log.get_logger("test").info("inside.call", extra="yes")
        if fail:
            raise FailedPrecondition("not now", reason="NOT_NOW")
        return empty_pb2.Empty()

    checks = ServiceChecks("govflow.test", _Verifier(), ())
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("t.T", {
        "Call": checks.wrap(grpc.unary_unary_rpc_method_handler(
            handler, request_deserializer=empty_pb2.Empty.FromString,
            response_serializer=empty_pb2.Empty.SerializeToString), "/t.T/Call")}),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            call = ch.unary_unary("/t.T/Call")
            error = None
            try:
                await call(empty_pb2.Empty().SerializeToString(),
                           metadata=(("x-request-id", "rid-42"), ("authorization", "Bearer t")))
            except grpc.aio.AioRpcError as exc:
                error = exc
    finally:
        await server.stop(0)
    log.flush()
    return error, stream.getvalue()


async def test_every_line_of_a_call_carries_its_request_id_rpc_and_caller(
        stream: io.StringIO) -> None:
    error, _ = await _served(stream, fail=False)
    assert error is None
    lines = _lines(stream)
    inside = next(x for x in lines if x["event"] == "inside.call")
    access = next(x for x in lines if x["event"] == "rpc.ok")
    for line in (inside, access):
        assert (line["service"], line["request_id"], line["rpc"], line["caller"]) == \
            ("matters", "rid-42", "Call", "persons/p-7")
    assert inside["extra"] == "yes" and "ms" not in inside
    assert isinstance(access["ms"], float)
    # Outside the call, nothing of it is left in the context.
    assert log.call_fields.get() is None
    log.get_logger("test").info("after.call")
    after = _lines(stream)[-1]
    assert after["event"] == "after.call" and "request_id" not in after and "caller" not in after


async def test_a_refused_call_logs_its_refusal_with_the_call_s_fields(
        stream: io.StringIO) -> None:
    error, _ = await _served(stream, fail=True)
    assert error is not None and error.code() == grpc.StatusCode.FAILED_PRECONDITION
    refused = next(x for x in _lines(stream) if x["event"] == "rpc.refused")
    assert (refused["request_id"], refused["rpc"], refused["caller"], refused["reason"]) == \
        ("rid-42", "Call", "persons/p-7", "NOT_NOW")
    assert ("x-request-id", "rid-42") in tuple(error.trailing_metadata() or ())
