"""Multi-step approval through officers' inboxes, through the public gRPC APIs only."""

from __future__ import annotations

import asyncio
import re
import uuid

import grpc
import pytest
from temporalio.api.enums.v1 import EventType

from govflow.certificates.v1 import certificates_pb2 as cpb
from govflow.matters.v1 import matters_pb2 as mpb
from govflow_cli.demo_data import DEMO_PASSWORD, person
from tests.e2e.helpers import person_name, wait_for
from tests.e2e.test_zero_visit import wait_done
from tests.stack import Stack
from workflows.models import workflow_id

AMR = "agencies/sz-amr"


async def officer(stack: Stack, key: str) -> tuple[tuple[str, str], ...]:
    return await stack.login(person(key).id_number, DEMO_PASSWORD, agency=AMR)


async def task_for(stack: Stack, md, application: str, step: str, timeout: float = 30) -> mpb.Task:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        tasks = await stack.matters.ListTasks(mpb.ListTasksRequest(page_size=100), metadata=md)
        for t in tasks.tasks:
            if t.application == application and t.step == step:
                return t
        await asyncio.sleep(0.2)
    raise AssertionError(f"no {step} task for {application} in the inbox")


async def submit_permit(stack: Stack) -> tuple[str, tuple[tuple[str, str], ...], str]:
    org = stack.seeded.organisations["lotus-catering"]  # type: ignore[attr-defined]
    md = await stack.login(person("li-wei").id_number, DEMO_PASSWORD, acting_for=org)
    sub = await stack.matters.SubmitApplication(mpb.SubmitApplicationRequest(
        matter="matters/food-business-permit", applicant=org, request_id=uuid.uuid4().hex,
        pledges=["fire-safety"]), metadata=md)
    return sub.application.name, md, org


async def claim_and_decide(stack: Stack, md, task: str, decision: int = mpb.DECISION_APPROVE,  # type: ignore[no-untyped-def]
                           reasons: tuple[str, ...] = ()) -> mpb.Task:
    await stack.matters.ClaimTask(mpb.ClaimTaskRequest(name=task), metadata=md)
    resp = await stack.matters.DecideTask(mpb.DecideTaskRequest(
        name=task, decision=decision, reasons=list(reasons)), metadata=md)
    return resp.task


