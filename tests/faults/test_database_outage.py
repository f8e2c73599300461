"""Fault 4: a service's database briefly unavailable — PostgreSQL refusing and dropping
connections, SQLite locked by another writer past the busy timeout — with applications in
flight. The calls that fail are retried by the activities; when the database is back,
every application completes, once."""

from __future__ import annotations

import asyncio
import pathlib
import sqlite3
import threading

import psycopg
from temporalio.testing import WorkflowEnvironment

from tests.faults.procs import Figures, ProcStack
from tests.faults.workload import (
    check_exactly_once,
    new_seniors,
    submit_permits,
    submit_seniors,
    wait_completed,
    work_permit,
)
from tests.stack import PG_ADMIN, Stack, postgres_databases, running_stack

LOCKED_SECONDS = 12.0  # past the services' SQLite busy timeout (10 s): calls fail, then retry


def hold_write_locks(paths: list[pathlib.Path], seconds: float, locked: threading.Event) -> None:
    """Another process's writer: an exclusive transaction on each file for ``seconds``."""
    conns = []
    try:
        for path in paths:
            conn = sqlite3.connect(path, isolation_level=None, timeout=30)
            conn.execute("BEGIN EXCLUSIVE")
            conns.append(conn)
        locked.set()
        threading.Event().wait(seconds)
    finally:
        for conn in conns:
            conn.execute("ROLLBACK")
            conn.close()


async def _run(stack: Stack, outage, *, seniors_n: int, permits_n: int, fault: str) -> Figures:  # type: ignore[no-untyped-def]
    figures = Figures(fault)
    seniors = await submit_seniors(stack, await new_seniors(stack, seniors_n))
    permits = await submit_permits(stack, permits_n)
    officers = [asyncio.create_task(work_permit(stack, p, timeout=600)) for p in permits]
    await asyncio.sleep(0.5)  # in flight
    await outage()
    figures.injected += 1
    done = await wait_completed(stack, seniors + permits, timeout=300)
    await asyncio.gather(*officers)
    figures.applications, figures.completed = len(seniors) + len(permits), len(done)
    figures.duplicates = await check_exactly_once(stack, done, seniors=seniors, permits=permits)
    print(figures.report())
    return figures


async def test_sqlite_locked_by_another_writer(running: ProcStack) -> None:
    stack = running.stack
    assert stack is not None
    files = [running.settings.data_dir / f"{s}.sqlite3" for s in ("certificates", "matters")]

    async def outage() -> None:
        locked = threading.Event()
        holder = asyncio.create_task(asyncio.to_thread(hold_write_locks, files, LOCKED_SECONDS,
                                                       locked))
        await asyncio.to_thread(locked.wait, 30)
        await holder

    figures = await _run(stack, outage, seniors_n=10, permits_n=2,
                         fault="SQLite files of certificates and matters write-locked 12 s")
    assert figures.completed == figures.applications == 12 and figures.duplicates == 0


async def test_postgres_database_unavailable(temporal_env: WorkflowEnvironment,
                                            tmp_path: pathlib.Path) -> None:
    with postgres_databases() as urls:
        async with running_stack(tmp_path, temporal_env.client, database_urls=urls) as stack:
            dbs = [urls[s].rsplit("/", 1)[1] for s in ("certificates", "matters")]

            async def outage() -> None:
                def cut(allow: bool) -> None:
                    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                        for db in dbs:
                            conn.execute(f'ALTER DATABASE "{db}" ALLOW_CONNECTIONS '
                                         f'{"true" if allow else "false"}')
                            if not allow:
                                conn.execute("SELECT pg_terminate_backend(pid) FROM "
                                             "pg_stat_activity WHERE datname = %s", (db,))

                await asyncio.to_thread(cut, False)
                await asyncio.sleep(5)
                await asyncio.to_thread(cut, True)

            figures = await _run(stack, outage, seniors_n=10, permits_n=2,
                                 fault="PostgreSQL databases of certificates and matters refusing "
                                       "connections 5 s")
            assert figures.completed == figures.applications == 12 and figures.duplicates == 0
