"""Every application path through the public gRPC APIs on the real stack; timers are
driven with per-workflow time skipping (a 5-working-day limit passes in about a second)."""

from __future__ import annotations

import asyncio
import datetime as dt

import grpc
import pytest

from govflow.certificates.v1 import certificates_pb2 as cpb
from govflow.matters.v1 import matters_pb2 as mpb
from services.matters import calendars, working_days
from tests.e2e.helpers import (
    approve,
    citizen,
    fast_forward,
    get,
    new_senior,
    official,
    org,
    person_name,
    submit,
    task_for,
    wait_done,
    wait_for,
    wait_status,
)
from tests.stack import Stack

AMR, CAB, HCB = "agencies/sz-amr", "agencies/sz-cab", "agencies/sz-hcb"


async def test_escalation_on_breach_marks_overdue_and_reaches_the_supervisor(stack: Stack) -> None:
    applicant = await citizen(stack, "li-wei")
    name = await submit(stack, applicant, "matters/individual-business-registration")
    acceptor = await official(stack, "chen-jing", AMR)
    task = await task_for(stack, acceptor, name, "acceptance")
    # The step's limit is one working day, counted on the China calendar from creation.
    created = task.create_time.ToDatetime(tzinfo=dt.UTC)
    seeded = working_days.Calendar("CN", calendars.package_years())
    assert task.due_time.ToDatetime(tzinfo=dt.UTC) == working_days.due_time(created, 1, seeded).time
    assert not (await get(stack, applicant, name)).overdue

    await fast_forward(stack, name, dt.timedelta(days=6))  # past any weekend or holiday
    app = await wait_for(stack, applicant, name, lambda a: a.overdue)
    kinds = [e.kind for e in app.timeline]
    assert "reminder" in kinds and "escalated" in kinds
    assert kinds.index("reminder") < kinds.index("escalated")
    assert app.status == mpb.APPLICATION_STATUS_IN_REVIEW  # it stays open

    supervisor = await official(stack, "sun-li", AMR)  # supervisor + admin, not an acceptor
    inbox = await stack.matters.ListTasks(mpb.ListTasksRequest(filter="overdue=true",
                                                               page_size=100), metadata=supervisor)
    assert task.name in {t.name for t in inbox.tasks}
    listed = await stack.matters.ListApplications(mpb.ListApplicationsRequest(
        filter="overdue=true AND matter=matters/individual-business-registration",
        page_size=100), metadata=supervisor)
    assert name in {a.name for a in listed.applications}
    # Admins find it in Temporal with the overdue search attribute.
    handle = stack.client.get_workflow_handle(app.workflow_id)
    sa = {k.name: v for k, v in (await handle.describe()).typed_search_attributes}  # type: ignore[attr-defined]
    assert sa["GovflowOverdue"] is True
    # The supervisor hands it to another official, who finishes the step.
    reassigned = await stack.matters.ReassignTask(mpb.ReassignTaskRequest(
        name=task.name, assignee=person_name(stack, "chen-jing")), metadata=supervisor)
    assert reassigned.task.assignee == person_name(stack, "chen-jing")
    await stack.matters.DecideTask(mpb.DecideTaskRequest(
        name=task.name, decision=mpb.DECISION_APPROVE), metadata=acceptor)
    await task_for(stack, await official(stack, "zhao-lei", AMR), name, "review")


