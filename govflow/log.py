"""structlog set-up: JSON lines off a terminal, and one request id carried everywhere.

The request id comes from the ``x-request-id`` gRPC metadata (or is made up at the edge),
is bound into structlog's context for the call, returned in the call's trailing metadata,
and is sent on to every outgoing call, so one id follows a submission through the matters
service, the workflow and its activities.
"""

from __future__ import annotations

import contextvars
import json as _json
import logging
import random
import sys

import structlog

REQUEST_ID_HEADER = "x-request-id"
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")


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


def configure(service: str, *, json: bool | None = None, level: str = "info") -> None:
    """Configures structlog (and stdlib logging, for libraries) for one process."""
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
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=sys.stderr)


def get_logger(name: str | None = None) -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger(name)  # type: ignore[no-any-return]
