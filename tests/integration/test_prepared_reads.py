"""db.Prepared gives the rows Connection.execute gives (same values, same types: aware
datetimes, booleans, NULLs), with datetime and boolean parameters, on SQLite and on
PostgreSQL; and Database.read answers on both."""

from __future__ import annotations

import contextlib
import datetime as dt
import pathlib
from collections.abc import Iterator
from typing import Any

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


# ---------------------------------------------------------------- the guard of the shortcut
# Prepared stays because it is worth more than 5% of figure 4 (docs/performance.md, the
# shortcuts figure), and it reads SQLAlchemy compiler internals to be so. These tests fail
# when SQLAlchemy changes underneath it: the internals it reads (their names and shapes),
# and, for every Prepared statement the services define, the rows against
# Connection.execute's on both databases.

def _service_statements() -> list[Prepared]:
    """Every Prepared statement the services' stores define at module level."""
    import importlib
    import pkgutil

    found: dict[int, Prepared] = {}
    for package in ("services.matters.store", "services.certificates.store",
                    "services.identity.store"):
        pkg = importlib.import_module(package)
        for info in pkgutil.iter_modules(pkg.__path__, package + "."):
            for value in vars(importlib.import_module(info.name)).values():
                if isinstance(value, Prepared):
                    found[id(value)] = value
    return list(found.values())


DIALECTS: dict[str, sa.Dialect] = {
    "sqlite": sa.create_engine("sqlite://").dialect,
    "postgresql": sa.create_engine("postgresql+psycopg://").dialect,  # no connection made
}


def test_the_compiler_internals_prepared_reads_are_there() -> None:
    """What govflow.db._Plan reads of a compiled statement, by name and shape, on both
    dialects, for every statement the services prepare: a rename or a change of meaning in
    SQLAlchemy fails here, not in a service."""
    from sqlalchemy.sql.elements import BindParameter

    from govflow.db import _Plan

    statements = _service_statements()
    assert len(statements) >= 10  # the stores' statements were found
    for name, dialect in DIALECTS.items():
        for prepared in statements:
            compiled = prepared.stmt.compile(dialect=dialect)
            assert isinstance(compiled.string, str) and compiled.string
            assert isinstance(compiled.binds, dict)
            assert compiled.positional is (name == "sqlite")  # qmark; psycopg is pyformat
            if compiled.positional:
                assert isinstance(compiled.positiontup, list)
                assert set(compiled.positiontup) <= set(compiled.binds)
            for bind in compiled.binds.values():
                assert isinstance(bind, BindParameter)
                assert bind.callable is None or callable(bind.callable)
                assert isinstance(bind.expanding, bool) and isinstance(bind.required, bool)
                process = bind.type.dialect_impl(dialect).bind_processor(dialect)
                assert process is None or callable(process)
            for column in prepared.stmt.selected_columns:
                process = column.type.dialect_impl(dialect).result_processor(dialect, None)
                assert process is None or callable(process)
            plan = _Plan(prepared.stmt, dialect)
            # Every one takes the fast path (no per-call values, no IN lists), and its
            # parameters are what construct_params makes of them, in the DBAPI's order.
            assert plan.fast is not None, compiled.string
            given = {n: _sample(b.type) for n, b in compiled.binds.items() if b.required}
            want = compiled.construct_params(dict(given))
            for n, process in plan.binds.items():
                if process is not None and want.get(n) is not None:
                    want[n] = process(want[n])
            got = plan.parameters(given)
            if compiled.positional:
                assert got == tuple(want[n] for n in compiled.positiontup or ()), compiled.string
            else:
                # By name: what construct_params gives, and maybe more (compiled.binds may
                # also hold an anonymous bind by its unrendered name, not in the SQL), which
                # the driver ignores.
                assert {n: got[n] for n in want} == want, compiled.string
                assert not any(f"%({n})s" in compiled.string for n in set(got) - set(want))


def _sample(type_: sa.types.TypeEngine[Any]) -> object:
    """A value of a bind's type, for running a statement with every parameter given."""
    if isinstance(type_, sa.types.TypeDecorator):  # sqlmodel's AutoString, ours
        type_ = type_.impl_instance
    for kind, value in ((sa.DateTime, dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)),
                        (sa.Boolean, True), (sa.Integer, 1), (sa.String, "x")):
        if isinstance(type_, kind):
            return value
    raise AssertionError(f"no sample value for {type_!r}")


@pytest.fixture(params=BACKENDS)
def both(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[list[Database]]:
    """The matters and certificates databases, migrated, on one backend."""
    from services.certificates.server import MIGRATIONS as CERTIFICATES

    migrations = {"matters": MIGRATIONS, "certificates": CERTIFICATES}
    with contextlib.ExitStack() as stack:
        if request.param == "postgres":
            urls = stack.enter_context(postgres_databases(tuple(migrations)))
        else:
            urls = {n: f"sqlite:///{tmp_path / n}.sqlite3" for n in migrations}
        dbs = [Database(urls[n], m) for n, m in migrations.items()]
        for db in dbs:
            db.migrate()
            stack.callback(db.dispose)
        yield dbs


def test_every_service_statement_gives_what_connection_execute_gives(
        both: list[Database]) -> None:
    """Each statement the services prepare, with every parameter given, run through
    Prepared and through Connection.execute on its service's database: the same rows."""
    now = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)
    matters = both[0]
    with matters.engine.begin() as conn:  # a few rows for the task statements to find
        conn.execute(sa.insert(TASKS), [{**task(f"tasks/{i}"), "agency": "x", "status": "OPEN",
                                         "due_time": now, "application_id": "x"}
                                        for i in range(3)])
    ran = 0
    for prepared in _service_statements():
        table_names = {t.name for t in sa.sql.util.find_tables(prepared.stmt, include_joins=True)
                       if isinstance(t, sa.Table)}
        for db in both:
            if not table_names <= set(sa.inspect(db.engine).get_table_names()):
                continue
            compiled = prepared.stmt.compile(dialect=db.engine.dialect)
            params = {n: _sample(b.type) for n, b in compiled.binds.items() if b.required}
            with db.engine.connect() as conn:
                want = [tuple(r) for r in conn.execute(prepared.stmt, params)]
                assert [tuple(r) for r in prepared.all(conn, params)] == want
            ran += 1
    assert ran == len(_service_statements())  # each ran on its own database


def test_prepared_without_the_shortcut_gives_the_same_rows(db: Database) -> None:
    """The benchmark's switch (Settings.bench_shortcuts_off="prepared") runs the same
    statements through Connection.execute: the same rows, and all_built builds the same."""
    from govflow import db as kit

    now = dt.datetime.now(dt.UTC)
    with db.engine.begin() as conn:
        conn.execute(sa.insert(TASKS), [task(f"tasks/s{i}") | {"due_time": now}
                                        for i in range(3)])
    stmt = sa.select(TASKS.c.name, TASKS.c.due_time, TASKS.c.overdue).order_by(TASKS.c.name)
    prepared = Prepared(stmt)
    with db.engine.connect() as conn:
        fast = prepared.all(conn, {})
        built = prepared.all_built(conn, {}, lambda r: (r.name, r.due_time, r.overdue))
        kit.use_prepared(False)
        try:
            plain = prepared.all(conn, {})
            plain_built = Prepared(stmt).all_built(conn, {}, lambda r: (r.name, r.due_time,
                                                                        r.overdue))
        finally:
            kit.use_prepared(True)
    assert [tuple(r) for r in plain] == [tuple(r) for r in fast] and len(fast) == 3
    assert plain_built == built