async def test_supplement_then_approval_pauses_the_clock(stack: Stack) -> None:
    applicant = await citizen(stack, "li-wei")
    name = await submit(stack, applicant, "matters/individual-business-registration")
    acceptor = await official(stack, "chen-jing", AMR)
    task = await task_for(stack, acceptor, name, "acceptance")
    before = await get(stack, applicant, name)
    await stack.matters.ClaimTask(mpb.ClaimTaskRequest(name=task.name), metadata=acceptor)
    with pytest.raises(grpc.aio.AioRpcError) as err:  # must name what is missing
        await stack.matters.DecideTask(mpb.DecideTaskRequest(
            name=task.name, decision=mpb.DECISION_REQUEST_SUPPLEMENT), metadata=acceptor)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    await stack.matters.DecideTask(mpb.DecideTaskRequest(
        name=task.name, decision=mpb.DECISION_REQUEST_SUPPLEMENT,
        missing_materials=["id-card"]), metadata=acceptor)
    app = await wait_status(stack, applicant, name, mpb.APPLICATION_STATUS_SUPPLEMENT_REQUESTED)
    assert list(app.missing_materials) == ["id-card"]
    assert app.supplement_due_time.seconds > 0

    await asyncio.sleep(1.5)  # the clock stands still meanwhile
    ids = await stack.certificates.ListCertificates(cpb.ListCertificatesRequest(
        parent=app.applicant, filter="type=certificateTypes/resident-id-card"), metadata=applicant)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.matters.SupplyMaterials(mpb.SupplyMaterialsRequest(name=name), metadata=applicant)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    resp = await stack.matters.SupplyMaterials(mpb.SupplyMaterialsRequest(
        name=name, materials=[mpb.SuppliedMaterial(code="id-card",
                                                   certificate=ids.certificates[0].name)]),
        metadata=applicant)
    assert resp.application.status == mpb.APPLICATION_STATUS_IN_REVIEW
    assert not resp.application.missing_materials
    assert resp.application.due_time.ToDatetime() - before.due_time.ToDatetime() >= dt.timedelta(seconds=1)
    # A second supply is refused: nothing is asked for any more.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.matters.SupplyMaterials(mpb.SupplyMaterialsRequest(
            name=name, materials=[mpb.SuppliedMaterial(code="id-card",
                                                       certificate=ids.certificates[0].name)]),
            metadata=applicant)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    second = await task_for(stack, acceptor, name, "acceptance")  # a new round of the step
    assert second.name == task.name + "-r2"
    await approve(stack, acceptor, second.name)
    reviewer = await official(stack, "zhao-lei", AMR)
    await approve(stack, reviewer, (await task_for(stack, reviewer, name, "review")).name)
    await approve(stack, reviewer, (await task_for(stack, reviewer, name, "approval")).name)
    done = await wait_done(stack, applicant, name)
    assert done.status == mpb.APPLICATION_STATUS_COMPLETED
    kinds = [e.kind for e in done.timeline]
    assert kinds.count("supplement_requested") == 1 and "materials_supplied" in kinds


async def test_supplement_timeout_ends_the_application(stack: Stack) -> None:
    applicant = await citizen(stack, "li-wei")
    name = await submit(stack, applicant, "matters/individual-business-registration")
    acceptor = await official(stack, "chen-jing", AMR)
    task = await task_for(stack, acceptor, name, "acceptance")
    await stack.matters.ClaimTask(mpb.ClaimTaskRequest(name=task.name), metadata=acceptor)
    await stack.matters.DecideTask(mpb.DecideTaskRequest(
        name=task.name, decision=mpb.DECISION_REQUEST_SUPPLEMENT,
        missing_materials=["a photo of the shop front"]), metadata=acceptor)
    await wait_status(stack, applicant, name, mpb.APPLICATION_STATUS_SUPPLEMENT_REQUESTED)
    await fast_forward(stack, name, dt.timedelta(days=12))  # 5 working days, with margin
    app = await wait_done(stack, applicant, name)
    assert app.status == mpb.APPLICATION_STATUS_REJECTED
    rejected = next(e for e in app.timeline if e.kind == "rejected")
    assert "not supplied" in rejected.message_en and "未在" in rejected.message, rejected
    assert not app.result_certificate


