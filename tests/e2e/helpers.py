"""Small helpers shared by the end-to-end tests (public gRPC APIs only)."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Callable

from google.protobuf import timestamp_pb2
from temporalio.testing import TimeSkipper

from govflow.identity.v1 import identity_pb2 as ipb
from govflow.matters.v1 import matters_pb2 as mpb
from govflow_cli.demo_data import DEMO_PASSWORD, AddedPerson, add_senior, person
from tests.stack import Stack

Md = tuple[tuple[str, str], ...]
TERMINAL = {mpb.APPLICATION_STATUS_COMPLETED, mpb.APPLICATION_STATUS_REJECTED,
            mpb.APPLICATION_STATUS_WITHDRAWN, mpb.APPLICATION_STATUS_FAILED,
            mpb.APPLICATION_STATUS_REVOKED}


async def citizen(stack: Stack, key: str, *, acting_for: str = "") -> Md:
    return await stack.login(person(key).id_number, DEMO_PASSWORD, acting_for=acting_for)


async def official(stack: Stack, key: str, agency: str) -> Md:
    return await stack.login(person(key).id_number, DEMO_PASSWORD, agency=agency)


async def new_senior(stack: Stack) -> tuple[AddedPerson, Md]:
    """A new senior citizen with what the senior card needs, logged in. The card is one
    per holder, and the stack is shared by the session: each test that applies for it
    needs its own senior."""
    senior = await add_senior(stack.identity, stack.certificates, await stack.service_md())
    return senior, await stack.login(senior.id_number, DEMO_PASSWORD)


def org(stack: Stack, key: str = "lotus-catering") -> str:
    return stack.seeded.organisations[key]  # type: ignore[attr-defined,no-any-return]


def person_name(stack: Stack, key: str) -> str:
    return stack.seeded.persons[key]  # type: ignore[attr-defined,no-any-return]


async def submit(stack: Stack, md: Md, matter: str, *, applicant: str = "",
                 pledges: tuple[str, ...] = ()) -> str:
    resp = await stack.matters.SubmitApplication(mpb.SubmitApplicationRequest(
        matter=matter, applicant=applicant, request_id=uuid.uuid4().hex, pledges=list(pledges)),
        metadata=md)
    return resp.application.name  # type: ignore[no-any-return]


async def get(stack: Stack, md: Md, name: str) -> mpb.Application:
    return (await stack.matters.GetApplication(mpb.GetApplicationRequest(name=name),
                                               metadata=md)).application


async def wait_for(stack: Stack, md: Md, name: str, pred: Callable[[mpb.Application], bool],
                   timeout: float = 60) -> mpb.Application:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        app = await get(stack, md, name)
        if pred(app):
            return app
        if loop.time() > deadline:
            raise AssertionError(f"{name} stayed {mpb.ApplicationStatus.Name(app.status)}: "
                                 f"{[e.kind for e in app.timeline]}")
        await asyncio.sleep(0.2)


async def wait_status(stack: Stack, md: Md, name: str, status: int, timeout: float = 60) -> mpb.Application:
    return await wait_for(stack, md, name, lambda a: a.status == status, timeout)


async def wait_done(stack: Stack, md: Md, name: str, timeout: float = 60) -> mpb.Application:
    return await wait_for(stack, md, name, lambda a: a.status in TERMINAL, timeout)


async def task_for(stack: Stack, md: Md, application: str, step: str, *, agency: str = "",
                   status: int = mpb.TASK_STATUS_OPEN, timeout: float = 30) -> mpb.Task:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        tasks = await stack.matters.ListTasks(mpb.ListTasksRequest(page_size=100), metadata=md)
        for t in tasks.tasks:
            if t.application == application and t.step == step and t.status == status and (
                    not agency or t.agency == agency):
                return t
        await asyncio.sleep(0.2)
    raise AssertionError(f"no {step} task for {application} in the inbox")


async def approve(stack: Stack, md: Md, task: str) -> mpb.Task:
    await stack.matters.ClaimTask(mpb.ClaimTaskRequest(name=task), metadata=md)
    resp = await stack.matters.DecideTask(mpb.DecideTaskRequest(
        name=task, decision=mpb.DECISION_APPROVE), metadata=md)
    return resp.task


async def fast_forward(stack: Stack, name: str, duration: dt.timedelta) -> None:
    """Moves one application's workflow clock forward (per-workflow time skipping)."""
    handle = stack.client.get_workflow_handle("application-" + name.removeprefix("applications/"))
    await TimeSkipper(stack.client).fast_forward(handle, duration)


async def delegate(stack: Stack, md: Md, grantor: str, partner: str, matters: list[str],
                   hours: float = 1) -> ipb.Delegation:
    """``grantor`` (logged in as ``md``) lets ``partner`` act for it in ``matters``."""
    until = timestamp_pb2.Timestamp()
    until.FromDatetime(dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours))
    made = await stack.identity.CreateDelegation(ipb.CreateDelegationRequest(
        parent=grantor, delegation=ipb.Delegation(delegate=partner, matters=matters,
                                                 expire_time=until)), metadata=md)
    return made.delegation
