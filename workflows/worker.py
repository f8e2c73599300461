"""The worker process: runs ApplicationWorkflow and its activities.

Activities reach the three services over gRPC only, as Govflow's worker service identity
(client credentials from settings; scopes limited to what the activities need).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib.util
import pathlib
import signal
import sys
from collections.abc import Sequence
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from govflow import faults, log, temporal_data, tls, tracing
from govflow.certificates.v1 import certificates_pb2_grpc
from govflow.grpckit import channel, start_metrics
from govflow.health import HealthReporter, Unhealthy
from govflow.identity.v1 import identity_pb2_grpc
from govflow.matters.v1 import matters_pb2_grpc
from govflow.service_client import ServiceToken
from govflow.settings import Settings
from workflows import request_ids
from workflows.activities import ApplicationActivities
from workflows.application import ApplicationWorkflow
from workflows.fault_injection import HoldActivities
from workflows.follow_up import FollowUpWorkflow

WORKFLOWS: Sequence[type] = (ApplicationWorkflow, FollowUpWorkflow)


# The name the worker reports its health under (govflow_cli.cli.HEALTH_NAMES).
WORKER_HEALTH_NAME = "govflow.worker"


# Our modules the sandbox shares instead of importing them afresh for every workflow: the
# plain data and rules, and the application workflow's parts (everything but the module
# that defines the workflow class). They keep no state between workflows and call nothing
# the sandbox would refuse; tests/unit/test_workflow_sandbox.py holds them to that, since
# the sandbox's own guards do not reach into a module it passes through.
PASSED_THROUGH = (
    "workflows.models", "workflows.rules", "workflows.activity_policy",
    "workflows.officer_checks", "workflows.outcomes", "workflows.search_keys",
    "workflows.timeline_wording",
    "workflows.clocks", "workflows.timeline", "workflows.materials", "workflows.steps",
    "workflows.life_event", "workflows.officer_updates",
)


def sandbox_runner() -> WorkflowRunner:
    """The sandbox every workflow runs in, PASSED_THROUGH shared."""
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSED_THROUGH))


def keep_bytecode(cache_dir: pathlib.Path) -> None:
    """The sandbox imports the workflow module afresh for every workflow it starts. With no
    bytecode for it (PYTHONDONTWRITEBYTECODE=1, as on the build machines and in many
    containers) every start compiles workflows/application.py from source: a fifth of the
    worker's CPU in `govflow bench`. Where no compiled file is at hand, this process keeps
    its bytecode under ``cache_dir`` (its own folder, mode 700; the sources stay clean)."""
    from workflows import application

    if not sys.dont_write_bytecode or sys.pycache_prefix is not None:
        return
    if pathlib.Path(importlib.util.cache_from_source(application.__file__)).exists():
        return  # compiled ahead (the container image runs compileall)
    try:
        cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return
    sys.pycache_prefix = str(cache_dir.resolve())
    sys.dont_write_bytecode = False


def traced_unless_client_is(client: Client) -> list[Any]:
    """The tracing interceptor for the worker while tracing is on, unless ``client``
    already has it (a worker inherits its client's worker interceptors)."""
    wanted = tracing.temporal_interceptors()
    have = {type(i) for i in client.config()["interceptors"]}
    return [i for i in wanted if type(i) not in have]


class WorkerStack:
    """Channels, the service token and the Temporal worker of one worker process."""

    def __init__(self, settings: Settings, client: Client, *, task_queue: str | None = None,
                 identity: str | None = None) -> None:
        self.settings = settings
        keep_bytecode(settings.data_dir / "pycache")
        credentials = tls.channel_credentials(settings)
        self.channels = [channel(a, credentials) for a in (
            settings.identity_addr, settings.certificates_addr, settings.matters_addr)]
        identity_stub = identity_pb2_grpc.IdentityServiceStub(self.channels[0])
        token = ServiceToken(identity_stub, settings.worker_client_id, settings.worker_client_secret)
        self.activities = ApplicationActivities(
            identity_stub, certificates_pb2_grpc.CertificatesServiceStub(self.channels[1]),
            matters_pb2_grpc.MattersServiceStub(self.channels[2]), token)
        client = temporal_data.with_converter(client)
        self.worker = Worker(
            client,
            task_queue=task_queue or settings.temporal_task_queue,
            workflows=list(WORKFLOWS),
            activities=self.activities.all(),
            workflow_runner=sandbox_runner(),
            max_concurrent_activities=settings.worker_max_concurrent_activities,
            max_cached_workflows=settings.worker_max_cached_workflows,
            graceful_shutdown_timeout=dt.timedelta(seconds=settings.worker_graceful_shutdown_seconds),
            # None keeps the SDK's default (pid@host); tests name workers to tell them apart.
            identity=identity,
            # Test-only fault hook (tests/faults/): empty settings add nothing.
            # The caller's request id into every activity's log lines (request_ids.py).
            interceptors=[request_ids.WorkerInterceptor(), *traced_unless_client_is(client), *(
                [HoldActivities(held)] if (held := faults.names(settings.fault_hold_activity))
                else [])],
        )

    async def close(self) -> None:
        for ch in self.channels:
            await ch.close()


async def _main() -> None:
    settings = Settings.from_env()
    log.configure("worker", json=settings.log_json, level=settings.log_level)
    # /metrics, and the SDK's runtime metrics for the client connected below.
    start_metrics("worker", settings)
    tracing.configure("worker", settings.otlp_endpoint)
    logger = log.get_logger()
    client = await temporal_data.connect(settings.temporal_address, settings.temporal_namespace,
                                         tls=tls.temporal_tls(settings))
    stack = WorkerStack(settings, client)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    health = await start_health(settings, client, stack.worker)
    logger.info("worker.started", task_queue=settings.temporal_task_queue,
                health_port=health[2] if health else None)
    try:
        async with stack.worker:
            await stop.wait()
            logger.info("worker.stopping")
            if health:
                await health[1].stop()  # NOT_SERVING before the drain
    finally:
        if health:
            await health[0].stop(1)
        await stack.close()
    logger.info("worker.stopped")


async def start_health(settings: Settings, client: Client, worker: Worker
                       ) -> tuple[grpc.aio.Server, HealthReporter, int] | None:
    """The standard health service on ``worker_health_port``: SERVING while the worker runs
    and the Temporal frontend answers. A busy port is logged, not fatal: the worker's work
    matters more than its probe (an orchestrator's check then fails, which says so)."""
    if not settings.worker_health_port:
        return None
    # No SO_REUSEPORT: a port another process holds is then refused (logged below), not
    # shared with it.
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    reporter = HealthReporter([WORKER_HEALTH_NAME], lambda: _worker_ok(client, worker),
                              settings.health_interval_seconds)
    health_pb2_grpc.add_HealthServicer_to_server(reporter.servicer, server)
    # Reflection, as on every service: grpcurl and grpcui then need no proto files.
    reflection.enable_server_reflection(
        [health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME],
        server)
    try:
        address = f"{settings.host}:{settings.worker_health_port}"
        credentials = tls.server_credentials(settings)
        port = (server.add_secure_port(address, credentials) if credentials is not None
                else server.add_insecure_port(address))
    except RuntimeError:
        port = 0
    if not port:
        log.get_logger().error("worker.health_port_busy", port=settings.worker_health_port)
        return None
    await reporter.check_once()
    await server.start()
    reporter.start()
    return server, reporter, port


# The Temporal frontend closes every client connection after a while
# (frontend.keepAliveMaxConnectionAge, 5 min +/- 10 %, then up to
# keepAliveMaxConnectionAgeGrace, 70 s, for the calls still on it). A call that goes out
# as the old connection closes fails at once with CANCELLED ("operation was canceled"),
# or UNAVAILABLE; the next call goes out on a new connection. The SDK retries its own
# polls; its health check is not retried, so the probe asks once more itself.
_TRANSPORT_CODES = frozenset({RPCStatusCode.CANCELLED, RPCStatusCode.UNAVAILABLE})


async def _worker_ok(client: Client, worker: Worker) -> bool:
    if not worker.is_running or worker.is_shutdown:
        raise Unhealthy("the worker is not running (it polls no task queue)")
    try:
        try:
            ok = await client.service_client.check_health()
        except RPCError as exc:
            if exc.status not in _TRANSPORT_CODES:
                raise
            log.get_logger().debug("worker.health_probe_retried", code=exc.status.name,
                                   message=exc.message)
            ok = await client.service_client.check_health()
    except RPCError as exc:
        raise Unhealthy(f"the Temporal frontend's health check failed: {exc.status.name} "
                        f"{exc.message}") from exc
    if not ok:
        raise Unhealthy("the Temporal frontend reports its WorkflowService not serving")
    return True


def main() -> None:
    asyncio.run(_main())


if __name__ == "__main__":
    main()
