"""The zero-visit slice end to end, through the public gRPC APIs only."""

from __future__ import annotations

import asyncio
import datetime as dt
import pathlib
import re
import uuid

import grpc
import pytest
from grpc_status import rpc_status

from govflow.certificates.v1 import certificates_pb2 as cpb
from govflow.errors import error_info, field_violations
from govflow.matters.v1 import matters_pb2 as mpb
from govflow_cli.demo_data import DEMO_PASSWORD, person
from tests.e2e.helpers import delegate, new_senior, wait_for
from tests.stack import Stack
from workflows.rules import age_on

TERMINAL = {mpb.APPLICATION_STATUS_COMPLETED, mpb.APPLICATION_STATUS_REJECTED,
            mpb.APPLICATION_STATUS_WITHDRAWN, mpb.APPLICATION_STATUS_FAILED}


async def wait_done(stack: Stack, name: str, md, timeout: float = 60) -> mpb.Application:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        app = (await stack.matters.GetApplication(mpb.GetApplicationRequest(name=name),
                                                  metadata=md)).application
        if app.status in TERMINAL or loop.time() > deadline:
            return app
        await asyncio.sleep(0.2)


async def test_instant_approval_issues_a_verifiable_certificate(stack: Stack) -> None:
    senior, md = await new_senior(stack)  # the card is one per holder
    sub = await stack.matters.SubmitApplication(mpb.SubmitApplicationRequest(
        matter="matters/senior-citizen-card", request_id=uuid.uuid4().hex), metadata=md)
    app = await wait_done(stack, sub.application.name, md)

    assert app.status == mpb.APPLICATION_STATUS_COMPLETED, [e.message for e in app.timeline]
    kinds = [e.kind for e in app.timeline]
    assert kinds[0] == "submitted"
    for expected in ("applicant_verified", "material_verified", "instant_approved",
                     "certificate_issued"):
        assert expected in kinds
    assert kinds.index("applicant_verified") < kinds.index("instant_approved") < kinds.index(
        "certificate_issued")
    assert app.decision_receipt.outcome == "approved"
    assert app.decision_receipt.rule_version == "matters/senior-citizen-card@v1"
    today = dt.date.today()
    assert any(f'"applicant.age": {age_on(senior.birth_date, today + dt.timedelta(days=d))}'
               in app.decision_receipt.inputs_json for d in (-1, 0, 1))
    assert app.workflow_id == "application-" + app.name.removeprefix("applications/")
    # Every timeline message is Simplified Chinese, with English beside it (message_en).
    for e in app.timeline:
        assert re.search(r"[\u4e00-\u9fff]", e.message) and e.message_en, (e.kind, e.message)
    by_kind = {e.kind: e for e in app.timeline}
    verified = sorted(e.message_en.split(":")[0] for e in app.timeline
                      if e.kind == "material_verified")
    assert verified == ["Household register", "Resident ID card"], verified
    assert by_kind["instant_approved"].message == "已自动审批通过（按规则）"
    assert by_kind["instant_approved"].message_en == "Approved by rule"
    assert by_kind["verification_started"].message.startswith("正在核验申请人身份")
    assert by_kind["certificate_issued"].message == (
        f"结果证照 {app.result_certificate} 已签发至电子证照夹")
    assert by_kind["certificate_issued"].message_en == (
        f"Result certificate {app.result_certificate} issued to the wallet")

    wallet = await stack.certificates.ListCertificates(
        cpb.ListCertificatesRequest(parent=app.applicant), metadata=md)
    mine = {c.name: c for c in wallet.certificates}
    assert app.result_certificate in mine
    issued = mine[app.result_certificate]
    assert issued.type == "certificateTypes/senior-citizen-card"
    assert issued.fields["holder_name"] == senior.display_name
    assert issued.fields["birth_date"] == senior.birth_date
    ver = await stack.certificates.VerifyCertificate(
        cpb.VerifyCertificateRequest(name=app.result_certificate), metadata=md)
    assert ver.valid and not ver.failures

    # The auditor's question "who saw my certificates?": the workflow's reads, per
    # application and purpose, under the grant the submission made; released at the end.
    log = await stack.certificates.ListAccessRecords(cpb.ListAccessRecordsRequest(
        parent=app.applicant, page_size=100), metadata=md)
    mine = [r for r in log.access_records if r.application == app.name]
    assert {r.purpose for r in mine} == {"application-processing"}
    assert {r.accessor for r in mine} == {"partners/govflow-worker"}
    done = await wait_for(stack, md, app.name,
                          lambda a: "consent_released" in [e.kind for e in a.timeline])
    released = next(e for e in done.timeline if e.kind == "consent_released")
    # Chinese first: the message in Chinese, the English beside it (message_en).
    assert released.message_en.startswith("2 certificate access grant(s)"), released.message_en
    assert released.message == "2 项证照调用授权已随本申请结束", released.message

    # The admin sees it in Temporal under its readable id, with its search attributes.
    # The read model shows the end before the workflow closes (it still records its last
    # events and releases the grants): wait for the close before asking Temporal.
    handle = stack.client.get_workflow_handle(app.workflow_id)
    await asyncio.wait_for(handle.result(), 60)
    desc = await handle.describe()
    assert desc.status is not None and desc.status.name == "COMPLETED"
    sa = {k.name: v for k, v in desc.typed_search_attributes}  # type: ignore[attr-defined]
    assert sa["GovflowMatter"] == "senior-citizen-card"
    assert sa["GovflowStatus"] == "COMPLETED"
    assert sa["GovflowApplicant"] == app.applicant


