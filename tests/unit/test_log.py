"""The access line every RPC writes (log.rpc_line): the same line structlog writes for the
same event and context, and held only briefly."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import sys
from collections.abc import Iterator

import pytest
import structlog

from govflow import log


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
