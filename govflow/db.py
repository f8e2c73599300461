"""Database kit: engines (SQLite by default, PostgreSQL by URL), Alembic migrations run
from code, a liveness probe, a way to run blocking ORM work off the event loop, and a
cheaper way to run the short reads that answer most calls."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import pathlib
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, create_engine

T = TypeVar("T")


def normalise_url(url: str) -> str:
    """Accepts ``postgresql://`` and ``postgres://`` and picks the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
        # No pre-ping: a SQLite connection is a file handle in this process, with no server
        # to restart or idle timeout to drop it, so the ``SELECT 1`` on every checkout found
        # nothing to repair; it was ~3% of the matters and certificates services' samples
        # during figure 1 (py-spy). PostgreSQL keeps it (below).
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}
        )

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets readers run beside the one writer; busy_timeout waits out a lock
            # instead of failing at once; foreign keys are off by default in SQLite.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


# Any fixed number: replicas of one service migrating at once take turns on this lock.
_MIGRATION_LOCK = 0x60F10


def migrate(url: str, migrations_dir: pathlib.Path) -> None:
    """Upgrades the database at ``url`` to the newest revision in ``migrations_dir``.

    On PostgreSQL the upgrade holds a session advisory lock, so replicas starting together
    on an empty database do not race each other into duplicate-object errors; SQLite's
    own write lock serialises them there."""
    url = normalise_url(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if not url.startswith("postgresql"):
        command.upgrade(cfg, "head")
        return
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK})
            conn.commit()
            try:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                conn.commit()
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK})
                conn.commit()
    finally:
        engine.dispose()