async def test_rules_not_met_rejects_with_reasons(stack: Stack) -> None:
    young = person("li-wei")  # 36 years old: below the senior card's age rule
    md = await stack.login(young.id_number, DEMO_PASSWORD)
    sub = await stack.matters.SubmitApplication(mpb.SubmitApplicationRequest(
        matter="matters/senior-citizen-card", request_id=uuid.uuid4().hex), metadata=md)
    app = await wait_done(stack, sub.application.name, md)
    assert app.status == mpb.APPLICATION_STATUS_REJECTED
    assert not app.result_certificate
    assert app.decision_receipt.outcome == "not_approved"
    assert any("age" in e and "failed" in e for e in app.decision_receipt.explanations)


# The senior card's matter with a result field its certificate type does not have: the
# certificates service refuses the issue for good (INVALID_ARGUMENT).
UNISSUABLE = (pathlib.Path(__file__).parents[2] / "services/matters/catalogue/"
              "senior-citizen-card.yaml").read_text().replace(
    "code: senior-citizen-card", "code: senior-card-unissuable").replace(
    'region: "440300"', 'region: "440300"\n    favourite_colour: "blue"')


async def test_an_issue_refused_for_good_fails_the_application_with_its_timeline(
        stack: Stack) -> None:
    admin = await stack.service_md()
    await stack.matters.PublishMatter(mpb.PublishMatterRequest(definition_yaml=UNISSUABLE),
                                      metadata=admin)
    _senior, md = await new_senior(stack)
    sub = await stack.matters.SubmitApplication(mpb.SubmitApplicationRequest(
        matter="matters/senior-card-unissuable", request_id=uuid.uuid4().hex), metadata=md)
    app = await wait_done(stack, sub.application.name, md)
    assert app.status == mpb.APPLICATION_STATUS_FAILED, [e.message_en for e in app.timeline]
    assert not app.result_certificate
    # What happened before the refused issue is in the timeline, in order, then the end.
    done = await wait_for(stack, md, app.name,
                          lambda a: "consent_released" in [e.kind for e in a.timeline])
    kinds = [e.kind for e in done.timeline]
    assert kinds.index("material_verified") < kinds.index("instant_approved") \
        < kinds.index("failed"), kinds
    assert "certificate_issued" not in kinds
    failed = next(e for e in done.timeline if e.kind == "failed")
    assert "issue_certificate" in failed.message_en and "favourite_colour" in failed.message_en
    wallet = await stack.certificates.ListCertificates(
        cpb.ListCertificatesRequest(parent=app.applicant), metadata=md)
    assert not [c for c in wallet.certificates
                if c.type == "certificateTypes/senior-citizen-card"]