async def test_three_steps_then_a_certificate_for_the_enterprise(stack: Stack) -> None:
    name, applicant_md, org = await submit_permit(stack)
    acceptor = await officer(stack, "chen-jing")
    reviewer = await officer(stack, "zhao-lei")
    other_reviewer = await officer(stack, "qian-hao")

    accept = await task_for(stack, acceptor, name, "acceptance")
    assert accept.status == mpb.TASK_STATUS_OPEN and accept.role == "acceptor"
    assert accept.due_time.seconds > 0

    # A reviewer does not see the acceptance task and may not act on it.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.matters.ClaimTask(mpb.ClaimTaskRequest(name=accept.name), metadata=reviewer)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # Deciding before claiming is refused; nothing changes.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.matters.DecideTask(mpb.DecideTaskRequest(
            name=accept.name, decision=mpb.DECISION_APPROVE), metadata=acceptor)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    decided = await claim_and_decide(stack, acceptor, accept.name)
    assert decided.status == mpb.TASK_STATUS_DECIDED
    # DecideTask answers once the workflow holds the decision; the officer's inbox and the
    # timeline (claim, then decision, in that order) follow from the workflow's writes.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while True:
        inbox = await stack.matters.ListTasks(mpb.ListTasksRequest(
            page_size=100, filter="status=DECIDED"), metadata=acceptor)
        mine = [(t.name, t.decision) for t in inbox.tasks if t.name == accept.name]
        if mine or loop.time() > deadline:
            break
        await asyncio.sleep(0.05)
    assert mine == [(accept.name, mpb.DECISION_APPROVE)]
    app = await wait_for(stack, applicant_md, name,
                         lambda a: "task_decided" in [e.kind for e in a.timeline])
    kinds = [e.kind for e in app.timeline]
    assert kinds.index("task_claimed") < kinds.index("task_decided")

    # Two reviewers race to claim the review: exactly one wins.
    review = await task_for(stack, reviewer, name, "review")
    results = await asyncio.gather(
        stack.matters.ClaimTask(mpb.ClaimTaskRequest(name=review.name), metadata=reviewer),
        stack.matters.ClaimTask(mpb.ClaimTaskRequest(name=review.name), metadata=other_reviewer),
        return_exceptions=True)
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(winners) == 1 and len(losers) == 1
    assert losers[0].code() == grpc.StatusCode.FAILED_PRECONDITION
    winner_md = reviewer if winners[0].task.assignee == person_name(stack, "zhao-lei") else other_reviewer
    await stack.matters.DecideTask(mpb.DecideTaskRequest(
        name=review.name, decision=mpb.DECISION_APPROVE), metadata=winner_md)
    # Deciding a decided task is refused.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.matters.DecideTask(mpb.DecideTaskRequest(
            name=review.name, decision=mpb.DECISION_REJECT, reasons=["late"]), metadata=winner_md)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    approval = await task_for(stack, reviewer, name, "approval")
    await claim_and_decide(stack, reviewer, approval.name)

    app = await wait_done(stack, name, applicant_md)
    assert app.status == mpb.APPLICATION_STATUS_COMPLETED, [e.message for e in app.timeline]
    assert [e.kind for e in app.timeline].count("step_approved") == 3
    # The officers' path speaks Chinese too, with English beside (message_en).
    for e in app.timeline:
        assert re.search(r"[\u4e00-\u9fff]", e.message) and e.message_en, (e.kind, e.message)
    opened = next(e for e in app.timeline if e.kind == "step_opened")
    assert "审核（办理时限 " in opened.message and "waiting for" in opened.message_en, opened
    decided = [e for e in app.timeline if e.kind == "task_decided"]
    assert decided and all(e.message.endswith("：同意") for e in decided), decided
    # The English beside names the steps and materials in English (the definition's
    # display_name_en), not in Chinese.
    for e in app.timeline:
        if e.kind in ("step_opened", "step_approved", "task_claimed", "task_decided",
                      "material_verified"):
            assert not re.search(r"[\u4e00-\u9fff]", e.message_en), (e.kind, e.message_en)
    wallet = await stack.certificates.ListCertificates(
        cpb.ListCertificatesRequest(parent=org), metadata=applicant_md)
    issued = [c for c in wallet.certificates if c.name == app.result_certificate]
    assert issued and issued[0].fields["credit_code"] == "91440300MA5FLT8K25"
    # The agency's officials see it in their list; the inbox no longer shows its tasks.
    listed = await stack.matters.ListApplications(mpb.ListApplicationsRequest(
        filter="matter=matters/food-business-permit AND status=COMPLETED", page_size=100),
        metadata=acceptor)
    assert name in {a.name for a in listed.applications}
    inbox = await stack.matters.ListTasks(mpb.ListTasksRequest(page_size=100), metadata=reviewer)
    assert all(t.application != name for t in inbox.tasks)
    # Each decision's workflow task carried the decision: the Update's messages and the
    # decided task's write — and, when the claim's task write landed just then, the
    # claim's timeline write that follows it. The step's follow-up (its timer cancelled,
    # its timeline events, the next step) came in a later workflow task, so the officer's
    # answer did not wait for it.
    written = await written_with_update(stack, name.removeprefix("applications/"),
                                        "decide_task")
    assert len(written) == 3, written
    for events in written:
        assert events[:3] == ["UPDATE_ACCEPTED", "UPDATE_COMPLETED",
                              "ACTIVITY_TASK_SCHEDULED upsert_task"], written
        assert events[3:] in ([], ["ACTIVITY_TASK_SCHEDULED record_event"]), written


# The events a workflow task's completion writes (its commands and the Update protocol's
# messages), as opposed to what happens to the workflow between tasks.
COMMAND_EVENTS = {
    "ACTIVITY_TASK_SCHEDULED", "ACTIVITY_TASK_CANCEL_REQUESTED", "TIMER_STARTED",
    "TIMER_CANCELED", "MARKER_RECORDED", "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES",
    "WORKFLOW_PROPERTIES_MODIFIED", "START_CHILD_WORKFLOW_EXECUTION_INITIATED",
    "WORKFLOW_EXECUTION_UPDATE_ACCEPTED", "WORKFLOW_EXECUTION_UPDATE_COMPLETED",
    "WORKFLOW_EXECUTION_COMPLETED"}


