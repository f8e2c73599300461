"""Shared fixtures: one Temporal dev server per session; stacks per database backend."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.stack import Stack, postgres_databases, running_stack, start_temporal


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await start_temporal()
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
async def stack(request: pytest.FixtureRequest, temporal_env: WorkflowEnvironment,
                tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """The whole stack, seeded, once per backend for the session (tests use fresh ids)."""
    tmp: pathlib.Path = tmp_path_factory.mktemp(f"stack-{request.param}")
    if request.param == "postgres":
        with postgres_databases() as urls:
            async with running_stack(tmp, temporal_env.client, database_urls=urls) as s:
                yield s
    else:
        async with running_stack(tmp, temporal_env.client) as s:
            yield s
