"""Faults 2, 3 and 5: the certificates service killed during issuance, the Temporal dev
server killed with applications in flight, and the matters service killed between
persisting an application and starting its workflow. Each part comes back on the same
data; every acknowledged application completes, once."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest

from govflow.matters.v1 import matters_pb2 as mpb
from tests.faults.procs import Figures, ProcStack
from tests.faults.workload import (
    SENIOR,
    check_exactly_once,
    new_seniors,
    retrying,
    senior_md,
    submit_permits,
    submit_seniors,
    wait_completed,
    work_permit,
)


async def _certificates_killed(procs: ProcStack, n: int) -> Figures:
    stack = procs.stack
    assert stack is not None
    figures = Figures("certificates service killed during issuance")
    pool = await new_seniors(stack, 2 * n)  # before the fault: making them issues certificates

    # (a) The first certificate of the load is committed, then the process dies before it
    # answers: the worker's retry must get that same certificate back (request_id).
    procs.kill("certificates")
    await procs.start_service("certificates", {
        "GOVFLOW_FAULT_CRASH_POINTS": "certificates.issue.after_commit"})
    first = await submit_seniors(stack, pool[:n])
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 120
    while procs.alive("certificates"):
        assert loop.time() < deadline, "no issuance reached the crash point"
        await asyncio.sleep(0.1)
    figures.injected += 1
    await asyncio.sleep(3)  # down a while: the activities back off and retry
    await procs.start_service("certificates")

    # (b) A plain SIGKILL in the middle of the next batch's issuing.
    second = await submit_seniors(stack, pool[n:])
    while True:
        apps = await wait_any_issued(stack, second)
        if apps:
            break
    procs.kill("certificates")
    figures.injected += 1
    await asyncio.sleep(3)
    await procs.start_service("certificates")

    names = first + second
    done = await wait_completed(stack, names, timeout=300)
    figures.applications, figures.completed = len(names), len(done)
    figures.duplicates = await check_exactly_once(stack, done, seniors=names, permits=[])
    print(figures.report())
    return figures


async def wait_any_issued(stack, names: list[str]) -> list[str]:  # type: ignore[no-untyped-def]
    md = await retrying(stack.service_md)  # reads any application
    out = []
    for name in names:
        app = (await stack.matters.GetApplication(mpb.GetApplicationRequest(name=name),
                                                  metadata=md)).application
        if app.result_certificate:
            out.append(name)
    await asyncio.sleep(0.05)
    return out


async def test_certificates_service_killed_during_issuance(running: ProcStack) -> None:
    figures = await _certificates_killed(running, 10)
    assert figures.completed == figures.applications == 20
    assert figures.duplicates == 0


async def _temporal_killed(procs: ProcStack, seniors_n: int, permits_n: int, kills: int) -> Figures:
    stack = procs.stack
    assert stack is not None
    figures = Figures("Temporal dev server killed (WAL file) with applications in flight")
    pool = await new_seniors(stack, kills * (seniors_n + 3))
    seniors: list[str] = []
    permits: list[str] = []
    officers: list[asyncio.Task[None]] = []
    for _ in range(kills):
        seniors += await submit_seniors(stack, pool[len(seniors):len(seniors) + seniors_n])
        more = await submit_permits(stack, permits_n)
        permits += more
        officers += [asyncio.create_task(work_permit(stack, p, timeout=600)) for p in more]
        # Some finished, most in flight: kill the engine.
        await asyncio.sleep(1.5)
        procs.kill("temporal")
        figures.injected += 1
        # Submissions meanwhile are refused (not acknowledged) until it is back; a client
        # retrying with its request_id gets exactly one application.
        late = asyncio.create_task(submit_seniors(stack, pool[len(seniors):len(seniors) + 3]))
        await asyncio.sleep(3)
        await procs.start_temporal()
        seniors += await late
    done = await wait_completed(stack, seniors + permits, timeout=600)
    await asyncio.gather(*officers)
    assert procs.alive("worker") and all(procs.alive(s) for s in ("identity", "certificates",
                                                                   "matters"))
    figures.applications, figures.completed = len(seniors) + len(permits), len(done)
    figures.duplicates = await check_exactly_once(stack, done, seniors=seniors, permits=permits)
    print(figures.report())
    return figures


async def test_temporal_killed_with_applications_in_flight(running: ProcStack) -> None:
    figures = await _temporal_killed(running, 10, 2, kills=1)
    assert figures.completed == figures.applications == 15
    assert figures.duplicates == 0


async def test_matters_killed_between_insert_and_workflow_start(running: ProcStack) -> None:
    """The row is committed, the process dies before starting the workflow; the client's
    SubmitApplication fails (not acknowledged). On restart ``resume_unstarted`` starts the
    workflow, and the client's retries with the same request_id — sequential and
    concurrent — find that one application: one workflow, one certificate."""
    procs = running
    stack = procs.stack
    assert stack is not None
    figures = Figures("matters killed between the database insert and the workflow start")
    (senior,) = await new_seniors(stack, 1)
    md = await senior_md(stack, senior)
    procs.kill("matters")
    await procs.start_service("matters", {"GOVFLOW_FAULT_CRASH_POINTS": "matters.submit.after_insert"})
    rid = uuid.uuid4().hex
    req = mpb.SubmitApplicationRequest(matter=SENIOR, request_id=rid)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.matters.SubmitApplication(req, metadata=md, timeout=20)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    procs.procs["matters"].wait(timeout=10)
    figures.injected += 1
    rows = await asyncio.to_thread(_rows_for, procs, rid)
    assert len(rows) == 1 and not rows[0].workflow_started  # persisted, never started

    await procs.start_service("matters")  # resume_unstarted runs at start
    again = await retrying(lambda: stack.matters.SubmitApplication(req, metadata=md, timeout=20))
    racing = await asyncio.gather(*[stack.matters.SubmitApplication(req, metadata=md)
                                    for _ in range(5)])
    names = {again.application.name, *(r.application.name for r in racing)}
    assert names == {f"applications/{rows[0].id}"}
    wid = f"application-{rows[0].id}"
    done = await wait_completed(stack, [again.application.name])
    # Temporal's list is eventually consistent: count the runs once the one has closed
    # and the list shows it.
    await asyncio.wait_for(stack.client.get_workflow_handle(wid).result(), 60)
    runs: list[object] = []
    for _ in range(50):
        runs = [w async for w in stack.client.list_workflows(f'WorkflowId = "{wid}"')]
        if runs:
            break
        await asyncio.sleep(0.2)
    assert len(runs) == 1, runs
    figures.applications, figures.completed = 1, len(done)
    figures.duplicates = await check_exactly_once(stack, done, seniors=[again.application.name],
                                                  permits=[])
    print(figures.report())


def _rows_for(procs: ProcStack, request_id: str) -> list:  # type: ignore[type-arg]
    from tests.faults.workload import _rows

    return _rows(procs.settings, "matters",
                 "SELECT id, workflow_started FROM applications WHERE request_id = :r",
                 r=request_id)


@pytest.mark.heavy
async def test_certificates_killed_heavy(running: ProcStack) -> None:
    figures = await _certificates_killed(running, 25)
    assert figures.completed == figures.applications and figures.duplicates == 0


@pytest.mark.heavy
async def test_temporal_killed_with_officers_at_work_heavy(running: ProcStack) -> None:
    """Three engine kills in a row with officers' claims and decisions in flight."""
    figures = await _temporal_killed(running, 20, 4, kills=3)
    assert figures.completed == figures.applications and figures.duplicates == 0
