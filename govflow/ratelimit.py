"""Per-caller rate limits that hold across replicas: fixed-window counters in a table of the
service's own database, so every replica counts against the same figure.

Each service owns its table (a sqlmodel class with ``key``, ``window_start`` and ``count``,
primary key ``(key, window_start)``, made by its migrations); this module only counts. One
atomic ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` per call, on SQLite and on
PostgreSQL alike, so concurrent calls on any replica never lose a count.
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlmodel import Session

from govflow.db import dialect_insert
from govflow.errors import ResourceExhausted


def hit(s: Session | Connection, table: Any, key: str, *, limit: int, window_seconds: int,
        what: str, now: float | None = None) -> None:
    """Counts one call of ``key`` in the current window; RESOURCE_EXHAUSTED (reason
    RATE_LIMITED, with the seconds to wait) once more than ``limit`` calls fall in it.
    A limit of 0 turns the check off. Run it in a transaction of its own, before the work it
    guards, so that calls which then fail still count."""
    if limit <= 0:
        return
    now = time.time() if now is None else now
    window = int(now // window_seconds) * window_seconds
    t = table.__table__
    stmt = dialect_insert(s, t).values(key=key[:400], window_start=window, count=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=[t.c.key, t.c.window_start], set_={"count": t.c.count + 1},
    ).returning(t.c.count)
    count = int(s.execute(stmt).scalar_one())
    if count == 1:
        # The key's first call in this window: forget windows that are over (all keys).
        s.execute(sa.delete(t).where(t.c.window_start < window - window_seconds))
    if count > limit:
        retry = int(window + window_seconds - now) + 1
        raise ResourceExhausted(
            f"too many {what}; at most {limit} every {window_seconds} s, retry in {retry} s",
            reason="RATE_LIMITED",
            metadata={"limit": str(limit), "window_seconds": str(window_seconds),
                      "retry_after_seconds": str(retry)})
