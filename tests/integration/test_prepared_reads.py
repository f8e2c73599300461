"""db.Prepared gives the rows Connection.execute gives (same values, same types: aware
datetimes, booleans, NULLs), with datetime and boolean parameters, on SQLite and on
PostgreSQL; and Database.read answers on both."""

from __future__ import annotations

import datetime as dt
import pathlib
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from govflow.db import Database, Prepared
from services.matters.server import MIGRATIONS
from services.matters.store import TaskRow
from tests.stack import postgres_databases

TASKS: sa.Table = TaskRow.__table__  # type: ignore[attr-defined]
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[Database]:
    if request.param == "postgres":
        with postgres_databases(("matters",)) as urls:
            database = Database(urls["matters"], MIGRATIONS)
            database.migrate()
            yield database
            database.dispose()
    else:
        database = Database(f"sqlite:///{tmp_path / 'matters.sqlite3'}", MIGRATIONS)
        database.migrate()
        yield database
        database.dispose()


async def test_prepared_rows_equal_core_rows(db: Database) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=123456)
    with db.engine.begin() as conn:
        conn.execute(sa.insert(TASKS), [
            {"name": f"tasks/{i}", "application_id": f"a{i}", "matter": "m", "step": "s",
             "display_name": "d", "role": "reviewer", "agency": "x", "status": "OPEN",
             "due_time": now + dt.timedelta(hours=i) if i else None, "overdue": i == 2,
             "create_time": now, "update_time": now}
            for i in range(4)])
    stmt = sa.select(TASKS).where(
        TASKS.c.agency == sa.bindparam("agency"),
        sa.or_(TASKS.c.due_time <= sa.bindparam("before", type_=TASKS.c.due_time.type),
               TASKS.c.overdue == sa.bindparam("overdue", type_=TASKS.c.overdue.type)),
    ).order_by(TASKS.c.name).limit(sa.bindparam("limit"))
    params = {"agency": "x", "before": now + dt.timedelta(hours=1, minutes=1),
              "overdue": True, "limit": 10}
    prepared = Prepared(stmt)
    with db.engine.connect() as conn:
        want = [tuple(r) for r in conn.execute(stmt, params)]
        got = prepared.all(conn, params)
    assert [r.name for r in got] == ["tasks/1", "tasks/2"]
    assert [tuple(r) for r in got] == want
    assert isinstance(got[1].overdue, bool) and got[1].overdue
    assert got[0].due_time == now + dt.timedelta(hours=1)
    assert got[0].due_time.tzinfo is not None  # as the ORM and Core give it

    # And through Database.read (inline on SQLite, in a thread on PostgreSQL).
    row = await db.read(lambda c: prepared.first(c, params))
    assert row == got[0]
    assert await db.read(lambda c: prepared.first(c, {**params, "agency": "y"})) is None


async def test_values_the_statement_gives_and_values_given(db: Database) -> None:
    """Parameters a statement carries itself (a literal limit, a bind with a value) are
    sent with the given ones, in the DBAPI's order; a given value overrides a bind's own."""
    now = dt.datetime.now(dt.UTC)
    with db.engine.begin() as conn:
        conn.execute(sa.insert(TASKS), [
            {"name": f"tasks/{i}", "application_id": "a", "matter": "m", "step": "s",
             "display_name": "d", "role": "reviewer", "agency": "x",
             "status": "OPEN" if i % 2 else "CLAIMED", "due_time": now, "overdue": False,
             "create_time": now, "update_time": now}
            for i in range(6)])
    stmt = sa.select(TASKS.c.name).where(
        TASKS.c.status == sa.bindparam("status", value="OPEN"),
        TASKS.c.agency == sa.bindparam("agency"),
    ).order_by(TASKS.c.name.desc()).limit(2)
    prepared = Prepared(stmt)
    with db.engine.connect() as conn:
        for params in ({"agency": "x"}, {"agency": "x", "status": "CLAIMED"}, {"agency": "y"}):
            want = [r.name for r in conn.execute(stmt, params)]
            assert [r.name for r in prepared.all(conn, params)] == want
        assert [r.name for r in prepared.all(conn, {"agency": "x"})] == ["tasks/5", "tasks/3"]
        with pytest.raises(KeyError):
            prepared.all(conn, {})  # agency is the caller's to give