async def written_with_update(stack: Stack, application_id: str, update: str) -> list[list[str]]:
    """For each workflow task that accepted an Update named ``update``, the events its
    completion wrote (without the ``EVENT_TYPE_`` and ``WORKFLOW_EXECUTION_`` prefixes;
    scheduled activities with their names)."""
    history = await stack.client.get_workflow_handle(workflow_id(application_id)).fetch_history()
    groups: list[list[str]] = []
    accepted: list[str] = []
    current: list[str] | None = None
    for ev in history.events:
        kind = EventType.Name(ev.event_type).removeprefix("EVENT_TYPE_")
        if kind == "WORKFLOW_TASK_COMPLETED":
            current = []
            groups.append(current)
            accepted.append("")
            continue
        if current is None or kind not in COMMAND_EVENTS:
            current = None
            continue
        if kind == "WORKFLOW_EXECUTION_UPDATE_ACCEPTED":
            accepted[-1] = ev.workflow_execution_update_accepted_event_attributes \
                .accepted_request.input.name
        if kind == "ACTIVITY_TASK_SCHEDULED":
            kind += " " + ev.activity_task_scheduled_event_attributes.activity_type.name
        current.append(kind.removeprefix("WORKFLOW_EXECUTION_"))
    return [g for g, name in zip(groups, accepted, strict=True) if name == update]


def person_name(stack: Stack, key: str) -> str:
    return stack.seeded.persons[key]  # type: ignore[attr-defined,no-any-return]


async def test_rejection_delivers_reasons_and_issues_nothing(stack: Stack) -> None:
    name, applicant_md, org = await submit_permit(stack)
    acceptor = await officer(stack, "chen-jing")
    accept = await task_for(stack, acceptor, name, "acceptance")
    with pytest.raises(grpc.aio.AioRpcError) as err:  # a rejection needs reasons
        await claim_and_decide(stack, acceptor, accept.name, mpb.DECISION_REJECT)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    await stack.matters.DecideTask(mpb.DecideTaskRequest(
        name=accept.name, decision=mpb.DECISION_REJECT,
        reasons=["the business address is residential"]), metadata=acceptor)
    app = await wait_done(stack, name, applicant_md)
    assert app.status == mpb.APPLICATION_STATUS_REJECTED
    assert not app.result_certificate
    assert "the business address is residential" in next(
        e.message for e in app.timeline if e.kind == "rejected")


async def test_officer_cannot_decide_own_application(stack: Stack, ) -> None:
    # Chen Jing is an acceptor at sz-amr and a citizen. Authorised to act for Lotus Catering,
    # she submits its food-business permit: she may not take its acceptance task. Nor may
    # she take the task of the next application, which Li Wei (the legal representative)
    # submits: as the organisation's representative she has an interest in it too.
    org = stack.seeded.organisations["lotus-catering"]  # type: ignore[attr-defined]
    admin = await stack.service_md()
    from govflow.identity.v1 import identity_pb2 as ipb

    chen = person_name(stack, "chen-jing")
    await stack.identity.GrantRepresentation(ipb.GrantRepresentationRequest(
        organisation=org, person=chen), metadata=admin)
    try:
        as_rep = await stack.login(person("chen-jing").id_number, DEMO_PASSWORD, acting_for=org)
        sub = await stack.matters.SubmitApplication(mpb.SubmitApplicationRequest(
            matter="matters/food-business-permit", applicant=org, request_id=uuid.uuid4().hex,
            pledges=["fire-safety"]), metadata=as_rep)
        acceptor = await officer(stack, "chen-jing")
        # Her inbox leaves out the task she may not take (she submitted the application);
        # named all the same, it is refused.
        app = await wait_for(stack, as_rep, sub.application.name,
                             lambda a: "acceptance" in a.current_steps)
        own = f"tasks/{app.name.removeprefix('applications/')}-acceptance-sz-amr"
        inbox = await stack.matters.ListTasks(mpb.ListTasksRequest(page_size=100),
                                              metadata=acceptor)
        assert app.name not in {t.application for t in inbox.tasks}
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stack.matters.ClaimTask(mpb.ClaimTaskRequest(name=own), metadata=acceptor)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED

        by_li, li_md, _ = await submit_permit(stack)
        await wait_for(stack, li_md, by_li, lambda a: "acceptance" in a.current_steps)
        # Her inbox leaves this one out too: she represents the organisation.
        inbox = await stack.matters.ListTasks(mpb.ListTasksRequest(page_size=100),
                                              metadata=acceptor)
        assert by_li not in {t.application for t in inbox.tasks}
        accept = mpb.Task(name=f"tasks/{by_li.removeprefix('applications/')}-acceptance-sz-amr")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stack.matters.ClaimTask(mpb.ClaimTaskRequest(name=accept.name), metadata=acceptor)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "represent" in (err.value.details() or "")
        # A supervisor cannot hand it to her either.
        supervisor = await officer(stack, "sun-li")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stack.matters.ReassignTask(mpb.ReassignTaskRequest(
                name=accept.name, assignee=chen), metadata=supervisor)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        await stack.identity.RevokeRepresentation(ipb.RevokeRepresentationRequest(
            organisation=org, person=chen), metadata=admin)