async def test_parallel_co_approval_needs_all_agencies(stack: Stack) -> None:
    applicant = await citizen(stack, "li-wei", acting_for=org(stack))
    name = await submit(stack, applicant, "matters/construction-permit", applicant=org(stack))
    lin = await official(stack, "lin-tao", HCB)
    await approve(stack, lin, (await task_for(stack, lin, name, "acceptance")).name)
    reviewers = {"agencies/sz-pnr": await official(stack, "he-yun", "agencies/sz-pnr"),
                 "agencies/sz-fire": await official(stack, "guo-qiang", "agencies/sz-fire"),
                 "agencies/sz-eeb": await official(stack, "ma-lan", "agencies/sz-eeb")}
    tasks = {a: await task_for(stack, md, name, "joint-review") for a, md in reviewers.items()}
    assert {t.agency for t in tasks.values()} == set(reviewers)
    # An official of one agency cannot touch another agency's task.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.matters.ClaimTask(mpb.ClaimTaskRequest(name=tasks["agencies/sz-fire"].name),
                                      metadata=reviewers["agencies/sz-pnr"])
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    for agency in ("agencies/sz-pnr", "agencies/sz-fire"):
        await approve(stack, reviewers[agency], tasks[agency].name)
    # Still so once the service has routed that task for its own agency's officer.
    for action in (mpb.ClaimTaskRequest(name=tasks["agencies/sz-fire"].name),
                   mpb.DecideTaskRequest(name=tasks["agencies/sz-fire"].name,
                                         decision=mpb.DECISION_REJECT, reasons=["no"])):
        call = (stack.matters.ClaimTask if isinstance(action, mpb.ClaimTaskRequest)
                else stack.matters.DecideTask)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call(action, metadata=reviewers["agencies/sz-pnr"])
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call(action, metadata=applicant)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    await asyncio.sleep(1.0)
    app = await get(stack, applicant, name)
    assert "joint-review" in app.current_steps  # two of three is not enough
    await approve(stack, reviewers["agencies/sz-eeb"], tasks["agencies/sz-eeb"].name)
    await approve(stack, lin, (await task_for(stack, lin, name, "approval")).name)
    done = await wait_done(stack, applicant, name)
    assert done.status == mpb.APPLICATION_STATUS_COMPLETED
    assert [e.kind for e in done.timeline].count("task_decided") == 5


async def test_parallel_any_needs_one_agency_and_cancels_the_rest(stack: Stack) -> None:
    applicant = await citizen(stack, "li-wei", acting_for=org(stack))
    name = await submit(stack, applicant, "matters/outdoor-signage-permit", applicant=org(stack))
    district = await official(stack, "luo-bin", "agencies/ft-uma")
    city = await official(stack, "xu-ning", "agencies/sz-uma")
    city_task = await task_for(stack, city, name, "review")
    await approve(stack, district, (await task_for(stack, district, name, "review")).name)
    done = await wait_done(stack, applicant, name)
    assert done.status == mpb.APPLICATION_STATUS_COMPLETED
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.matters.ClaimTask(mpb.ClaimTaskRequest(name=city_task.name), metadata=city)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    inbox = await stack.matters.ListTasks(mpb.ListTasksRequest(page_size=100), metadata=city)
    assert city_task.name not in {t.name for t in inbox.tasks}


async def test_withdrawal_in_review_and_during_supplement_issues_nothing(stack: Stack) -> None:
    applicant = await citizen(stack, "li-wei")
    stranger = await citizen(stack, "wang-fang")
    acceptor = await official(stack, "chen-jing", AMR)

    in_review = await submit(stack, applicant, "matters/individual-business-registration")
    task = await task_for(stack, acceptor, in_review, "acceptance")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.matters.WithdrawApplication(mpb.WithdrawApplicationRequest(
            name=in_review), metadata=stranger)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    resp = await stack.matters.WithdrawApplication(mpb.WithdrawApplicationRequest(
        name=in_review, reason="changed my mind"), metadata=applicant)
    assert resp.application.status == mpb.APPLICATION_STATUS_WITHDRAWN
    assert not resp.application.result_certificate
    with pytest.raises(grpc.aio.AioRpcError) as err:  # the open task went away with it
        await stack.matters.ClaimTask(mpb.ClaimTaskRequest(name=task.name), metadata=acceptor)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as err:  # twice is refused
        await stack.matters.WithdrawApplication(mpb.WithdrawApplicationRequest(
            name=in_review), metadata=applicant)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    supplementing = await submit(stack, applicant, "matters/individual-business-registration")
    task = await task_for(stack, acceptor, supplementing, "acceptance")
    await stack.matters.ClaimTask(mpb.ClaimTaskRequest(name=task.name), metadata=acceptor)
    await stack.matters.DecideTask(mpb.DecideTaskRequest(
        name=task.name, decision=mpb.DECISION_REQUEST_SUPPLEMENT, missing_materials=["lease"]),
        metadata=acceptor)
    await wait_status(stack, applicant, supplementing, mpb.APPLICATION_STATUS_SUPPLEMENT_REQUESTED)
    resp = await stack.matters.WithdrawApplication(mpb.WithdrawApplicationRequest(
        name=supplementing), metadata=applicant)
    assert resp.application.status == mpb.APPLICATION_STATUS_WITHDRAWN