async def test_same_request_id_gives_one_application(stack: Stack) -> None:
    _, md = await new_senior(stack)
    rid = uuid.uuid4().hex
    req = mpb.SubmitApplicationRequest(matter="matters/senior-citizen-card", request_id=rid)
    first = await stack.matters.SubmitApplication(req, metadata=md)
    again = await stack.matters.SubmitApplication(req, metadata=md)
    racing = await asyncio.gather(*[stack.matters.SubmitApplication(req, metadata=md)
                                    for _ in range(5)])
    names = {first.application.name, again.application.name, *(r.application.name for r in racing)}
    assert names == {first.application.name}
    app = await wait_done(stack, first.application.name, md)
    assert app.status == mpb.APPLICATION_STATUS_COMPLETED
    listed = await stack.matters.ListApplications(mpb.ListApplicationsRequest(
        filter="matter=matters/senior-citizen-card", page_size=100), metadata=md)
    assert sum(1 for a in listed.applications if a.name == first.application.name) == 1


SENIOR_CARD = "matters/senior-citizen-card"


def held_error(err: grpc.aio.AioRpcError) -> dict[str, str]:
    """The ErrorInfo metadata of a RESULT_ALREADY_HELD refusal (asserting it is one)."""
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, err
    info = error_info(rpc_status.from_call(err))  # type: ignore[arg-type]
    assert info is not None and info.reason == "RESULT_ALREADY_HELD", info
    assert info.metadata["matter"] == SENIOR_CARD
    return dict(info.metadata)


async def test_a_second_card_is_refused_while_the_first_stands(stack: Stack) -> None:
    """The senior card is one per holder: a second application is refused while the first
    is open or its card stands — at once and under concurrent submissions — and nothing
    is written; the first request sent again still gets the first application."""
    matter = (await stack.matters.GetMatter(mpb.GetMatterRequest(name=SENIOR_CARD))).matter
    assert matter.one_per_holder

    senior, md = await new_senior(stack)
    rid = uuid.uuid4().hex
    first = (await stack.matters.SubmitApplication(mpb.SubmitApplicationRequest(
        matter=SENIOR_CARD, request_id=rid), metadata=md)).application.name
    # While it is open: the same request again (idempotency first) and new requests at once.
    results = await asyncio.gather(*[stack.matters.SubmitApplication(
        mpb.SubmitApplicationRequest(matter=SENIOR_CARD, request_id=r), metadata=md)
        for r in [rid] * 3 + [uuid.uuid4().hex for _ in range(4)]], return_exceptions=True)
    assert [r.application.name for r in results[:3]] == [first] * 3, results[:3]  # type: ignore[union-attr]
    for err in results[3:]:
        assert isinstance(err, grpc.aio.AioRpcError), err
        assert held_error(err)["application"] == first
        assert first in (err.details() or "") and "still open" in (err.details() or "")

    app = await wait_done(stack, first, md)
    assert app.status == mpb.APPLICATION_STATUS_COMPLETED
    with pytest.raises(grpc.aio.AioRpcError) as err:  # completed: the card stands
        await stack.matters.SubmitApplication(mpb.SubmitApplicationRequest(
            matter=SENIOR_CARD, request_id=uuid.uuid4().hex), metadata=md)
    assert held_error(err.value)["application"] == first
    assert "its result stands" in (err.value.details() or "")
    again = await stack.matters.SubmitApplication(mpb.SubmitApplicationRequest(
        matter=SENIOR_CARD, request_id=rid), metadata=md)
    assert again.application.name == first

    # A partner submitting for the holder is refused too, without the application's name
    # (it did not submit it and may not read it).
    from govflow.identity.v1 import identity_pb2 as ipb

    client_id = f"hall-{uuid.uuid4().hex[:6]}"
    made = await stack.identity.CreatePartner(ipb.CreatePartnerRequest(partner=ipb.Partner(
        client_id=client_id, display_name="A service hall", scopes=["applications.submit"])),
        metadata=await stack.service_md())
    tokens = await stack.identity.AuthenticatePartner(ipb.AuthenticatePartnerRequest(
        client_id=client_id, client_secret=made.client_secret))
    await delegate(stack, md, senior.name, f"partners/{client_id}", [SENIOR_CARD])
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.matters.SubmitApplication(mpb.SubmitApplicationRequest(
            matter=SENIOR_CARD, applicant=senior.name, request_id=uuid.uuid4().hex),
            metadata=(("authorization", f"Bearer {tokens.tokens.access_token}"),))
    assert "application" not in held_error(err.value)
    assert first not in (err.value.details() or "")

    listed = await stack.matters.ListApplications(mpb.ListApplicationsRequest(
        page_size=100), metadata=md)
    assert [a.name for a in listed.applications] == [first]  # nothing else was written

    # Another holder's submissions racing each other, with no application before them:
    # exactly one is made.
    _, racer = await new_senior(stack)
    raced = await asyncio.gather(*[stack.matters.SubmitApplication(
        mpb.SubmitApplicationRequest(matter=SENIOR_CARD, request_id=uuid.uuid4().hex),
        metadata=racer) for _ in range(6)], return_exceptions=True)
    won = [r.application.name for r in raced if not isinstance(r, BaseException)]
    assert len(won) == 1, raced
    for r in raced:
        if isinstance(r, BaseException):
            assert isinstance(r, grpc.aio.AioRpcError) and held_error(r)["application"] == won[0]
    listed = await stack.matters.ListApplications(mpb.ListApplicationsRequest(
        page_size=100), metadata=racer)
    assert [a.name for a in listed.applications] == won
    await wait_done(stack, won[0], racer)