async def test_inbox_leaves_out_the_officers_own_applications(stack: Stack) -> None:
    # Zhao Lei, a reviewer at sz-amr, applies as a citizen for a matter his agency reviews.
    # The review task is in his colleague's inbox, not in his: he may not take it.
    admin = await stack.service_md()
    zhao = person("zhao-lei")
    await stack.certificates.IssueCertificate(cpb.IssueCertificateRequest(
        certificate=cpb.Certificate(type="certificateTypes/resident-id-card",
                                    holder=person_name(stack, "zhao-lei"),
                                    fields={"id_number": zhao.id_number, "name": zhao.name,
                                            "birth_date": "1987-09-23", "gender": "M"}),
        request_id=uuid.uuid4().hex), metadata=admin)
    as_citizen = await stack.login(zhao.id_number, DEMO_PASSWORD)
    sub = await stack.matters.SubmitApplication(mpb.SubmitApplicationRequest(
        matter="matters/individual-business-registration", request_id=uuid.uuid4().hex),
        metadata=as_citizen)
    name = sub.application.name
    try:
        accept = await task_for(stack, await officer(stack, "chen-jing"), name, "acceptance")
        await claim_and_decide(stack, await officer(stack, "chen-jing"), accept.name)
        colleague = await officer(stack, "qian-hao")
        review = await task_for(stack, colleague, name, "review")
        as_official = await officer(stack, "zhao-lei")
        for filter_ in ("", "status=OPEN", "assignee=me"):
            inbox = await stack.matters.ListTasks(mpb.ListTasksRequest(
                page_size=100, filter=filter_), metadata=as_official)
            assert name not in {t.application for t in inbox.tasks}, filter_
        with pytest.raises(grpc.aio.AioRpcError) as err:  # as the workflow refuses it
            await stack.matters.ClaimTask(mpb.ClaimTaskRequest(name=review.name),
                                          metadata=as_official)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        # The colleague's inbox still has it, and it stays out of his once claimed.
        await stack.matters.ClaimTask(mpb.ClaimTaskRequest(name=review.name), metadata=colleague)
        await wait_for_inbox(stack, colleague, review.name, "status=CLAIMED")
        inbox = await stack.matters.ListTasks(mpb.ListTasksRequest(
            page_size=100, filter="status=CLAIMED"), metadata=as_official)
        assert review.name not in {t.name for t in inbox.tasks}
    finally:
        await stack.matters.WithdrawApplication(mpb.WithdrawApplicationRequest(
            name=name, reason="test done"), metadata=as_citizen)


async def wait_for_inbox(stack: Stack, md, task: str, filter_: str, timeout: float = 10) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        inbox = await stack.matters.ListTasks(mpb.ListTasksRequest(
            page_size=100, filter=filter_), metadata=md)
        if task in {t.name for t in inbox.tasks}:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{task} not in the inbox under {filter_!r}")