async def test_a_read_refused_for_a_lock_on_the_loop_is_retried_in_a_thread(
        tmp_path: pathlib.Path) -> None:
    """In WAL mode another connection cannot make a reader wait, so the refusal is staged:
    the read raises SQLite's "database is locked" when run on the loop's thread."""
    import threading

    db = Database(f"sqlite:///{tmp_path / 'matters.sqlite3'}", MIGRATIONS)
    db.migrate()
    query = Prepared(sa.select(TASKS.c.name))
    loop_thread = threading.get_ident()
    ran_on: list[bool] = []

    def locked_on_the_loop(conn: sa.Connection) -> list[str]:
        on_loop = threading.get_ident() == loop_thread
        ran_on.append(on_loop)
        if on_loop and len(ran_on) == 1:
            raise sa.exc.OperationalError("SELECT", {}, Exception("database is locked"))
        return [r.name for r in query.all(conn, {})]

    try:
        assert await db.read(locked_on_the_loop) == []
        assert ran_on == [True, False]  # refused on the loop, answered in a thread
        assert await db.read(locked_on_the_loop) == []
        assert ran_on == [True, False, True]  # and inline again on a fresh connection
    finally:
        db.dispose()


def task(name: str) -> dict[str, object]:
    """The columns of an open task, for writing one."""
    when = dt.datetime(2026, 12, 6, 9, 30, tzinfo=dt.UTC)
    return {"name": name, "application_id": "a1", "matter": "matters/m", "step": "review",
            "display_name": "Review", "role": "reviewer", "agency": "agencies/x",
            "status": "OPEN", "assignee": "", "overdue": False, "decision": "",
            "reasons": "[]", "kind": "step", "workflow_id": "", "create_time": when,
            "update_time": when}


async def test_write_commits_all_or_nothing(db: Database) -> None:
    """Database.write runs Core statements in one transaction: committed when the function
    returns, rolled back — nothing of it left — when it raises."""

    def two(conn: sa.Connection) -> int:
        conn.execute(sa.insert(TASKS), [task("tasks/w1"), task("tasks/w2")])
        return 2

    def one_then_fail(conn: sa.Connection) -> None:
        conn.execute(sa.insert(TASKS), task("tasks/w3"))
        conn.execute(sa.insert(TASKS), task("tasks/w1"))  # the key is taken: IntegrityError

    names = Prepared(sa.select(TASKS.c.name).order_by(TASKS.c.name))
    assert await db.write(two) == 2
    with pytest.raises(sa.exc.IntegrityError):
        await db.write(one_then_fail)
    assert [r.name for r in await db.read(lambda c: names.all(c, {}))] == ["tasks/w1", "tasks/w2"]


async def test_a_write_that_meets_a_lock_waits_in_a_thread_not_on_the_loop(
        tmp_path: pathlib.Path) -> None:
    """On SQLite a write runs on the loop's thread, but never waits there: while another
    connection holds the write lock it is refused at once, rolled back, and made again in a
    worker thread, which waits for the lock; the next write is inline again."""
    import asyncio
    import sqlite3
    import threading

    path = tmp_path / "matters.sqlite3"
    db = Database(f"sqlite:///{path}", MIGRATIONS)
    db.migrate()
    loop_thread = threading.get_ident()
    ran_on_loop: list[bool] = []

    def insert(name: str):  # type: ignore[no-untyped-def]
        def write(conn: sa.Connection) -> str:
            ran_on_loop.append(threading.get_ident() == loop_thread)
            conn.execute(sa.insert(TASKS), task(name))
            return name
        return write

    names = Prepared(sa.select(TASKS.c.name).order_by(TASKS.c.name))
    # A service's database is in WAL mode, with its connections open, before any lock.
    assert await db.write(insert("tasks/l0")) == "tasks/l0"
    await asyncio.to_thread(lambda: db.engine.connect().close())
    ran_on_loop.clear()
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        pending = asyncio.ensure_future(db.write(insert("tasks/l1")))
        await asyncio.sleep(0.3)  # the loop runs meanwhile
        assert not pending.done()  # waiting for the lock in a thread, not failed
        assert ran_on_loop == [True, False]  # refused on the loop at once, retried in a thread
        other.execute("COMMIT")
        assert await pending == "tasks/l1"
        assert await db.write(insert("tasks/l2")) == "tasks/l2"
        assert ran_on_loop == [True, False, True]  # inline again
        assert [r.name for r in await db.read(lambda c: names.all(c, {}))] == [
            "tasks/l0", "tasks/l1", "tasks/l2"]  # each written once
    finally:
        other.close()
        db.dispose()
