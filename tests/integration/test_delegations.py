"""Delegations on the whole stack (SQLite and PostgreSQL): a partner submits, reads,
lists, withdraws for a citizen or an organisation only under a live delegation that the
citizen (or the organisation's legal representative) granted to that partner for that
matter; every such action is in the grantor's access records (identity's
ListDelegationUses) and audit chain. Refusals are PERMISSION_DENIED with NO_DELEGATION and
write nothing: no application, no workflow, no access record."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import grpc
import pytest
from google.protobuf import timestamp_pb2
from grpc_status import rpc_status
from sqlmodel import Session, col, select

from govflow import audit
from govflow.db import make_engine
from govflow.errors import error_info
from govflow.identity.v1 import identity_pb2 as ipb
from govflow.matters.v1 import matters_pb2 as mpb
from services.identity.domain import credit_code_check_char
from services.identity.store.audit import AUDIT_CHAIN
from services.identity.store.tables import AuditEntryRow, AuditHeadRow
from tests.security.support import Md, login, new_partner, new_person
from tests.stack import Stack


def _in(seconds: float) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds))
    return ts


def _reason(err: grpc.aio.AioRpcError) -> str:
    status = rpc_status.from_call(err)
    info = error_info(status) if status is not None else None
    return info.reason if info is not None else ""


async def publish_matter(stack: Stack, admin: Md, applicant_kind: str = "person") -> str:
    """A fresh matter with one review step (so applications stay open), not one per holder."""
    code = f"dlg-{uuid.uuid4().hex[:8]}"
    yaml = (f"code: {code}\ndisplay_name: Delegation test {code}\nagency: agencies/sz-amr\n"
            f"applicant_kind: {applicant_kind}\nlegal_limit_days: 10\npromised_limit_days: 5\n"
            "assurance_level: account\nmaterials: []\n"
            "steps:\n  - code: review\n    display_name: Review\n    role: reviewer\n"
            "    time_limit_days: 3\n"
            "result:\n  certificate_type: certificateTypes/individual-business-licence\n")
    await stack.matters.PublishMatter(mpb.PublishMatterRequest(definition_yaml=yaml),
                                      metadata=admin)
    return f"matters/{code}"


async def grant(stack: Stack, md: Md, parent: str, partner: str, matters: list[str],
                seconds: float = 3600) -> ipb.Delegation:
    r = await stack.identity.CreateDelegation(ipb.CreateDelegationRequest(
        parent=parent, delegation=ipb.Delegation(delegate=partner, matters=matters,
                                                 expire_time=_in(seconds))), metadata=md)
    return r.delegation


async def submit(stack: Stack, md: Md, matter: str, applicant: str,
                 request_id: str = "") -> mpb.Application:
    return (await stack.matters.SubmitApplication(mpb.SubmitApplicationRequest(
        matter=matter, applicant=applicant, request_id=request_id or uuid.uuid4().hex),
        metadata=md)).application


async def uses(stack: Stack, md: Md, grantor: str) -> list[ipb.DelegationUse]:
    return list((await stack.identity.ListDelegationUses(ipb.ListDelegationUsesRequest(
        parent=f"{grantor}/delegations/-", page_size=100), metadata=md)).uses)


async def applications_of(stack: Stack, md: Md) -> list[str]:
    r = await stack.matters.ListApplications(mpb.ListApplicationsRequest(page_size=100),
                                             metadata=md)
    return [a.name for a in r.applications]


async def refused(call: object, reason: str | None = "NO_DELEGATION",
                  code: grpc.StatusCode = grpc.StatusCode.PERMISSION_DENIED) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call  # type: ignore[misc]  # a grpc call object
    assert err.value.code() == code, err.value.details()
    if reason is not None:
        assert _reason(err.value) == reason, err.value.details()


async def test_partner_submits_reads_and_withdraws_only_under_a_live_delegation(
        stack: Stack) -> None:
    admin = await stack.service_md("govflow-admin")
    m, other_matter = await publish_matter(stack, admin), await publish_matter(stack, admin)
    citizen, number = await new_person(stack, admin, "Delegating Citizen")
    citizen_md = await login(stack, number)
    partner, partner_md = await new_partner(stack, admin, ["applications.submit"])
    stranger, stranger_md = await new_partner(stack, admin, ["applications.submit"])

    # Without a delegation: refused, and nothing written anywhere.
    rid = uuid.uuid4().hex
    await refused(submit(stack, partner_md, m, citizen, rid))
    assert await applications_of(stack, citizen_md) == []
    assert await applications_of(stack, partner_md) == []
    assert await uses(stack, citizen_md, citizen) == []

    d = await grant(stack, citizen_md, citizen, partner, [m])
    assert d.name.startswith(f"{citizen}/delegations/") and d.grantor == citizen
    assert d.granted_by == citizen and list(d.matters) == [m]

    # The refused request_id was never used: the same one now submits.
    app = await submit(stack, partner_md, m, citizen, rid)
    assert app.submitted_by == partner and app.applicant == citizen and app.delegation == d.name
    seen = (await stack.matters.GetApplication(mpb.GetApplicationRequest(name=app.name),
                                               metadata=citizen_md)).application
    assert seen.submitted_by == partner and seen.delegation == d.name
    await stack.matters.GetApplication(mpb.GetApplicationRequest(name=app.name),
                                       metadata=partner_md)
    assert await applications_of(stack, partner_md) == [app.name]

    # Wrong matter, wrong partner: refused, nothing written.
    before = len(await uses(stack, citizen_md, citizen))
    await refused(submit(stack, partner_md, other_matter, citizen))
    await refused(submit(stack, stranger_md, m, citizen))
    assert await applications_of(stack, citizen_md) == [app.name]
    # The stranger is no party to the partner's application: not there at all.
    await refused(stack.matters.GetApplication(mpb.GetApplicationRequest(name=app.name),
                                               metadata=stranger_md),
                  "APPLICATION_NOT_FOUND", grpc.StatusCode.NOT_FOUND)
    assert len(await uses(stack, citizen_md, citizen)) == before

    # Every action under the delegation is in the citizen's access records, newest first.
    records = await uses(stack, citizen_md, citizen)
    assert [u.action for u in records] == ["ListApplications", "GetApplication",
                                           "SubmitApplication"]
    assert {u.partner for u in records} == {partner}
    assert {u.delegation for u in records} == {d.name}
    assert records[0].target == app.name and records[2].matter == m
    one = await stack.identity.ListDelegationUses(ipb.ListDelegationUsesRequest(
        parent=d.name), metadata=citizen_md)
    assert len(one.uses) == 3

    # Revoked: every further action is refused and the partner's list no longer shows it.
    revoked = (await stack.identity.RevokeDelegation(ipb.RevokeDelegationRequest(
        name=d.name), metadata=citizen_md)).delegation
    assert revoked.HasField("revoke_time")
    before = len(await uses(stack, citizen_md, citizen))
    await refused(stack.matters.GetApplication(mpb.GetApplicationRequest(name=app.name),
                                               metadata=partner_md))
    await refused(stack.matters.WithdrawApplication(mpb.WithdrawApplicationRequest(
        name=app.name, reason="no longer"), metadata=partner_md))
    await refused(submit(stack, partner_md, m, citizen))
    assert await applications_of(stack, partner_md) == []
    assert len(await uses(stack, citizen_md, citizen)) == before
    still = (await stack.matters.GetApplication(mpb.GetApplicationRequest(name=app.name),
                                                metadata=citizen_md)).application
    assert still.status != mpb.APPLICATION_STATUS_WITHDRAWN

    # A new delegation lets it act again: past the check, the workflow answers (nothing
    # was asked for, so supplying is FAILED_PRECONDITION), and then it withdraws.
    d2 = await grant(stack, citizen_md, citizen, partner, [m, other_matter])
    await refused(stack.matters.SupplyMaterials(mpb.SupplyMaterialsRequest(
        name=app.name, materials=[mpb.SuppliedMaterial(code="x", upload_uri="https://x/y")]),
        metadata=partner_md), None, grpc.StatusCode.FAILED_PRECONDITION)
    assert (await uses(stack, citizen_md, citizen))[0].action == "SupplyMaterials"
    done = (await stack.matters.WithdrawApplication(mpb.WithdrawApplicationRequest(
        name=app.name, reason="the citizen asked"), metadata=partner_md)).application
    assert done.status == mpb.APPLICATION_STATUS_WITHDRAWN
    assert (await uses(stack, citizen_md, citizen))[0].action == "WithdrawApplication"
    assert (await uses(stack, citizen_md, citizen))[0].delegation == d2.name

    listed = await stack.identity.ListDelegations(ipb.ListDelegationsRequest(parent=citizen),
                                                  metadata=citizen_md)
    assert [x.name for x in listed.delegations] == [d2.name]
    everything = await stack.identity.ListDelegations(ipb.ListDelegationsRequest(
        parent=citizen, show_inactive=True), metadata=citizen_md)
    assert {x.name for x in everything.delegations} == {d.name, d2.name}
    mine = await stack.identity.ListDelegations(ipb.ListDelegationsRequest(parent=partner),
                                                metadata=partner_md)
    assert [x.name for x in mine.delegations] == [d2.name]


async def test_expired_and_someone_elses_delegations_do_not_count(stack: Stack) -> None:
    admin = await stack.service_md("govflow-admin")
    m = await publish_matter(stack, admin)
    citizen, number = await new_person(stack, admin, "Citizen A")
    neighbour, neighbour_no = await new_person(stack, admin, "Citizen B")
    citizen_md, neighbour_md = await login(stack, number), await login(stack, neighbour_no)
    partner, partner_md = await new_partner(stack, admin, ["applications.submit"])

    # The neighbour's delegation lets the partner act for the neighbour, not for A.
    await grant(stack, neighbour_md, neighbour, partner, [m])
    await refused(submit(stack, partner_md, m, citizen))
    assert (await submit(stack, partner_md, m, neighbour)).applicant == neighbour

    # Expired: a delegation running out in a moment stops working then.
    await grant(stack, citizen_md, citizen, partner, [m], seconds=1.5)
    app = await submit(stack, partner_md, m, citizen)
    await asyncio.sleep(2)
    await refused(submit(stack, partner_md, m, citizen))
    await refused(stack.matters.GetApplication(mpb.GetApplicationRequest(name=app.name),
                                               metadata=partner_md))
    assert await applications_of(stack, citizen_md) == [app.name]
    assert [u.action for u in await uses(stack, citizen_md, citizen)] == ["SubmitApplication"]
    # Each grantor sees only their own records.
    assert [u.action for u in await uses(stack, neighbour_md, neighbour)] == [
        "SubmitApplication"]
    await refused(stack.identity.ListDelegationUses(ipb.ListDelegationUsesRequest(
        parent=f"{citizen}/delegations/-"), metadata=neighbour_md),
        "PERSON_NOT_FOUND", grpc.StatusCode.NOT_FOUND)


async def test_organisation_delegation_by_its_legal_representative(stack: Stack) -> None:
    admin = await stack.service_md("govflow-admin")
    m = await publish_matter(stack, admin, "organisation")
    boss, boss_no = await new_person(stack, admin, "Legal Rep")
    clerk, clerk_no = await new_person(stack, admin, "Clerk")
    first = f"91440300MA{uuid.uuid4().int % 10**7:07d}"
    org = (await stack.identity.CreateOrganisation(ipb.CreateOrganisationRequest(
        organisation=ipb.Organisation(credit_code=first + credit_code_check_char(first),
                                      display_name="Delegating Ltd",
                                      legal_representative=boss)),
        metadata=admin)).organisation.name
    boss_md = await login(stack, boss_no)
    await stack.identity.GrantRepresentation(ipb.GrantRepresentationRequest(
        organisation=org, person=clerk), metadata=boss_md)
    clerk_md = await login(stack, clerk_no, acting_for=org)
    partner, partner_md = await new_partner(stack, admin, ["applications.submit"])

    # A representative acts for the organisation but may not hand that on to a partner.
    await refused(grant(stack, clerk_md, org, partner, [m]), "NOT_LEGAL_REPRESENTATIVE")
    # Nor may a platform admin: the permission must come from the organisation.
    await refused(grant(stack, admin, org, partner, [m]), "NOT_LEGAL_REPRESENTATIVE")
    await refused(submit(stack, partner_md, m, org))

    d = await grant(stack, boss_md, org, partner, [m])
    rid = uuid.uuid4().hex
    app = await submit(stack, partner_md, m, org, rid)
    assert app.delegation == d.name and app.applicant == org
    # The representative sees the organisation's access records; so does the legal rep.
    for md in (clerk_md, boss_md):
        records = await uses(stack, md, org)
        assert [(u.action, u.target, u.partner) for u in records] == [
            ("SubmitApplication", f"request_id:{rid}", partner)]


async def test_delegation_requests_are_checked(stack: Stack) -> None:
    admin = await stack.service_md("govflow-admin")
    citizen, number = await new_person(stack, admin, "Careful Citizen")
    other, other_no = await new_person(stack, admin, "Other Citizen")
    md, other_md = await login(stack, number), await login(stack, other_no)
    partner, partner_md = await new_partner(stack, admin, ["applications.submit"])

    async def create(delegation: ipb.Delegation, parent: str = citizen,
                     who: Md = md) -> object:
        return await stack.identity.CreateDelegation(ipb.CreateDelegationRequest(
            parent=parent, delegation=delegation), metadata=who)

    bad = [
        ipb.Delegation(delegate=partner, matters=["matters/x"]),  # no expiry
        ipb.Delegation(delegate=partner, matters=["matters/x"], expire_time=_in(-5)),
        ipb.Delegation(delegate=partner, matters=["matters/x"], expire_time=_in(400 * 86400)),
        ipb.Delegation(delegate=partner, expire_time=_in(60)),  # nothing covered
        ipb.Delegation(delegate=partner, matters=["x"], expire_time=_in(60)),
        ipb.Delegation(delegate="partners/no-such-partner", matters=["matters/x"],
                       expire_time=_in(60)),
        ipb.Delegation(delegate="partners/govflow-worker", matters=["matters/x"],
                       expire_time=_in(60)),  # a service account is not a partner
        ipb.Delegation(delegate=citizen, matters=["matters/x"], expire_time=_in(60)),
    ]
    for delegation in bad:
        await refused(create(delegation), "INVALID_ARGUMENT", grpc.StatusCode.INVALID_ARGUMENT)
    assert not (await stack.identity.ListDelegations(ipb.ListDelegationsRequest(
        parent=citizen, show_inactive=True), metadata=md)).delegations

    good = ipb.Delegation(delegate=partner, matters=["matters/x"], expire_time=_in(60))
    # Somebody else's name: not there; a partner cannot grant itself anything.
    await refused(create(good, who=other_md), "PERSON_NOT_FOUND", grpc.StatusCode.NOT_FOUND)
    await refused(create(good, who=partner_md), "PERSON_NOT_FOUND", grpc.StatusCode.NOT_FOUND)
    await refused(create(good, who=admin), "OWNER_ONLY")
    # Idempotent by request_id.
    a = await stack.identity.CreateDelegation(ipb.CreateDelegationRequest(
        parent=citizen, delegation=good, request_id="once"), metadata=md)
    b = await stack.identity.CreateDelegation(ipb.CreateDelegationRequest(
        parent=citizen, delegation=good, request_id="once"), metadata=md)
    assert a.delegation.name == b.delegation.name
    # Revoking: the grantor only; others do not see it.
    await refused(stack.identity.RevokeDelegation(ipb.RevokeDelegationRequest(
        name=a.delegation.name), metadata=other_md), "PERSON_NOT_FOUND",
        grpc.StatusCode.NOT_FOUND)
    await refused(stack.identity.RevokeDelegation(ipb.RevokeDelegationRequest(
        name=f"{citizen}/delegations/nope"), metadata=md), "DELEGATION_NOT_FOUND",
        grpc.StatusCode.NOT_FOUND)
    # UseDelegation is for partners, and a partner without one learns nothing.
    await refused(stack.identity.UseDelegation(ipb.UseDelegationRequest(
        grantor=citizen, matter="matters/x", action="SubmitApplication"), metadata=md),
        "PARTNERS_ONLY")
    await refused(stack.identity.UseDelegation(ipb.UseDelegationRequest(
        grantor="persons/does-not-exist", matter="matters/x", action="SubmitApplication"),
        metadata=partner_md))
    # Another partner cannot read this partner's delegations.
    _, stranger_md = await new_partner(stack, admin)
    await refused(stack.identity.ListDelegations(ipb.ListDelegationsRequest(parent=partner),
                                                 metadata=stranger_md), "PARTNER_ONLY")


async def test_grants_revocations_and_uses_are_in_identitys_audit_chain(stack: Stack) -> None:
    admin = await stack.service_md("govflow-admin")
    m = await publish_matter(stack, admin)
    citizen, number = await new_person(stack, admin, "Audited Citizen")
    md = await login(stack, number)
    partner, partner_md = await new_partner(stack, admin, ["applications.submit"])
    d = await grant(stack, md, citizen, partner, [m])
    await submit(stack, partner_md, m, citizen)
    await stack.identity.RevokeDelegation(ipb.RevokeDelegationRequest(name=d.name), metadata=md)
    await refused(submit(stack, partner_md, m, citizen))  # refused: no entry

    engine = make_engine(stack.settings.database_url("identity"))
    try:
        with Session(engine) as s:
            report = audit.read_and_verify(s, AUDIT_CHAIN, AuditEntryRow, AuditHeadRow)
            entries = [(r.action, r.actor) for r in s.exec(
                select(AuditEntryRow).where(AuditEntryRow.subject == d.name).order_by(
                    col(AuditEntryRow.seq)))]
    finally:
        engine.dispose()
    assert report.ok, report.problem
    assert entries == [("delegation.created", citizen), ("delegation.used", partner),
                       ("delegation.revoked", citizen)]
    # What an operator runs: `govflow audit verify` reads identity's chain too.
    from govflow_cli import audit_cli

    cli_report = audit_cli.verify_chains(stack.settings)["identity"]
    assert cli_report.ok and cli_report.entries >= 3, cli_report.problem
