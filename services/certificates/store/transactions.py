"""Transactions: the connection of a session or connection, and writes retried when they
lose a race."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlmodel import Session

from govflow import log

T = TypeVar("T")
logger = log.get_logger("govflow.certificates")


def connection(tx: Session | Connection) -> Connection:
    """The connection of ``tx``: Core and ``Prepared`` statements run on it, in the same
    transaction as the session's ORM work."""
    return tx if isinstance(tx, Connection) else tx.connection()


# Conflicting inserts (a concurrent retry, a status-list slot or a first key taken by
# another transaction) are retried this many times before giving up.
MAX_ATTEMPTS = 8


async def with_retries(run: Callable[[Callable[[Any], T]], Awaitable[T]],
                       fn: Callable[[Any], T]) -> T:
    """``fn`` in a transaction of ``run`` (``Database.run`` with a session, or
    ``Database.write`` with a connection), tried again on a lost race."""
    last: Exception | None = None
    for _ in range(MAX_ATTEMPTS):
        try:
            return await run(fn)
        except (sa.exc.IntegrityError, sa.exc.OperationalError) as exc:
            # IntegrityError: someone took our slot, key or request id first; the next
            # attempt sees their row. OperationalError: SQLite was locked past its timeout.
            last = exc
            logger.info("certificates.write_conflict", error=type(exc).__name__)
    assert last is not None
    raise last
