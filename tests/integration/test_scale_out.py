"""The scale-out path on this machine's PostgreSQL: each service's migrations from empty to
head (and again, as every replica does at start), two workers sharing one task queue, and
two replicas of the matters service answering the same submission at once."""

from __future__ import annotations

import asyncio
import os
import pathlib
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator

import grpc
import psycopg
import pytest
import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory
from temporalio.api.enums.v1 import EventType, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from govflow.certificates.v1 import certificates_pb2 as cpb
from govflow.db import migrate, normalise_url
from govflow.matters.v1 import matters_pb2 as mpb
from govflow.matters.v1 import matters_pb2_grpc
from tests.e2e.helpers import new_senior
from tests.stack import SERVICES, Stack, postgres_databases, running_stack
from workflows.worker import WorkerStack

ROOT = pathlib.Path(__file__).resolve().parents[2]
TERMINAL = {mpb.APPLICATION_STATUS_COMPLETED, mpb.APPLICATION_STATUS_REJECTED,
            mpb.APPLICATION_STATUS_WITHDRAWN, mpb.APPLICATION_STATUS_FAILED}
SENIOR_CARD = "certificateTypes/senior-citizen-card"


def migrations_dir(service: str) -> pathlib.Path:
    return ROOT / "services" / service / "migrations"


def schema_snapshot(url: str) -> tuple[str | None, list[tuple[str, ...]]]:
    """The alembic revision and every column and index of the public schema."""
    with psycopg.connect(url) as conn:
        version = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        columns = conn.execute(
            "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_schema = 'public' ORDER BY 1, 2").fetchall()
        indexes = conn.execute("SELECT tablename, indexname, indexdef FROM pg_indexes "
                               "WHERE schemaname = 'public' ORDER BY 1, 2").fetchall()
    return (version[0] if version else None), [tuple(map(str, r)) for r in columns + indexes]


# ------------------------------------------------------------------ migrations

@pytest.mark.postgres
@pytest.mark.parametrize("service", SERVICES)
def test_migrations_upgrade_empty_postgres_to_head_and_again_is_a_no_op(service: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir(service)))
    heads = ScriptDirectory.from_config(cfg).get_heads()
    assert len(heads) == 1, f"{service} has several migration heads: {heads}"
    with postgres_databases((service,)) as urls:
        url = urls[service]
        migrate(url, migrations_dir(service))
        version, schema = schema_snapshot(url)
        assert version == heads[0]
        tables = {row[0] for row in schema}
        assert len(tables - {"alembic_version"}) >= 2, tables
        # Every replica migrates at start: on an up-to-date database that changes nothing.
        migrate(url, migrations_dir(service))
        assert schema_snapshot(url) == (version, schema)
        # And the service's own engine sees its tables on PostgreSQL.
        engine = sa.create_engine(normalise_url(url))
        try:
            assert set(sa.inspect(engine).get_table_names()) == tables
        finally:
            engine.dispose()


# ------------------------------------------------------------------ helpers

async def wait_done(stub: matters_pb2_grpc.MattersServiceStub, name: str, md: tuple,  # type: ignore[type-arg]
                    timeout: float = 120) -> mpb.Application:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        app = (await stub.GetApplication(mpb.GetApplicationRequest(name=name), metadata=md)).application
        if app.status in TERMINAL or loop.time() > deadline:
            return app
        await asyncio.sleep(0.25)


async def senior_cards(stack: Stack, holder: str, md: tuple) -> list[str]:  # type: ignore[type-arg]
    names: list[str] = []
    token = ""
    while True:
        resp = await stack.certificates.ListCertificates(cpb.ListCertificatesRequest(
            parent=holder, page_size=100, page_token=token), metadata=md)
        names += [c.name for c in resp.certificates if c.type == SENIOR_CARD]
        token = resp.next_page_token
        if not token:
            return names


async def pollers(stack: Stack, kind: TaskQueueType.ValueType) -> set[str]:
    """The identities polling the stack's task queue; none seen while the dev server drops
    the (unretried) describe call, as it did once under the full suite's load."""
    try:
        resp = await stack.client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
            namespace=stack.client.namespace, task_queue=TaskQueue(name=stack.task_queue),
            task_queue_type=kind))
    except RPCError as err:
        if err.status not in (RPCStatusCode.CANCELLED, RPCStatusCode.UNAVAILABLE):
            raise
        return set()
    return {p.identity for p in resp.pollers}


@pytest.fixture
async def pg_stack(temporal_env: WorkflowEnvironment, tmp_path: pathlib.Path) -> AsyncIterator[Stack]:
    """The three services on fresh PostgreSQL databases, seeded, with no worker."""
    with postgres_databases() as urls:
        async with running_stack(tmp_path, temporal_env.client, database_urls=urls,
                                 with_worker=False) as stack:
            yield stack


# ------------------------------------------------------------------ two workers

