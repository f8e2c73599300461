"""Load for the fault tests — instant approvals by new senior citizens (the senior card is
one per holder) and three-step permits worked by officers — and the exactly-once checks
run after each fault."""

from __future__ import annotations

import asyncio
import collections
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
import sqlalchemy as sa

from govflow.certificates.v1 import certificates_pb2 as cpb
from govflow.db import make_engine
from govflow.matters.v1 import matters_pb2 as mpb
from govflow.settings import Settings
from govflow_cli import audit_cli
from govflow_cli.demo_data import DEMO_PASSWORD, AddedPerson, add_senior
from tests.e2e.helpers import Md, citizen, official, org
from tests.stack import Stack

T = TypeVar("T")
SENIOR = "matters/senior-citizen-card"
PERMIT = "matters/food-business-permit"
AMR = "agencies/sz-amr"
PERMIT_STEPS = (("acceptance", "chen-jing"), ("review", "zhao-lei"), ("approval", "zhao-lei"))
# Codes a client may retry with the same request (the service or the engine was down).
RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
             grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}


async def retrying(call: Callable[[], Awaitable[T]], timeout: float = 180) -> T:
    """What a well-behaved client does: retry transient failures with the same request."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            return await call()
        except grpc.aio.AioRpcError as err:
            if err.code() not in RETRYABLE or loop.time() > deadline:
                raise
        await asyncio.sleep(0.5)


async def submit(stack: Stack, md: Md, matter: str, *, applicant: str = "",
                 pledges: tuple[str, ...] = (), request_id: str = "") -> str:
    """Submits until acknowledged (OK); the same request_id on every try."""
    req = mpb.SubmitApplicationRequest(matter=matter, applicant=applicant,
                                       request_id=request_id or uuid.uuid4().hex,
                                       pledges=list(pledges))
    resp = await retrying(lambda: stack.matters.SubmitApplication(req, metadata=md, timeout=20))
    return resp.application.name  # type: ignore[no-any-return]


# The seniors new_seniors made, by person name: check_exactly_once reads their wallets.
_SENIORS: dict[str, AddedPerson] = {}


async def new_seniors(stack: Stack, n: int) -> list[AddedPerson]:
    """``n`` new senior citizens, one per instant approval of the load (the card is one
    per holder). Made before a fault is injected: making them issues certificates."""
    admin = await retrying(stack.service_md)
    made = list(await asyncio.gather(*[retrying(lambda: add_senior(
        stack.identity, stack.certificates, admin)) for _ in range(n)]))
    _SENIORS.update((s.name, s) for s in made)
    return made


async def senior_md(stack: Stack, senior: AddedPerson) -> Md:
    return await retrying(lambda: stack.login(senior.id_number, DEMO_PASSWORD))


async def submit_seniors(stack: Stack, seniors: list[AddedPerson]) -> list[str]:
    """One senior card application by each of ``seniors``, each submitted until
    acknowledged."""
    async def one(senior: AddedPerson) -> str:
        return await submit(stack, await senior_md(stack, senior), SENIOR)

    return list(await asyncio.gather(*[one(s) for s in seniors]))


async def submit_permits(stack: Stack, n: int) -> list[str]:
    enterprise = org(stack)
    md = await citizen(stack, "li-wei", acting_for=enterprise)
    return list(await asyncio.gather(*[submit(stack, md, PERMIT, applicant=enterprise,
                                              pledges=("fire-safety",)) for _ in range(n)]))


async def work_permit(stack: Stack, name: str, timeout: float = 300) -> None:
    """Officers claim and approve each step of one permit, retrying through faults; a
    step counts as done once the read model shows its task decided."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    app_id = name.removeprefix("applications/")
    for step, who in PERMIT_STEPS:
        md = await retrying(lambda w=who: official(stack, w, AMR))  # type: ignore[misc]
        task = f"tasks/{app_id}-{step}-{AMR.removeprefix('agencies/')}"
        while True:
            assert loop.time() < deadline, f"{name}: step {step} never got decided"
            status = await asyncio.to_thread(task_status, stack.settings, task)
            if status == "DECIDED":
                break
            if status is not None:
                for call in (stack.matters.ClaimTask(mpb.ClaimTaskRequest(name=task),
                                                     metadata=md, timeout=10),
                             stack.matters.DecideTask(mpb.DecideTaskRequest(
                                 name=task, decision=mpb.DECISION_APPROVE),
                                 metadata=md, timeout=10)):
                    try:
                        await call
                    except grpc.aio.AioRpcError:
                        pass  # a fault, or already claimed/decided: the loop looks again
            await asyncio.sleep(0.3)


def task_status(settings: Settings, task: str) -> str | None:
    """The task's status in matters' read model (None: not written yet, or unreadable)."""
    try:
        rows = _rows(settings, "matters", "SELECT status FROM tasks WHERE name = :n", n=task)
    except sa.exc.OperationalError:
        return None
    return str(rows[0].status) if rows else None


