"""structlog set-up: JSON lines off a terminal, and one request id carried everywhere.

The request id comes from the ``x-request-id`` gRPC metadata (or is made up at the edge),
is bound into structlog's context for the call, returned in the call's trailing metadata,
and is sent on to every outgoing call, so one id follows a submission through the matters
service, the workflow and its activities.
"""

from __future__ import annotations

import asyncio
import atexit
import contextvars
import json as _json
import logging
import random
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

import structlog

REQUEST_ID_HEADER = "x-request-id"
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

# The fields of the RPC being served (``request_id``, ``rpc`` and, once the token is
# verified, ``caller``): the dict its access line is made of, set once per call by the
# call's wrapper (govflow/grpckit.py). Every line logged while the call runs carries them
# (``merge_call_fields``). One variable set per call, where binding each key into
# structlog's context would set one per key and cost several times as much.
call_fields: contextvars.ContextVar[dict[str, object] | None] = contextvars.ContextVar(
    "call_fields", default=None)
CALL_KEYS = ("request_id", "rpc", "caller")


def note_call(**fields: object) -> None:
    """Adds ``fields`` to the access line of the call being served (e.g. what it created:
    ``application=applications/...``); nothing outside a call."""
    line = call_fields.get()
    if line is not None:
        line.update(fields)


def merge_call_fields(_logger: object, _method: str,
                      event_dict: structlog.typing.EventDict) -> structlog.typing.EventDict:
    """structlog processor: adds the current call's fields (``call_fields``) that the
    event does not set itself, as ``merge_contextvars`` does for bound keys."""
    fields = call_fields.get()
    if fields:
        for key in CALL_KEYS:
            if key in fields:
                event_dict.setdefault(key, fields[key])
    return event_dict


# While tracing is on (govflow/tracing.py), OpenTelemetry's ``get_current_span``:
# ``add_trace_id`` then puts the current span's trace id in every line; off (None), it
# returns at once. Bound once, not imported on every line.
_current_span: Callable[[], Any] | None = None


def trace_ids(on: bool) -> None:
    global _current_span
    if on:
        from opentelemetry import trace

        _current_span = trace.get_current_span
    else:
        _current_span = None


def add_trace_id(_logger: object, _method: str,
                 event_dict: structlog.typing.EventDict) -> structlog.typing.EventDict:
    """structlog processor: the current OpenTelemetry trace id, while tracing is on."""
    if _current_span is not None and "trace_id" not in event_dict:
        ctx = _current_span().get_span_context()
        if ctx.is_valid:
            event_dict["trace_id"] = format(ctx.trace_id, "032x")
    return event_dict


def new_request_id() -> str:
    """32 random hex digits. From the process's Mersenne Twister (seeded from the OS, and
    reseeded in a forked child), not the OS itself: a request id must be unique, not
    secret, and a getrandom syscall on every call costs more than the rest of making it."""
    return f"{random.getrandbits(128):032x}"


def _fallback(value: object) -> object:
    """What JSON cannot hold, as structlog's own renderer does: ``__structlog__()`` if the
    object has it, else its repr."""
    custom = getattr(value, "__structlog__", None)
    return custom() if callable(custom) else repr(value)


# One encoder for every line: json.dumps with any keyword builds a new encoder per call,
# which costs more than encoding an access log line.
_ENCODER = _json.JSONEncoder(default=_fallback)


def _json_line(event_dict: dict[str, object], **_: object) -> str:
    return _ENCODER.encode(event_dict)


class _UtcClock:
    """ISO 8601 UTC time stamps with microseconds (``2026-12-02T00:41:42.839892Z``, as
    structlog's ``TimeStamper(fmt="iso", utc=True)`` writes them), the date and time of day
    formatted once per second."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self) -> str:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._prefix}.{int((now - second) * 1e6):06d}Z"


class _JsonLines:
    """Writes one JSON line per call to the log stream: the fields given, then ``event``,
    ``level`` and ``timestamp``: the keys and values structlog's chain writes.

    For the access line every RPC writes (``rpc_line``), on the event loop's thread. Two
    costs are avoided there. structlog's processor chain (context merge, level, time
    stamp, renderer, its logger) costs several times the line itself. And a write to the
    stream releases the GIL: under load gRPC's completion-queue thread is waiting for it,
    takes it, and the loop then waits for it back. So lines are held and written together,
    in one write, by a callback ``HOLD_SECONDS`` after the first of them: a line reaches
    the stream at most that long after its call answered. Called off a loop, or with
    ``MAX_PENDING`` lines held, it writes at once; ``flush()`` (also at exit) writes what
    is held."""

    HOLD_SECONDS = 0.005
    MAX_PENDING = 256

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._stamp = _UtcClock()
        self._pending: list[str] = []

    def __call__(self, event: str, fields: dict[str, object]) -> None:
        fields["event"] = event
        fields["level"] = "info"
        fields["timestamp"] = self._stamp()
        pending = self._pending
        pending.append(_ENCODER.encode(fields))
        if len(pending) == 1:
            try:
                asyncio.get_running_loop().call_later(self.HOLD_SECONDS, self.flush)
                return
            except RuntimeError:  # no loop running in this thread
                pass
        elif len(pending) < self.MAX_PENDING:
            return
        self.flush()

    def flush(self) -> None:
        lines, self._pending = self._pending, []
        if lines:
            lines.append("")
            self._stream.write("\n".join(lines))
            self._stream.flush()


_service = ""
_rpc_line: _JsonLines | None = None


def flush() -> None:
    """Writes the access lines still held (see ``_JsonLines``)."""
    if _rpc_line is not None:
        _rpc_line.flush()


atexit.register(flush)


def rpc_line(event: str, fields: dict[str, object]) -> None:
    """Logs ``event`` at info with ``fields``, the service's name first: what a call's
    wrapper (govflow/grpckit.py) writes once per call, with the call's own context (request
    id, rpc, caller) in ``fields``, since it does not read structlog's context. The line
    structlog would write; in JSON mode without its processor chain, and held for a few
    milliseconds to be written with others (``_JsonLines``)."""
    if _rpc_line is not None:
        _rpc_line(event, {"service": _service, **fields})
    else:
        get_logger("govflow.grpc").info(event, **fields)


def configure(service: str, *, json: bool | None = None, level: str = "info") -> None:
    """Configures structlog (and stdlib logging, for libraries) for one process."""
    global _service, _rpc_line
    if json is None:
        json = not sys.stderr.isatty()
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer(serializer=_json_line) if json
        else structlog.dev.ConsoleRenderer()
    )
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            merge_call_fields,
            add_trace_id,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)
    _service = service
    # On a terminal (console renderer) or above info (filtered out), rpc_line goes through
    # structlog.
    flush()
    _rpc_line = _JsonLines(sys.stderr) if json and numeric <= logging.INFO else None
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=sys.stderr)


def get_logger(name: str | None = None) -> structlog.typing.FilteringBoundLogger:
    # mypy, next line: an untyped value from generated code or the library
    return structlog.get_logger(name)  # type: ignore[no-any-return]