async def test_withdrawal_after_the_decision_is_refused(stack: Stack) -> None:
    _, applicant = await new_senior(stack)  # the card is one per holder
    name = await submit(stack, applicant, "matters/senior-citizen-card")
    await wait_status(stack, applicant, name, mpb.APPLICATION_STATUS_COMPLETED)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.matters.WithdrawApplication(mpb.WithdrawApplicationRequest(name=name),
                                                metadata=applicant)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert (await get(stack, applicant, name)).result_certificate


async def permit_through_officers(stack: Stack, applicant, name: str) -> None:  # type: ignore[no-untyped-def]
    acceptor = await official(stack, "chen-jing", AMR)
    reviewer = await official(stack, "zhao-lei", AMR)
    await approve(stack, acceptor, (await task_for(stack, acceptor, name, "acceptance")).name)
    await approve(stack, reviewer, (await task_for(stack, reviewer, name, "review")).name)
    await approve(stack, reviewer, (await task_for(stack, reviewer, name, "approval")).name)


async def test_failed_pledge_check_revokes_the_certificate(stack: Stack) -> None:
    company = org(stack)
    applicant = await citizen(stack, "li-wei", acting_for=company)
    with pytest.raises(grpc.aio.AioRpcError) as err:  # only pledgeable materials
        await submit(stack, applicant, "matters/food-business-permit", applicant=company,
                     pledges=("business-licence",))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    name = await submit(stack, applicant, "matters/food-business-permit", applicant=company,
                        pledges=("fire-safety",))
    await permit_through_officers(stack, applicant, name)
    app = await wait_status(stack, applicant, name, mpb.APPLICATION_STATUS_COMPLETED)
    assert list(app.pledges) == ["fire-safety"]
    assert "material_pledged" in [e.kind for e in app.timeline]
    ok = await stack.certificates.VerifyCertificate(cpb.VerifyCertificateRequest(
        name=app.result_certificate), metadata=applicant)
    assert ok.valid

    await fast_forward(stack, name, dt.timedelta(days=40))  # 20 working days, with margin
    app = await wait_status(stack, applicant, name, mpb.APPLICATION_STATUS_REVOKED)
    assert "pledge_check_failed" in [e.kind for e in app.timeline]
    ver = await stack.certificates.VerifyCertificate(cpb.VerifyCertificateRequest(
        name=app.result_certificate), metadata=applicant)
    assert not ver.valid
    assert cpb.VERIFICATION_FAILURE_REVOKED in ver.failures


async def test_low_rating_opens_a_follow_up_for_the_supervisor(stack: Stack) -> None:
    _, applicant = await new_senior(stack)  # the card is one per holder
    name = await submit(stack, applicant, "matters/senior-citizen-card")
    await wait_status(stack, applicant, name, mpb.APPLICATION_STATUS_COMPLETED)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.matters.RateApplication(mpb.RateApplicationRequest(name=name, score=7),
                                            metadata=applicant)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    resp = await stack.matters.RateApplication(mpb.RateApplicationRequest(
        name=name, score=1, comment="took too long to find the button"), metadata=applicant)
    assert resp.application.rating == 1
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.matters.RateApplication(mpb.RateApplicationRequest(name=name, score=5),
                                            metadata=applicant)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    supervisor = await official(stack, "zhou-min", CAB)
    follow_up = await task_for(stack, supervisor, name, "follow-up")
    assert follow_up.kind == "follow_up" and follow_up.role == "supervisor"
    done = await approve(stack, supervisor, follow_up.name)
    assert done.status == mpb.TASK_STATUS_DECIDED


async def test_rating_before_the_end_is_refused(stack: Stack) -> None:
    applicant = await citizen(stack, "li-wei")
    name = await submit(stack, applicant, "matters/individual-business-registration")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.matters.RateApplication(mpb.RateApplicationRequest(name=name, score=4),
                                            metadata=applicant)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    await stack.matters.WithdrawApplication(mpb.WithdrawApplicationRequest(name=name),
                                            metadata=applicant)