async def test_a_refused_card_does_not_stand_in_the_way(stack: Stack) -> None:
    """A rejected application holds no card: the applicant may apply again."""
    md = await stack.login(person("li-wei").id_number, DEMO_PASSWORD)  # too young: rejected
    first = (await stack.matters.SubmitApplication(mpb.SubmitApplicationRequest(
        matter=SENIOR_CARD, request_id=uuid.uuid4().hex), metadata=md)).application.name
    assert (await wait_done(stack, first, md)).status == mpb.APPLICATION_STATUS_REJECTED
    second = (await stack.matters.SubmitApplication(mpb.SubmitApplicationRequest(
        matter=SENIOR_CARD, request_id=uuid.uuid4().hex), metadata=md)).application.name
    assert second != first
    assert (await wait_done(stack, second, md)).status == mpb.APPLICATION_STATUS_REJECTED


async def test_the_demo_runs_again_and_shows_the_card_held(
        stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    """`govflow demo` applies for Wang Fang's senior card; run again, it shows the
    application that made the card instead of failing on RESULT_ALREADY_HELD."""
    from govflow_cli import demo_client

    assert await demo_client.run(stack.settings) == 0
    first = capsys.readouterr().out
    assert await demo_client.run(stack.settings) == 0
    again = capsys.readouterr().out
    assert "Not submitted again: You already applied" in again
    assert "Status: COMPLETED" in first and "Status: COMPLETED" in again
    shown = next(line for line in again.splitlines() if "already applied" in line)
    assert shown.split("applications/")[1].split(",")[0] in first
    # `govflow demo --en`: the same timeline, in English.
    assert await demo_client.run(stack.settings, english=True) == 0
    english = capsys.readouterr().out
    assert "instant_approved         Approved by rule" in english, english
    assert "Submitted for Senior citizen preferential card" in english, english
    assert "已自动审批" not in english and "已自动审批" in first


async def test_request_id_reused_for_another_request_is_refused(stack: Stack) -> None:
    """AIP-155: the same request_id with the same request gets the same application; with
    another request (matter, applicant or pledges) it is refused and nothing is written."""
    young = person("li-wei")  # refused by the card's rules: holds no card afterwards
    md = await stack.login(young.id_number, DEMO_PASSWORD)
    enterprise = stack.seeded.organisations["lotus-catering"]  # type: ignore[attr-defined]
    for_enterprise = await stack.login(young.id_number, DEMO_PASSWORD, acting_for=enterprise)
    rid = uuid.uuid4().hex
    first = await stack.matters.SubmitApplication(mpb.SubmitApplicationRequest(
        matter="matters/senior-citizen-card", request_id=rid), metadata=md)
    # Li Wei's and the enterprise's applications, newest first.
    listing = mpb.ListApplicationsRequest(page_size=100)
    before = {a.name for a in (await stack.matters.ListApplications(
        listing, metadata=for_enterprise)).applications}

    others = [
        (mpb.SubmitApplicationRequest(matter="matters/individual-business-registration",
                                      request_id=rid), md, "matter"),
        (mpb.SubmitApplicationRequest(matter="matters/senior-citizen-card", request_id=rid,
                                      pledges=["household"]), md, "pledges"),
        (mpb.SubmitApplicationRequest(matter="matters/food-business-permit",
                                      applicant=enterprise, request_id=rid), for_enterprise,
         "matter and applicant"),
    ]
    for req, caller, what in others:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stack.matters.SubmitApplication(req, metadata=caller)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, what
        status = rpc_status.from_call(err.value)
        assert status is not None
        info = error_info(status)
        assert info is not None and info.reason == "REQUEST_ID_REUSED", what
        assert info.metadata["application"] == first.application.name
        assert set(field_violations(status)) == {"request_id"}
        assert first.application.name in err.value.details() and what in err.value.details()

    # The same request again: the same application, as before.
    again = await stack.matters.SubmitApplication(mpb.SubmitApplicationRequest(
        matter="matters/senior-citizen-card", request_id=rid), metadata=md)
    assert again.application.name == first.application.name
    after = {a.name for a in (await stack.matters.ListApplications(
        listing, metadata=for_enterprise)).applications}
    assert after == before and first.application.name in after
    await wait_done(stack, first.application.name, md)


async def test_bad_submission_is_refused_with_fields_and_changes_nothing(stack: Stack) -> None:
    citizen = person("wang-fang")
    md = await stack.login(citizen.id_number, DEMO_PASSWORD)
    before = await stack.matters.ListApplications(mpb.ListApplicationsRequest(page_size=100),
                                                  metadata=md)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.matters.SubmitApplication(mpb.SubmitApplicationRequest(
            matter="senior-citizen-card", request_id=""), metadata=md)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(err.value)
    assert status is not None
    assert set(field_violations(status)) == {"matter", "request_id"}
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.matters.SubmitApplication(mpb.SubmitApplicationRequest(
            matter="matters/no-such-matter", request_id=uuid.uuid4().hex), metadata=md)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    info = error_info(rpc_status.from_call(err.value))  # type: ignore[arg-type]
    assert info is not None and info.reason == "MATTER_NOT_FOUND"
    after = await stack.matters.ListApplications(mpb.ListApplicationsRequest(page_size=100),
                                                 metadata=md)
    assert len(after.applications) == len(before.applications)


async def test_anonymous_and_foreign_callers_are_refused(stack: Stack) -> None:
    _, md = await new_senior(stack)
    sub = await stack.matters.SubmitApplication(mpb.SubmitApplicationRequest(
        matter="matters/senior-citizen-card", request_id=uuid.uuid4().hex), metadata=md)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.matters.GetApplication(mpb.GetApplicationRequest(name=sub.application.name))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    other = await stack.login(person("li-wei").id_number, DEMO_PASSWORD)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.matters.GetApplication(mpb.GetApplicationRequest(name=sub.application.name),
                                           metadata=other)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_partner_submits_on_behalf_with_its_scope(stack: Stack) -> None:
    from govflow.identity.v1 import identity_pb2 as ipb

    admin = await stack.service_md()
    client_id = f"hall-{uuid.uuid4().hex[:6]}"
    made = await stack.identity.CreatePartner(ipb.CreatePartnerRequest(partner=ipb.Partner(
        client_id=client_id, display_name="Another province's service hall",
        scopes=["applications.submit"])), metadata=admin)
    tokens = await stack.identity.AuthenticatePartner(ipb.AuthenticatePartnerRequest(
        client_id=client_id, client_secret=made.client_secret))
    partner = (("authorization", f"Bearer {tokens.tokens.access_token}"),)
    senior, owner = await new_senior(stack)
    holder = senior.name
    await delegate(stack, owner, holder, f"partners/{client_id}", ["matters/senior-citizen-card"])

    with pytest.raises(grpc.aio.AioRpcError) as err:  # on behalf of whom?
        await stack.matters.SubmitApplication(mpb.SubmitApplicationRequest(
            matter="matters/senior-citizen-card", request_id=uuid.uuid4().hex), metadata=partner)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    sub = await stack.matters.SubmitApplication(mpb.SubmitApplicationRequest(
        matter="matters/senior-citizen-card", applicant=holder, request_id=uuid.uuid4().hex),
        metadata=partner)
    assert sub.application.submitted_by == f"partners/{client_id}"
    app = await wait_done(stack, sub.application.name, owner)  # the citizen sees it too
    assert app.status == mpb.APPLICATION_STATUS_COMPLETED, [e.message for e in app.timeline]
    assert app.applicant == holder

    # An applicant that does not exist granted no delegation: refused, nothing written.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.matters.SubmitApplication(mpb.SubmitApplicationRequest(
            matter="matters/senior-citizen-card", applicant="persons/nobody",
            request_id=uuid.uuid4().hex), metadata=partner)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED

    # A partner without the scope may not submit.
    other = f"bank-{uuid.uuid4().hex[:6]}"
    made = await stack.identity.CreatePartner(ipb.CreatePartnerRequest(partner=ipb.Partner(
        client_id=other, display_name="A bank", scopes=["certificates.verify"])), metadata=admin)
    tokens = await stack.identity.AuthenticatePartner(ipb.AuthenticatePartnerRequest(
        client_id=other, client_secret=made.client_secret))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.matters.SubmitApplication(mpb.SubmitApplicationRequest(
            matter="matters/senior-citizen-card", applicant=holder, request_id=uuid.uuid4().hex),
            metadata=(("authorization", f"Bearer {tokens.tokens.access_token}"),))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_agencies_are_named_in_chinese_with_english_beside(stack: Stack) -> None:
    """Chinese first: an agency's display_name is Chinese, display_name_en beside it; a
    seeding that creates an agency again names it anew (nothing else changes)."""
    from govflow.identity.v1 import identity_pb2 as ipb

    listed = await stack.identity.ListAgencies(ipb.ListAgenciesRequest(page_size=100))
    amr = next(a for a in listed.agencies if a.code == "sz-amr")
    assert (amr.display_name, amr.display_name_en) == (
        "深圳市市场监督管理局", "Shenzhen Administration for Market Regulation")
    admin = await stack.service_md()
    code = f"tmp-{uuid.uuid4().hex[:6]}"

    async def create(zh: str, en: str) -> ipb.Agency:
        made = await stack.identity.CreateAgency(ipb.CreateAgencyRequest(agency=ipb.Agency(
            code=code, display_name=zh, display_name_en=en, division_code="440300",
            level=ipb.AGENCY_LEVEL_CITY)), metadata=admin)
        return made.agency

    first = await create("临时局", "Interim Bureau")
    assert (first.display_name, first.display_name_en) == ("临时局", "Interim Bureau")
    again = await create("临时事务局", "Interim Affairs Bureau")
    assert (again.display_name, again.display_name_en) == ("临时事务局", "Interim Affairs Bureau")
    assert again.division_code == first.division_code and again.level == first.level
