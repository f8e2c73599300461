"""The worker's health endpoint (grpc.health.v1): SERVING while it runs and Temporal
answers, NOT_SERVING once it stops polling; steady while the Temporal frontend recycles
its connections; reflection for grpcurl."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import pathlib
import signal
import socket
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from temporalio.testing import WorkflowEnvironment

from govflow.settings import Settings
from tests.stack import temporal_binary
from workflows.worker import WorkerStack, start_health

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
ROOT = pathlib.Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
    port = free_port()
    settings = dataclasses.replace(settings, worker_health_port=port)
    started = await start_health(settings, temporal_env.client, stack.worker)
    assert started is not None
    server, reporter, bound = started
    try:
        assert bound == port
        assert await status(port) != SERVING  # not polling yet
        async with stack.worker:
            assert await eventually(port, SERVING) == SERVING
        assert await eventually(port, NOT_SERVING) == NOT_SERVING
        assert reporter.reason == "the worker is not running (it polls no task queue)"
    finally:
        await reporter.stop()
        await server.stop(0)
        await stack.close()


async def test_worker_health_offers_reflection(temporal_env: WorkflowEnvironment,
                                               tmp_path: pathlib.Path) -> None:
    """What `grpcurl -plaintext HOST:PORT grpc.health.v1.Health/Check` asks first: the
    services, and the file that describes Health."""
    settings = Settings(data_dir=tmp_path, worker_client_secret="w",
                        worker_health_port=free_port())
    stack = WorkerStack(settings, temporal_env.client, task_queue="health-reflection")
    started = await start_health(settings, temporal_env.client, stack.worker)
    assert started is not None
    server, reporter, port = started
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            call = reflection_pb2_grpc.ServerReflectionStub(ch).ServerReflectionInfo(iter([
                reflection_pb2.ServerReflectionRequest(list_services=""),
                reflection_pb2.ServerReflectionRequest(
                    file_containing_symbol="grpc.health.v1.Health")]), timeout=10)
            answers = [answer async for answer in call]
        listed = {s.name for s in answers[0].list_services_response.service}
        assert listed == {"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"}
        assert answers[1].file_descriptor_response.file_descriptor_proto
    finally:
        await reporter.stop()
        await server.stop(0)
        await stack.close()


async def test_worker_health_rides_out_temporal_connection_recycling(
        tmp_path: pathlib.Path) -> None:
    """The Temporal frontend closes each client connection after
    frontend.keepAliveMaxConnectionAge (5 min by default) plus a grace for the calls on it
    (70 s): a health check sent as it closes fails with CANCELLED. That turned the worker's
    health NOT_SERVING for one probe interval every 5-6 minutes (issue 22, item 10). Here
    the frontend recycles every 1 + 1 s and the worker probes every 20 ms; its health must
    stay SERVING throughout, and its stop must be logged with the reason."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(), dev_server_log_level="error",
        dev_server_extra_args=[
            "--dynamic-config-value", 'frontend.keepAliveMaxConnectionAge="1s"',
            "--dynamic-config-value", 'frontend.keepAliveMaxConnectionAgeGrace="1s"'])
    port = free_port()
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "workflows.worker", cwd=ROOT, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT), "GOVFLOW_DATA_DIR": str(tmp_path),
             "GOVFLOW_TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
             "GOVFLOW_WORKER_HEALTH_PORT": str(port), "GOVFLOW_HEALTH_INTERVAL_SECONDS": "0.02",
             "GOVFLOW_LOG_JSON": "true", "GOVFLOW_LOG_LEVEL": "debug"})
    lines: list[dict[str, object]] = []
    retried = asyncio.Event()

    async def read_log() -> None:
        assert worker.stderr is not None
        async for raw in worker.stderr:
            with contextlib.suppress(ValueError):
                lines.append(json.loads(raw))
                if lines[-1].get("event") == "worker.health_probe_retried" and sum(
                        x.get("event") == "worker.health_probe_retried" for x in lines) >= 2:
                    retried.set()

    statuses: list[int] = []
    first_serving = asyncio.Event()

    async def watch() -> None:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            stub = health_pb2_grpc.HealthStub(ch)
            while True:  # until the worker listens
                try:
                    async for answer in stub.Watch(
                            health_pb2.HealthCheckRequest(service="govflow.worker")):
                        statuses.append(answer.status)
                        if answer.status == SERVING:
                            first_serving.set()
                    return
                except grpc.aio.AioRpcError:
                    if first_serving.is_set():
                        return
                    await asyncio.sleep(0.1)

    reader = asyncio.create_task(read_log())
    watcher = asyncio.create_task(watch())
    try:
        await asyncio.wait_for(first_serving.wait(), timeout=60)
        # Two probes have met a closing connection (or 30 s have passed).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(retried.wait(), timeout=30)
        seen = statuses[statuses.index(SERVING):]
        assert seen == [SERVING] * len(seen), seen
        assert retried.is_set(), "the frontend never closed a connection under a probe"
        changes = [x["status"] for x in lines if x.get("event") == "health.changed"]
        assert changes[changes.index("SERVING"):] == ["SERVING"], changes
    finally:
        if worker.returncode is None:
            worker.send_signal(signal.SIGTERM)
        await asyncio.wait_for(worker.wait(), timeout=30)
        await asyncio.wait_for(reader, timeout=10)
        watcher.cancel()
        await env.shutdown()
    # Every change is logged once, with its reason: not polling yet at the start, serving,
    # and stopping.
    changes = [x for x in lines if x.get("event") == "health.changed"]
    assert [(x["status"], x.get("reason")) for x in changes] == [
        ("NOT_SERVING", "the worker is not running (it polls no task queue)"),
        ("SERVING", None), ("NOT_SERVING", "shutting down")], changes
