"""The worker's health endpoint (grpc.health.v1): SERVING while it runs and Temporal
answers, NOT_SERVING once it stops polling."""

from __future__ import annotations

import asyncio
import dataclasses
import pathlib

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from temporalio.testing import WorkflowEnvironment

from govflow.settings import Settings
from workflows.worker import WorkerStack, start_health

SERVING = health_pb2.HealthCheckResponse.SERVING


async def status(port: int) -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        resp = await health_pb2_grpc.HealthStub(ch).Check(
            health_pb2.HealthCheckRequest(service="govflow.worker"), timeout=5)
    return resp.status  # type: ignore[no-any-return]


async def eventually(port: int, want: int, timeout: float = 15) -> int:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        got = await status(port)
        if got == want or loop.time() > deadline:
            return got
        await asyncio.sleep(0.1)


async def test_worker_health_follows_the_worker(temporal_env: WorkflowEnvironment,
                                                tmp_path: pathlib.Path) -> None:
    settings = dataclasses.replace(
        Settings(data_dir=tmp_path, worker_client_secret="w", health_interval_seconds=0.2),
        worker_health_port=0)
    stack = WorkerStack(settings, temporal_env.client, task_queue="health-probe")
    # Port 0 turns the endpoint off ...
    assert await start_health(settings, temporal_env.client, stack.worker) is None
    # ... any other port serves it (here one the OS picks: the setting accepts a fixed one).
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = dataclasses.replace(settings, worker_health_port=port)
    started = await start_health(settings, temporal_env.client, stack.worker)
    assert started is not None
    server, reporter, bound = started
    try:
        assert bound == port
        assert await status(port) != SERVING  # not polling yet
        async with stack.worker:
            assert await eventually(port, SERVING) == SERVING
        assert await eventually(port, health_pb2.HealthCheckResponse.NOT_SERVING) == \
            health_pb2.HealthCheckResponse.NOT_SERVING
    finally:
        await reporter.stop()
        await server.stop(0)
        await stack.close()