def run_env(target_metadata: sa.MetaData) -> None:
    """The body of each service's Alembic ``env.py``."""
    from alembic import context

    url = context.config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url must be set"
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True,
                          render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    given = context.config.attributes.get("connection")
    if given is not None:  # migrate() holds the lock on this connection
        context.configure(connection=given, target_metadata=target_metadata,
                          render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata,
                          render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


def ping(engine: Engine) -> bool:
    """True when the database answers a trivial query."""
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return True
    except Exception:
        return False


def dialect_insert(s: Session | Connection, table: sa.Table) -> Any:
    """An INSERT into ``table`` in the session's (or connection's) dialect, so it takes
    ``ON CONFLICT`` (``on_conflict_do_nothing`` / ``on_conflict_do_update``): SQLite and
    PostgreSQL spell it alike, but SQLAlchemy keeps it per dialect."""
    dialect = s.dialect if isinstance(s, Connection) else s.get_bind().dialect
    make = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
    return make(table)


# Whether Prepared runs its statements on the DBAPI cursor (the default) or through
# ``Connection.execute``: off only in a benchmark that measures what the shortcut is worth
# (Settings.bench_shortcuts_off, benchmarks/shortcuts.py).
_prepared_on = True


def use_prepared(on: bool) -> None:
    global _prepared_on
    _prepared_on = on


class Prepared:
    """A Core ``select`` compiled once per dialect and run straight on the DBAPI cursor,
    its parameters and values converted by the same SQLAlchemy type processors
    ``Connection.execute`` applies, so its rows hold the same Python values (as named
    tuples: ``row.column``). For the few statements that answer most calls: on a lookup by
    key, SQLAlchemy's per-execution bookkeeping costs several times the database's own
    work. No expanding (``IN``-list) parameters; no ORM events.

    It reads SQLAlchemy's compiler internals (``compiled.binds``, ``positiontup``, a bind's
    ``callable``/``expanding``/``required``, the types' bind and result processors) and
    the raw DBAPI cursor, so it stays only while it earns it (docs/performance.md, figure
    11: 10-15% of the serving process's CPU per call on figure 4's read paths) and only
    with its guard, tests/integration/test_prepared_reads.py, which fails when those
    internals change or its rows differ from ``Connection.execute``'s."""

    def __init__(self, stmt: sa.Select[Any]) -> None:
        self.stmt = stmt
        self._plans: dict[str, _Plan] = {}
        self._built: dict[str, dict[tuple[Any, ...], Any]] = {}

    def all(self, conn: Connection, params: Mapping[str, Any]) -> list[Any]:
        if not _prepared_on:
            return list(conn.execute(self.stmt, dict(params)))
        plan, raw = self._fetch(conn, params)
        return [plan.row(values) for values in raw]

    def first(self, conn: Connection, params: Mapping[str, Any]) -> Any | None:
        rows = self.all(conn, params)
        return rows[0] if rows else None

    def all_built(self, conn: Connection, params: Mapping[str, Any],
                  build: Callable[[Any], T], *, size: int = 8192) -> list[T]:
        """``all()``, each row passed through ``build``; what ``build`` made of the same raw
        values before is reused, so a page read again costs neither the type conversions
        nor the build. ``build`` must depend on the row alone, and its result must not be
        changed by the caller (copy it into the response). Bounded: cleared when full."""
        memo = self._built.setdefault(conn.dialect.name, {})
        if _prepared_on:
            plan, raw = self._fetch(conn, params)
            rows: Any = ((values, plan.row) for values in raw)
        else:  # the same memo, keyed by the values Connection.execute converted
            rows = ((row, None) for row in conn.execute(self.stmt, dict(params)))
        out = []
        for values, convert in rows:
            key = tuple(values)
            made = memo.get(key)
            if made is None:
                if len(memo) >= size:
                    memo.clear()
                made = memo[key] = build(values if convert is None else convert(values))
            out.append(made)
        return out

    def _fetch(self, conn: Connection, params: Mapping[str, Any]) -> tuple[_Plan, list[Any]]:
        """The plan for the connection's dialect and the raw rows of the statement."""
        plan = self._plans.get(conn.dialect.name) or self._prepare(conn)
        # mypy, next line: an open connection has its DBAPI connection
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(plan.sql, plan.parameters(params))
            return plan, list(cursor.fetchall())
        finally:
            cursor.close()

    def _prepare(self, conn: Connection) -> _Plan:
        plan = self._plans[conn.dialect.name] = _Plan(self.stmt, conn.dialect)
        return plan


_REQUIRED = object()  # a parameter the caller must give
_NOT_INLINE = object()  # Database._try_inline did not run the function


class _Plan:
    def __init__(self, stmt: sa.Select[Any], dialect: sa.Dialect) -> None:
        compiled = stmt.compile(dialect=dialect)
        self.sql = compiled.string
        self.compiled = compiled
        self.binds = {
            name: bind.type.dialect_impl(dialect).bind_processor(dialect)
            for name, bind in compiled.binds.items()
        }
        self.order = compiled.positiontup if compiled.positional else None
        # Each parameter in the order the DBAPI takes it: its name, the value the statement
        # itself gives it (limits, literals) or _REQUIRED, and its bind processor. What
        # ``compiled.construct_params`` works out on every call, worked out once.
        self.fast: list[tuple[str, Any, Any]] | None = []
        for name in self.order if self.order is not None else compiled.binds:
            bind = compiled.binds[name]
            if bind.callable is not None or bind.expanding:
                self.fast = None  # values made per call, or IN lists: SQLAlchemy's way
                break
            self.fast.append((name, _REQUIRED if bind.required else bind.value,
                              self.binds.get(name)))
        columns = list(stmt.selected_columns)
        self.processors = [
            c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns
        ]
        self.converts = any(self.processors)
        # A named tuple class made at run time: typed as Any (its fields are the columns).
        # mypy, next line: field names known only at run time
        self.tuple_type: Any = collections.namedtuple("Row", [c.key for c in columns])  # type: ignore[misc]

    def parameters(self, given: Mapping[str, Any]) -> Any:
        if self.fast is not None:
            out = []
            for name, default, process in self.fast:
                value = given[name] if default is _REQUIRED or name in given else default
                out.append(value if process is None or value is None else process(value))
            return tuple(out) if self.order is not None else dict(zip(
                (name for name, _, _ in self.fast), out, strict=True))
        values = self.compiled.construct_params(dict(given))
        for name, process in self.binds.items():
            if process is not None and values.get(name) is not None:
                values[name] = process(values[name])
        if self.order is None:
            return values
        return tuple(values[name] for name in self.order)

    def row(self, values: Sequence[Any]) -> Any:
        if self.converts:
            values = [v if p is None or v is None else p(v)
                      for p, v in zip(self.processors, values, strict=True)]
        return self.tuple_type._make(values)


def _discard(conn: Connection | None) -> None:
    """Closes a connection for good: invalidated, it does not go back to the pool (with
    busy_timeout 0 on it)."""
    if conn is not None:
        with contextlib.suppress(Exception):
            conn.invalidate()
            conn.close()


class Database:
    """One service's database: an engine, a helper to run ORM work in a thread, and one to
    run short Core reads (``read``)."""

    def __init__(self, url: str, migrations_dir: pathlib.Path | None = None) -> None:
        self.url = normalise_url(url)
        self.engine = make_engine(self.url)
        # Its pool in /metrics, under the database's name (one per service: bounded).
        from govflow import metrics

        metrics.track_engine(pathlib.Path(sa.engine.make_url(self.url).database or "db").stem,
                             self.engine)
        self.migrations_dir = migrations_dir
        self.sqlite = self.url.startswith("sqlite")
        # SQLite only: the connection ``read`` uses on the event loop's thread, and that
        # thread (a connection is used by one thread at a time).
        self._inline: Connection | None = None
        self._inline_thread = 0

    def migrate(self) -> None:
        if self.migrations_dir is not None:
            migrate(self.url, self.migrations_dir)

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    async def run(self, fn: Callable[[Session], T]) -> T:
        """Runs ``fn(session)`` in a worker thread; commits on success, rolls back on error."""

        def work() -> T:
            with self.session() as session:
                try:
                    result = fn(session)
                    session.commit()
                    return result
                except BaseException:
                    session.rollback()
                    raise

        return await asyncio.to_thread(work)

    async def write(self, fn: Callable[[Connection], T]) -> T:
        """Runs ``fn(connection)`` — SQLAlchemy Core statements, no ORM session — in one
        transaction: committed on success, rolled back on error. For the short writes the
        worker makes on every application (timeline events, grants, reads under a grant,
        releases), where a Session's unit of work and the ORM's execution path cost
        several times the statements' own work. ``fn`` may run twice (see below), so it
        must do nothing but its statements.

        On SQLite it runs inline on the event loop, on ``read``'s connection, which never
        waits for a lock (busy_timeout 0): a write of a few rows in WAL mode takes tens of
        microseconds, less than the hop to a thread and back. If another connection holds
        the write lock (a session's write in a worker thread, another process), SQLite
        refuses at once; the transaction is rolled back and ``fn`` runs again in a worker
        thread with the usual busy timeout, so the loop never waits on a lock. On
        PostgreSQL it runs in a worker thread."""
        done = await self._try_inline(self._write_inline, fn)
        if done is not _NOT_INLINE:
            return cast(T, done)

        def work() -> T:
            with self.engine.begin() as conn:
                return fn(conn)

        return await asyncio.to_thread(work)

    @staticmethod
    def _write_inline(conn: Connection, fn: Callable[[Connection], T]) -> T:
        try:
            result = fn(conn)
            conn.commit()
            return result
        except BaseException:
            conn.rollback()
            raise

    async def read(self, fn: Callable[[Connection], T]) -> T:
        """Runs the short, read-only ``fn(connection)`` (SQLAlchemy Core, no ORM session)
        and returns its result. ``fn`` must not write and must read a bounded number of rows.

        On SQLite it runs inline on the event loop, on a connection kept for the loop: a
        WAL read of a few indexed rows takes tens of microseconds, far less than the hop
        to a worker thread and back (and the GIL traffic that hop causes under load). That
        connection is opened in a worker thread and never waits for a lock (busy_timeout 0,
        and WAL readers do not wait for writers anyway): a read that fails for a lock (or a
        broken connection) is retried in a worker thread on the pool, with the usual busy
        timeout, so the loop is never held up by a lock. On PostgreSQL (a network round
        trip) it runs in a worker thread."""
        done = await self._try_inline(self._read_inline, fn)
        if done is not _NOT_INLINE:
            return cast(T, done)
        return await asyncio.to_thread(self._read_pooled, fn)

    async def _try_inline(self, run: Callable[[Connection, Callable[[Connection], T]], T],
                          fn: Callable[[Connection], T]) -> T | object:
        """``run(connection, fn)`` on the loop's own connection, on SQLite and on the loop's
        thread; otherwise, or when it met a lock (or, opening the connection, its pragmas
        did) or a broken connection, _NOT_INLINE: the caller takes the slow path."""
        if not (self.sqlite and threading.get_ident() == self._loop_thread()):
            return _NOT_INLINE
        conn = None
        try:
            conn = self._inline or await self._open_inline()
            return run(conn, fn)
        except sa.exc.OperationalError:
            if conn is not None:
                self._drop_inline(conn)
            return _NOT_INLINE

    def _loop_thread(self) -> int:
        if not self._inline_thread:
            self._inline_thread = threading.get_ident()
        return self._inline_thread

    async def _open_inline(self) -> Connection:
        # Opening one runs the connect pragmas, which may wait for a lock: in a thread.
        conn = await asyncio.to_thread(self._connect_inline)
        if self._inline is None:
            self._inline = conn
            return conn
        _discard(conn)  # another read on this loop opened one meanwhile
        return self._inline

    def _connect_inline(self) -> Connection:
        conn = self.engine.connect()
        conn.exec_driver_sql("PRAGMA busy_timeout=0")
        conn.rollback()
        return conn

    @staticmethod
    def _read_inline(conn: Connection, fn: Callable[[Connection], T]) -> T:
        try:
            return fn(conn)
        finally:
            # Ends SQLAlchemy's transaction, if fn began one; pysqlite begins none for a
            # SELECT, so each statement read the newest committed data and no snapshot is
            # held after.
            conn.rollback()

    def _drop_inline(self, conn: Connection | None = None) -> None:
        if conn is None or conn is self._inline:
            conn, self._inline = self._inline, None
        _discard(conn)

    def _read_pooled(self, fn: Callable[[Connection], T]) -> T:
        with self.engine.connect() as conn:
            try:
                return fn(conn)
            finally:
                conn.rollback()

    async def ping(self) -> bool:
        return await asyncio.to_thread(ping, self.engine)

    def dispose(self) -> None:
        self._drop_inline()
        self.engine.dispose()