async def wait_completed(stack: Stack, names: list[str], timeout: float = 240) -> dict[str, mpb.Application]:
    """Every application COMPLETED in the read model (as its applicant sees it)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    admin_md = await retrying(stack.service_md)  # reads any application
    permit_md = await retrying(lambda: citizen(stack, "li-wei", acting_for=org(stack)))
    done: dict[str, mpb.Application] = {}
    while True:
        for name in names:
            if name in done:
                continue
            app = await _get(stack, name, admin_md, permit_md)
            if app is not None and app.status == mpb.APPLICATION_STATUS_COMPLETED:
                done[name] = app
            elif app is not None and app.status in (mpb.APPLICATION_STATUS_REJECTED,
                                                    mpb.APPLICATION_STATUS_FAILED,
                                                    mpb.APPLICATION_STATUS_WITHDRAWN):
                raise AssertionError(f"{name} ended {mpb.ApplicationStatus.Name(app.status)}: "
                                     f"{[e.message for e in app.timeline]}")
        if len(done) == len(names):
            return done
        if loop.time() > deadline:
            missing = [n for n in names if n not in done]
            raise AssertionError(f"{len(missing)} of {len(names)} not completed: {missing[:5]}")
        await asyncio.sleep(0.5)


async def _get(stack: Stack, name: str, *mds: Md) -> mpb.Application | None:
    for md in mds:
        try:
            return (await stack.matters.GetApplication(mpb.GetApplicationRequest(name=name),
                                                       metadata=md, timeout=10)).application
        except grpc.aio.AioRpcError as err:
            if err.code() != grpc.StatusCode.NOT_FOUND:
                return None
    return None


async def senior_cards_held(stack: Stack, holder: str) -> list[str]:
    """The senior cards in the wallet of ``holder``, one of new_seniors' seniors."""
    md = await senior_md(stack, _SENIORS[holder])
    resp = await retrying(lambda: stack.certificates.ListCertificates(
        cpb.ListCertificatesRequest(parent=holder, page_size=100,
                                    filter="type=certificateTypes/senior-citizen-card"),
        metadata=md, timeout=10))
    return [c.name for c in resp.certificates]


def _rows(settings: Settings, service: str, query: str, **params: Any) -> list[Any]:
    engine = make_engine(settings.database_url(service))
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(query), params))
    finally:
        engine.dispose()


async def check_exactly_once(stack: Stack, done: dict[str, mpb.Application], *,
                             seniors: list[str], permits: list[str]) -> int:
    """Asserts one result certificate per application (in the wallet, in the certificates
    database and in its audit chain) and one task per step (workflow state, read model,
    decision chain); returns the number of duplicates found (0, or it fails)."""
    settings = stack.settings
    names = [*seniors, *permits]
    results = [done[n].result_certificate for n in names]
    assert all(results) and len(set(results)) == len(results)
    issued = collections.Counter(r.application for r in _rows(
        settings, "certificates", "SELECT application FROM certificates"))
    dupes = {n: issued[n] for n in names if issued[n] != 1}
    assert not dupes, f"certificates per application: {dupes}"
    for name in seniors:  # each senior holds the one card of their one application
        held = await senior_cards_held(stack, done[name].applicant)
        assert held == [done[name].result_certificate], (name, held)

    tasks = collections.Counter(r.application_id for r in _rows(
        settings, "matters", "SELECT application_id FROM tasks"))
    for name in permits:
        app_id = name.removeprefix("applications/")
        state = await stack.client.get_workflow_handle(f"application-{app_id}").query("status")
        steps = [t["step"] for t in state["tasks"]]
        assert sorted(steps) == sorted(s for s, _ in PERMIT_STEPS), (name, steps)
        assert all(t["status"] == "DECIDED" for t in state["tasks"]), state["tasks"]
        assert tasks[app_id] == len(PERMIT_STEPS), (name, tasks[app_id])

    # The audit chains hold each decision and issue once, and still verify.
    reports = await asyncio.to_thread(audit_cli.verify_chains, settings)
    assert all(r.ok for r in reports.values()), {k: r.problem for k, r in reports.items()}
    issue_entries = collections.Counter(json.loads(r.entry_json)["details"]["application"]
                                        for r in _rows(settings, "certificates",
                                                       "SELECT entry_json FROM certificate_audit_log "
                                                       "WHERE action = 'certificate.issued'"))
    assert all(issue_entries[n] == 1 for n in names), {n: issue_entries[n] for n in names}
    decided = collections.Counter((r.action, r.subject) for r in _rows(
        settings, "matters", "SELECT action, subject FROM decision_audit_log"))
    for name in seniors:
        # What to look at when it fails: the chain's rule entries and the timeline's events
        # for the application (two decisions, or none, and from which events).
        assert decided[("rule.decided", name)] == 1, (
            name, decided[("rule.decided", name)],
            [r.entry_json for r in _rows(settings, "matters", "SELECT entry_json FROM "
                                         "decision_audit_log WHERE subject = :s", s=name)],
            [(r.event_id, r.time) for r in _rows(
                settings, "matters", "SELECT event_id, time FROM application_events "
                "WHERE application_id = :a ORDER BY event_id",
                a=name.removeprefix("applications/"))])
    for name in permits:
        app_id = name.removeprefix("applications/")
        mine = [k for k in decided if k[0] == "task.decided" and k[1].startswith(f"tasks/{app_id}")]
        assert len(mine) == len(PERMIT_STEPS) and all(decided[k] == 1 for k in mine), mine
    return 0