async def test_life_event_runs_bundled_matters_in_order(stack: Stack) -> None:
    company = org(stack)
    applicant = await citizen(stack, "li-wei", acting_for=company)
    name = await submit(stack, applicant, "matters/open-a-restaurant", applicant=company)
    parent = await wait_status(stack, applicant, name, mpb.APPLICATION_STATUS_IN_REVIEW)
    assert len(parent.children) == 3
    fire = await official(stack, "guo-qiang", "agencies/sz-fire")
    signs = await official(stack, "luo-bin", "agencies/ft-uma")
    kids = {(await get(stack, applicant, c)).matter: c for c in parent.children}
    # The food permit waits for the fire inspection's certificate; the sign runs alongside.
    await approve(stack, signs, (await task_for(stack, signs, kids["matters/outdoor-signage-permit"], "review")).name)
    food = await get(stack, applicant, kids["matters/food-business-permit"])
    assert food.status == mpb.APPLICATION_STATUS_SUBMITTED
    inspection = kids["matters/fire-safety-inspection"]
    await approve(stack, fire, (await task_for(stack, fire, inspection, "inspection")).name)
    await approve(stack, fire, (await task_for(stack, fire, inspection, "approval")).name)
    await permit_through_officers(stack, applicant, kids["matters/food-business-permit"])
    done = await wait_done(stack, applicant, name)
    assert done.status == mpb.APPLICATION_STATUS_COMPLETED, [e.message for e in done.timeline]
    assert len(done.result_certificates) == 3
    food = await get(stack, applicant, kids["matters/food-business-permit"])
    assert "material_verified" in [e.kind for e in food.timeline]  # pulled, not pledged
    assert food.parent == name
    wallet = await stack.certificates.ListCertificates(cpb.ListCertificatesRequest(
        parent=company, page_size=100), metadata=applicant)
    assert set(done.result_certificates) <= {c.name for c in wallet.certificates}


async def test_statistics_for_an_agency(stack: Stack) -> None:
    _, applicant = await new_senior(stack)  # the card is one per holder
    name = await submit(stack, applicant, "matters/senior-citizen-card")
    await wait_status(stack, applicant, name, mpb.APPLICATION_STATUS_COMPLETED)
    cab = await official(stack, "zhou-min", CAB)
    stats = await stack.matters.GetStatistics(mpb.GetStatisticsRequest(), metadata=cab)
    mine = [m for m in stats.matters if m.matter == "matters/senior-citizen-card"]
    assert mine and mine[0].agency == CAB
    assert mine[0].counts["COMPLETED"] >= 1 and mine[0].decided >= 1
    assert 0.0 <= mine[0].on_time_rate <= 1.0
    assert all(m.agency == CAB for m in stats.matters)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.matters.GetStatistics(mpb.GetStatisticsRequest(filter=f"agency={AMR}"),
                                          metadata=cab)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.matters.GetStatistics(mpb.GetStatisticsRequest(), metadata=applicant)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_list_filters_by_dates_and_refuses_bad_filters(stack: Stack) -> None:
    _, applicant = await new_senior(stack)  # the card is one per holder
    name = await submit(stack, applicant, "matters/senior-citizen-card")
    app = await get(stack, applicant, name)
    created = app.create_time.ToDatetime(tzinfo=dt.UTC)
    after = (created - dt.timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    before = (created + dt.timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    hit = await stack.matters.ListApplications(mpb.ListApplicationsRequest(
        filter=f"created_after={after} AND created_before={before}", page_size=100),
        metadata=applicant)
    assert name in {a.name for a in hit.applications}
    miss = await stack.matters.ListApplications(mpb.ListApplicationsRequest(
        filter=f"created_after={before}", page_size=100), metadata=applicant)
    assert name not in {a.name for a in miss.applications}
    for bad in ("created_after=yesterday", "colour=blue", "status=SLEEPING", "overdue"):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stack.matters.ListApplications(mpb.ListApplicationsRequest(filter=bad),
                                                 metadata=applicant)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, bad
    acceptor = await official(stack, "chen-jing", AMR)
    soon = await stack.matters.ListTasks(mpb.ListTasksRequest(filter="due_soon=true"),
                                         metadata=acceptor)
    horizon = dt.datetime.now(dt.UTC) + dt.timedelta(hours=24, minutes=1)
    assert all(t.due_time.ToDatetime(tzinfo=dt.UTC) <= horizon and not t.overdue
               for t in soon.tasks)