@pytest.mark.postgres
async def test_two_workers_share_the_task_queue_and_issue_each_certificate_once(
        pg_stack: Stack, tmp_path: pathlib.Path) -> None:
    stack = pg_stack
    # Worker A runs in this process; worker B is a separate `python -m workflows.worker`
    # process configured only by GOVFLOW_* variables, as a container replica is.
    env = {**os.environ, **stack.settings.as_env(), "GOVFLOW_LOG_JSON": "true",
           "GOVFLOW_LOG_LEVEL": "warning", "GOVFLOW_WORKER_HEALTH_PORT": "0"}
    with open(tmp_path / "worker-b.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "workflows.worker"], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    worker_b = f"{proc.pid}@"
    worker_a = f"worker-a-{uuid.uuid4().hex[:6]}"
    in_process = WorkerStack(stack.settings, stack.client, task_queue=stack.task_queue,
                             identity=worker_a)
    try:
        async with in_process.worker:
            # Both must be polling before any work arrives, or one could take it all.
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 60
            while True:
                seen = await pollers(stack, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW)
                if worker_a in seen and any(p.startswith(worker_b) for p in seen):
                    break
                assert proc.poll() is None, (tmp_path / "worker-b.log").read_text()
                assert loop.time() < deadline, f"pollers seen: {seen}"
                await asyncio.sleep(0.3)

            # The senior card is one per holder: 21 new seniors, one application each.
            seniors = await asyncio.gather(*[new_senior(stack) for _ in range(21)])
            (_, md), others = seniors[0], seniors[1:]
            first = await stack.matters.SubmitApplication(mpb.SubmitApplicationRequest(
                matter="matters/senior-citizen-card", request_id=uuid.uuid4().hex), metadata=md)
            done = await wait_done(stack.matters, first.application.name, md)
            assert done.status == mpb.APPLICATION_STATUS_COMPLETED, [e.message for e in done.timeline]

            subs = await asyncio.gather(*[stack.matters.SubmitApplication(
                mpb.SubmitApplicationRequest(matter="matters/senior-citizen-card",
                                             request_id=uuid.uuid4().hex), metadata=md)
                for _, md in others])
            apps = await asyncio.gather(*[wait_done(stack.matters, s.application.name, md)
                                          for s, (_, md) in zip(subs, others, strict=True)])
            assert len({a.name for a in apps}) == 20
            assert all(a.status == mpb.APPLICATION_STATUS_COMPLETED for a in apps), \
                [(a.name, a.status) for a in apps]
            results = [a.result_certificate for a in apps]
            assert all(results) and len(set(results)) == 20
            # Each holder's wallet holds its one card, issued once.
            for app, (senior, md) in zip(apps, others, strict=True):
                assert await senior_cards(stack, senior.name, md) == [app.result_certificate]

            # Who ran what: the identity on every started workflow task (an instant
            # approval's calls are local activities, run by the worker of its task) and
            # activity task.
            ran: dict[str, int] = {}
            for app in apps:
                history = await stack.client.get_workflow_handle(app.workflow_id).fetch_history()
                for event in history.events:
                    if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
                        who = event.workflow_task_started_event_attributes.identity
                    elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                        who = event.activity_task_started_event_attributes.identity
                    else:
                        continue
                    ran[who] = ran.get(who, 0) + 1
            assert ran.get(worker_a, 0) > 0, ran
            assert sum(n for who, n in ran.items() if who.startswith(worker_b)) > 0, ran
            assert set(ran) <= {worker_a} | {w for w in ran if w.startswith(worker_b)}, ran
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        await in_process.close()


# ------------------------------------------------------------------ two matters replicas

@pytest.mark.postgres
async def test_two_matters_replicas_given_the_same_submission_make_one_application(
        pg_stack: Stack) -> None:
    from services.matters.server import create_server as matters_server

    stack = pg_stack
    # A second replica: its own process state, the same database and Temporal.
    replica, port = await matters_server(stack.settings, port=0)
    await replica.start()
    worker = WorkerStack(stack.settings, stack.client, task_queue=stack.task_queue)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch, worker.worker:
            replicas = [stack.matters, matters_pb2_grpc.MattersServiceStub(ch)]
            _, md = await new_senior(stack)  # the card is one per holder
            rid = uuid.uuid4().hex
            req = mpb.SubmitApplicationRequest(matter="matters/senior-citizen-card", request_id=rid)
            answers = await asyncio.gather(*[replicas[i % 2].SubmitApplication(req, metadata=md)
                                             for i in range(10)])
            names = {a.application.name for a in answers}
            assert len(names) == 1, names
            (name,) = names
            # Either replica answers for it, and it completes once.
            app = await wait_done(replicas[1], name, md)
            assert app.status == mpb.APPLICATION_STATUS_COMPLETED
            assert (await replicas[0].GetApplication(mpb.GetApplicationRequest(name=name),
                                                     metadata=md)).application.status == app.status

            listed = await stack.matters.ListApplications(mpb.ListApplicationsRequest(
                page_size=100), metadata=md)
            assert [a.name for a in listed.applications].count(name) == 1
            with psycopg.connect(stack.settings.matters_database_url) as conn:
                rows = conn.execute("SELECT id FROM applications WHERE request_id = %s",
                                    (rid,)).fetchall()
            assert [f"applications/{r[0]}" for r in rows] == [name]

            # One workflow execution (one run) under the application's workflow id.
            runs = [w async for w in stack.client.list_workflows(
                f'WorkflowId = "{app.workflow_id}"')]
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10
            while not runs and loop.time() < deadline:  # visibility is eventually consistent
                await asyncio.sleep(0.3)
                runs = [w async for w in stack.client.list_workflows(
                    f'WorkflowId = "{app.workflow_id}"')]
            assert len(runs) == 1, runs
            certs = await senior_cards(stack, app.applicant, md)
            assert certs.count(app.result_certificate) == 1
    finally:
        await worker.close()
        await replica.stop(0)
