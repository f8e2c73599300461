"""The server kit on a real service: health follows the database, reflection, request
ids, error details, and a clean stop on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import pathlib
import signal
import socket
import subprocess
import sys
import uuid

import grpc
import psycopg
import pytest
from grpc_health.v1 import health as grpc_health
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from govflow.identity.v1 import identity_pb2 as ipb
from govflow.identity.v1 import identity_pb2_grpc
from govflow.settings import Settings
from govflow_cli.cli import HEALTH_NAMES, wait_healthy
from services.identity.server import create_server
from tests.stack import PG_ADMIN, postgres_databases

ROOT = pathlib.Path(__file__).resolve().parents[2]


async def health(ch: grpc.aio.Channel) -> int:
    resp = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
    return resp.status  # type: ignore[no-any-return]


async def test_health_follows_the_database(tmp_path: pathlib.Path) -> None:
    with postgres_databases(("identity",)) as urls:
        db = urls["identity"].rsplit("/", 1)[1]
        settings = Settings(data_dir=tmp_path, identity_database_url=urls["identity"],
                            health_interval_seconds=0.2)
        server, port = await create_server(settings, port=0)
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
                assert await health(ch) == health_pb2.HealthCheckResponse.SERVING
                with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                    conn.execute(f'ALTER DATABASE "{db}" ALLOW_CONNECTIONS false')
                    conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 "WHERE datname = %s", (db,))
                await wait_for_status(ch, health_pb2.HealthCheckResponse.NOT_SERVING)
                with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                    conn.execute(f'ALTER DATABASE "{db}" ALLOW_CONNECTIONS true')
                await wait_for_status(ch, health_pb2.HealthCheckResponse.SERVING)
        finally:
            await server.stop(0)


async def wait_for_status(ch: grpc.aio.Channel, want: int, timeout: float = 15) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (got := await health(ch)) != want:
        assert loop.time() < deadline, f"health stayed {got}, wanted {want}"
        await asyncio.sleep(0.1)


async def test_reflection_request_id_and_error_details(tmp_path: pathlib.Path) -> None:
    server, port = await create_server(Settings(data_dir=tmp_path), port=0)
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            refl = reflection_pb2_grpc.ServerReflectionStub(ch)

            async def ask():  # type: ignore[no-untyped-def]
                yield reflection_pb2.ServerReflectionRequest(list_services="")

            services = set()
            async for resp in refl.ServerReflectionInfo(ask()):
                services |= {s.name for s in resp.list_services_response.service}
            assert "govflow.identity.v1.IdentityService" in services
            assert "grpc.health.v1.Health" in services

            stub = identity_pb2_grpc.IdentityServiceStub(ch)
            call = stub.ListAgencies(ipb.ListAgenciesRequest(),
                                     metadata=(("x-request-id", "trace-123"),))
            await call
            assert ("x-request-id", "trace-123") in tuple(await call.trailing_metadata())
            call = stub.ListAgencies(ipb.ListAgenciesRequest())
            await call
            made = dict(await call.trailing_metadata())["x-request-id"]
            assert len(made) == 32

            # A refusal carries it too, beside the error details.
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.ListAgencies(ipb.ListAgenciesRequest(page_size=-1),
                                        metadata=(("x-request-id", "trace-456"),))
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            trailers = dict(err.value.trailing_metadata())
            assert trailers["x-request-id"] == "trace-456"
            assert "grpc-status-details-bin" in trailers
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.GetPerson(ipb.GetPersonRequest(name="persons/x"),
                                     metadata=(("authorization", "Bearer not-a-jwt"),))
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await server.stop(0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_sigterm_stops_the_service_cleanly(tmp_path: pathlib.Path) -> None:
    port = free_port()
    env = {**os.environ, "GOVFLOW_DATA_DIR": str(tmp_path), "GOVFLOW_IDENTITY_PORT": str(port),
           "GOVFLOW_LOG_JSON": "true", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "services.identity.server"], env=env,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        lines = []
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "identity.listening" in line:
                break
        assert any('"request_id"' not in x and '"service": "identity"' in x for x in lines)
        proc.send_signal(signal.SIGTERM)
        _, out = proc.communicate(timeout=60)
        assert proc.returncode == 0
        assert '"event": "server.stopped"' in out
    finally:
        if proc.poll() is None:
            proc.kill()


def test_log_lines_carry_the_request_id(tmp_path: pathlib.Path) -> None:
    port = free_port()
    env = {**os.environ, "GOVFLOW_DATA_DIR": str(tmp_path), "GOVFLOW_IDENTITY_PORT": str(port),
           "GOVFLOW_LOG_JSON": "true", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "services.identity.server"], env=env,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    rid = uuid.uuid4().hex
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "identity.listening" in line:
                break
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            identity_pb2_grpc.IdentityServiceStub(ch).ListAgencies(
                ipb.ListAgenciesRequest(), metadata=(("x-request-id", rid),), timeout=10)
        proc.send_signal(signal.SIGTERM)
        _, out = proc.communicate(timeout=60)
        logged = [x for x in out.splitlines() if rid in x]
        assert logged and '"rpc": "ListAgencies"' in logged[0] and '"event": "rpc.ok"' in logged[0]
    finally:
        if proc.poll() is None:
            proc.kill()


def test_health_names_are_the_ones_the_processes_report() -> None:
    from services.certificates.server import SERVICE_NAME as CERTIFICATES
    from services.identity.server import SERVICE_NAME as IDENTITY
    from services.matters.server import SERVICE_NAME as MATTERS
    from workflows.worker import WORKER_HEALTH_NAME

    assert HEALTH_NAMES == {"identity": IDENTITY, "certificates": CERTIFICATES,
                            "matters": MATTERS, "worker": WORKER_HEALTH_NAME}


async def test_waiting_for_a_service_tells_it_from_another_server_on_the_port(
        tmp_path: pathlib.Path) -> None:
    """The wait for a service names it: the service itself passes, from its first answer
    (its status is set before it serves), while another health-serving process on the
    port — as when the Temporal dev server took a port chosen for a service — fails at
    once, saying so, instead of passing for it."""
    settings = Settings(data_dir=tmp_path,
                        identity_database_url=f"sqlite:///{tmp_path / 'identity.db'}")
    server, port = await create_server(settings, port=0)
    await server.start()
    try:
        await asyncio.wait_for(wait_healthy(f"127.0.0.1:{port}", 10, HEALTH_NAMES["identity"]),
                               10)
    finally:
        await server.stop(0)

    other = grpc.aio.server()
    servicer = grpc_health.aio.HealthServicer()
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    await servicer.set("temporal.api.workflowservice.v1.WorkflowService",
                       health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, other)
    other_port = other.add_insecure_port("127.0.0.1:0")
    await other.start()
    try:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(RuntimeError, match="does not serve govflow.matters.v1.MattersService"):
            await wait_healthy(f"127.0.0.1:{other_port}", 30, HEALTH_NAMES["matters"])
        assert loop.time() - t0 < 10  # at once, not after the 30 s timeout
        # Unnamed, as before, any SERVING answer passes.
        await asyncio.wait_for(wait_healthy(f"127.0.0.1:{other_port}", 10), 10)
    finally:
        await other.stop(0)
