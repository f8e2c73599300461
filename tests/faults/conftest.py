"""One embedded stack of real processes for the fault tests (SQLite files, Temporal's dev
server on a WAL file), started once; each test kills parts of it and brings them back."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.faults.procs import ProcStack


@pytest.fixture(scope="session")
async def procs(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ProcStack]:
    stack = ProcStack(tmp_path_factory.mktemp("faults"))
    try:
        await stack.start()
        yield stack
    finally:
        await stack.close()


@pytest.fixture
async def running(procs: ProcStack) -> ProcStack:
    """The stack, every part up (a failed test may have left one down)."""
    await procs.ensure_running()
    return procs
