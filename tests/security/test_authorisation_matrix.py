"""The authorisation matrix of every RPC of identity, certificates and matters (role x
object owner), on the whole stack, SQLite and PostgreSQL.

Callers (columns): anonymous; the citizen who owns the objects (a person acting for the
organisation that applies and holds the certificate); another citizen; officials of the
owning agency (sz-amr) with exactly one role each; an official of another agency; a partner
without scopes; Govflow's worker; Govflow's admin. Every cell names the exact code:
O OK, U UNAUTHENTICATED, P PERMISSION_DENIED, N NOT_FOUND (exists but is not yours),
I INVALID_ARGUMENT, F FAILED_PRECONDITION. A test asserts that every RPC of the three
service descriptors has at least one row, so a new RPC cannot be left out. Further tests
check mass assignment (output-only fields set by a client are ignored, or refused) and that
officers cannot act on their own applications.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import time
import uuid
from collections.abc import Awaitable, Callable

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from google.protobuf import timestamp_pb2

from govflow.certificates.v1 import certificates_pb2 as cpb
from govflow.identity.v1 import identity_pb2 as ipb
from govflow.matters.v1 import matters_pb2 as mpb
from govflow_cli.foreign_issuer import ForeignIssuer
from services.identity.domain import credit_code_check_char
from tests.security.support import (
    MATRIX_CELLS,
    PASSWORD,
    Fresh,
    Md,
    all_rpcs,
    login,
    new_agency,
    new_official,
    new_partner,
    new_person,
)
from tests.stack import Stack

AMR = "agencies/sz-amr"
CALLERS = ("anon", "owner", "other", "acceptor", "reviewer", "approver", "supervisor",
           "agency_admin", "foreign", "partner", "worker", "admin")
CODES = {"O": grpc.StatusCode.OK, "U": grpc.StatusCode.UNAUTHENTICATED,
         "P": grpc.StatusCode.PERMISSION_DENIED, "N": grpc.StatusCode.NOT_FOUND,
         "I": grpc.StatusCode.INVALID_ARGUMENT, "F": grpc.StatusCode.FAILED_PRECONDITION}

# Rows: "Rpc" or "Rpc(case)"; the text before "(" must be an RPC name.
MATRIX = {
    #                                anon own oth acc rev apr sup adm frn prt wrk adm
    # ---------------------------------------------------------------- identity
    "CreatePerson":                 "U   P   P   P   P   P   P   O   P   P   P   O",
    "GetPerson(owner)":             "U   O   N   O   O   O   O   O   O   N   O   O",
    "ListPersons":                  "U   P   P   P   P   P   P   O   P   P   O   O",
    "CreateOrganisation":           "U   P   P   P   P   P   P   O   P   P   P   O",
    "GetOrganisation(owner's)":     "U   O   N   O   O   O   O   O   O   N   O   O",
    "GrantRepresentation":          "U   O   N   P   P   P   P   P   P   N   P   O",
    "RevokeRepresentation":         "U   O   N   P   P   P   P   P   P   N   P   O",
    "ListRepresentations(org)":     "U   O   N   P   P   P   P   P   P   N   O   O",
    "CreateAgency":                 "U   P   P   P   P   P   P   P   P   P   P   O",
    "ListAgencies":                 "O   O   O   O   O   O   O   O   O   O   O   O",
    "SetOfficialRoles(sz-amr)":     "U   P   P   P   P   P   P   O   P   P   P   O",
    "ListOfficials(sz-amr)":        "U   P   P   O   O   O   O   O   P   P   P   O",
    "CreatePartner":                "U   P   P   P   P   P   P   P   P   P   P   O",
    "RotatePartnerSecret":          "U   P   P   P   P   P   P   P   P   P   P   O",
    "DisablePartner":               "U   P   P   P   P   P   P   P   P   P   P   O",
    "AddPartnerKey":                "U   P   P   P   P   P   P   P   P   P   P   O",
    "RemovePartnerKey":             "U   P   P   P   P   P   P   P   P   P   P   O",
    "EnrollTotp(owner)":            "U   O   N   P   P   P   P   P   P   N   P   P",
    "ConfirmTotp(owner, bad code)": "U   I   N   P   P   P   P   P   P   N   P   P",
    "ResetTotp(spare)":             "U   P   P   P   P   P   P   P   P   P   P   O",
    "Login":                        "O   O   O   O   O   O   O   O   O   O   O   O",
    "AuthenticatePartner":          "O   O   O   O   O   O   O   O   O   O   O   O",
    "AuthenticatePartnerWithAssertion":
                                    "O   O   O   O   O   O   O   O   O   O   O   O",
    "RefreshToken":                 "O   O   O   O   O   O   O   O   O   O   O   O",
    "Logout":                       "O   O   O   O   O   O   O   O   O   O   O   O",
    "ListPublicKeys":               "O   O   O   O   O   O   O   O   O   O   O   O",
    "RotateSigningKey":             "U   P   P   P   P   P   P   P   P   P   P   O",
    "RetireSigningKey":             "U   P   P   P   P   P   P   P   P   P   P   O",
    # Delegations: only the grantor (the organisation's legal representative) grants or
    # revokes, not even a platform admin; UseDelegation is for partners with a delegation.
    "CreateDelegation(owner's org)":"U   O   N   P   P   P   P   P   P   N   P   P",
    "RevokeDelegation(owner's org)":"U   O   N   P   P   P   P   P   P   N   P   P",
    "ListDelegations(owner's org)": "U   O   N   P   P   P   P   P   P   N   P   O",
    "UseDelegation(for owner's org)":
                                    "U   P   P   P   P   P   P   P   P   P   P   P",
    "ListDelegationUses(owner's org)":
                                    "U   O   N   P   P   P   P   P   P   N   P   O",
    # ---------------------------------------------------------------- certificates
    "ListCertificateTypes":         "O   O   O   O   O   O   O   O   O   O   O   O",
    "CreateCertificateType(own)":   "U   P   P   P   P   P   P   O   P   P   P   O",
    "CreateCertificateType(other agency's)":
                                    "U   P   P   P   P   P   P   P   P   P   P   O",
    "IssueCertificate":             "U   P   P   P   P   O   P   O   P   P   O   O",
    # Govflow's services read for one application only: without one, INVALID_ARGUMENT.
    "GetCertificate":               "U   O   N   N   N   N   N   N   N   N   I   I",
    "ListCertificates(owner's)":    "U   O   N   N   N   N   N   N   N   N   I   I",
    "VerifyCertificate":            "U   O   N   N   N   N   N   N   N   N   I   I",
    "GetCompactCertificate":        "U   O   N   N   N   N   N   N   N   N   I   I",
    "ListIssuerKeys":               "O   O   O   O   O   O   O   O   O   O   O   O",
    "RotateIssuerKey(sz-amr)":      "U   P   P   P   P   P   P   O   P   P   P   O",
    "SuspendCertificate":           "U   P   N   N   N   O   N   O   N   N   O   O",
    "ReinstateCertificate":         "U   P   N   N   N   O   N   O   N   N   O   O",
    "RevokeCertificate":            "U   P   N   N   N   O   N   O   N   N   O   O",
    "ListAccessRecords(owner's)":   "U   O   N   N   N   N   N   N   N   N   N   N",
    "GrantConsent":                 "U   O   N   N   N   N   N   N   N   N   P   P",
    "RevokeConsent":                "U   O   N   N   N   N   N   N   N   N   N   N",
    "ListConsents(owner's)":        "U   O   N   N   N   N   N   N   N   N   N   N",
    "PullCertificate":              "U   P   P   P   P   P   P   P   P   P   O   O",
    "ReleaseApplicationGrants":     "U   P   P   P   P   P   P   P   P   P   O   O",
    "GetStatusList":                "O   O   O   O   O   O   O   O   O   O   O   O",
    # The trust list of foreign issuers: platform administrators change it; anyone reads it.
    # A holder imports a foreign certificate naming them (the owner's org); another person's
    # import of that token is refused (HOLDER_MISMATCH); only persons import.
    "AddTrustedIssuer":             "U   P   P   P   P   P   P   P   P   P   P   O",
    "RemoveTrustedIssuer":          "U   P   P   P   P   P   P   P   P   P   P   O",
    "ListTrustedIssuers":           "O   O   O   O   O   O   O   O   O   O   O   O",
    "GetTrustList":                 "O   O   O   O   O   O   O   O   O   O   O   O",
    "PublishIssuerStatusList":      "U   P   P   P   P   P   P   P   P   P   P   O",
    "ImportCertificate(owner's org)":
                                    "U   O   F   P   P   P   P   P   P   P   P   P",
    # ---------------------------------------------------------------- matters
    "ListMatters":                  "O   O   O   O   O   O   O   O   O   O   O   O",
    "GetMatter":                    "O   O   O   O   O   O   O   O   O   O   O   O",
    "PublishMatter(own agency)":    "U   P   P   P   P   P   P   O   P   P   P   O",
    "PublishMatter(other agency's)":"U   P   P   P   P   P   P   P   P   P   P   O",
    # Calendars: one national calendar, so platform administrators only (not an agency's).
    "PublishCalendarYear(validate only)":
                                    "U   P   P   P   P   P   P   P   P   P   P   O",
    "GetCalendarYear":              "O   O   O   O   O   O   O   O   O   O   O   O",
    "ListCalendarYears":            "O   O   O   O   O   O   O   O   O   O   O   O",
    "ComputeDueTimes":              "O   O   O   O   O   O   O   O   O   O   O   O",
    "SubmitApplication(for owner's org)":
                                    "U   O   P   P   P   P   P   P   P   P   P   O",
    "GetApplication":               "U   O   N   O   O   O   O   O   N   N   O   O",
    "ListApplications":             "U   O   O   O   O   O   O   O   O   O   O   O",
    "ListTasks":                    "U   P   P   O   O   O   O   O   O   P   P   P",
    "ClaimTask(acceptance)":        "U   P   P   O   P   P   P   P   N   P   P   P",
    "DecideTask(acceptance)":       "U   P   P   O   P   P   P   P   N   P   P   P",
    "ReassignTask(acceptance)":     "U   P   P   P   P   P   O   O   N   P   P   P",
    "WithdrawApplication":          "U   O   N   N   N   N   N   N   N   N   N   N",
    "SupplyMaterials(not asked)":   "U   F   N   N   N   N   N   N   N   N   N   N",
    "RateApplication(not ended)":   "U   F   N   N   N   N   N   N   N   N   N   N",
    "GetStatistics":                "U   P   P   O   O   O   O   O   O   P   O   O",
    "RecordApplicationEvent":       "U   P   P   P   P   P   P   P   P   P   O   O",
    "RecordApplicationEvents":      "U   P   P   P   P   P   P   P   P   P   O   O",
    "UpsertTask":                   "U   P   P   P   P   P   P   P   P   P   O   O",
}


def _credit_code() -> str:
    first = f"91440300MA{uuid.uuid4().int % 10**7:07d}"
    return first + credit_code_check_char(first)


def _ts(seconds: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds)


@dataclasses.dataclass
class World:
    callers: dict[str, Md | None]
    admin: Md
    owner: str  # persons/{id}
    owner_number: str
    org: str  # organisations/{id}, the owner acts for it
    spare: str  # a person to grant representation to
    partner_id: str
    partner_secret: str
    retired_kid: str  # an inactive signing key that signed nothing
    foreign_agency: str


async def _world(stack: Stack) -> World:
    admin = await stack.service_md("govflow-admin")
    # Two rotations first: the middle key is inactive and signs nothing, so retiring it
    # (RetireSigningKey row) logs nobody out.
    await stack.identity.RotateSigningKey(ipb.RotateSigningKeyRequest(), metadata=admin)
    middle = (await stack.identity.RotateSigningKey(ipb.RotateSigningKeyRequest(),
                                                    metadata=admin)).signing_key.name
    await stack.identity.RotateSigningKey(ipb.RotateSigningKeyRequest(), metadata=admin)
    admin = await stack.service_md("govflow-admin")
    owner, owner_no = await new_person(stack, admin, "Matrix Owner")
    other, other_no = await new_person(stack, admin, "Matrix Other")
    spare, _ = await new_person(stack, admin, "Matrix Spare")
    org = (await stack.identity.CreateOrganisation(ipb.CreateOrganisationRequest(
        organisation=ipb.Organisation(credit_code=_credit_code(), display_name="Matrix Ltd",
                                      legal_representative=owner)),
        metadata=admin)).organisation.name
    callers: dict[str, Md | None] = {
        "anon": None,
        "owner": await login(stack, owner_no, acting_for=org),
        "other": await login(stack, other_no),
    }
    for role in ("acceptor", "reviewer", "approver", "supervisor", "admin"):
        _, number = await new_official(stack, admin, AMR, [role])
        callers["agency_admin" if role == "admin" else role] = await login(
            stack, number, agency=AMR)
    foreign_agency = await new_agency(stack, admin)
    _, number = await new_official(stack, admin, foreign_agency,
                                   ["acceptor", "reviewer", "approver", "supervisor"])
    callers["foreign"] = await login(stack, number, agency=foreign_agency)
    _, callers["partner"] = await new_partner(stack, admin)
    callers["worker"] = await stack.service_md("govflow-worker")
    callers["admin"] = admin
    client_id = f"sec-{uuid.uuid4().hex[:8]}"
    created = await stack.identity.CreatePartner(ipb.CreatePartnerRequest(partner=ipb.Partner(
        client_id=client_id, display_name="matrix")), metadata=admin)
    return World(callers, admin, owner, owner_no, org, spare, client_id, created.client_secret,
                 middle, foreign_agency)


WORLD = Fresh(_world, max_age=240)


class Objects:
    """Makes the objects a row needs (as the admin or the owner); a row that changes
    state gets fresh ones per cell."""

    def __init__(self, stack: Stack, w: World) -> None:
        self.stack, self.w = stack, w

    async def certificate(self) -> str:
        r = await self.stack.certificates.IssueCertificate(cpb.IssueCertificateRequest(
            certificate=cpb.Certificate(
                type="certificateTypes/business-licence", holder=self.w.org,
                fields={"credit_code": "91440300MA5FLT8K25", "name": "Matrix Ltd",
                        "legal_representative": "Matrix Owner",
                        "business_scope": "catering services"}),
            request_id=uuid.uuid4().hex), metadata=self.w.admin)
        return r.certificate.name

    async def application(self) -> str:
        r = await self.stack.matters.SubmitApplication(mpb.SubmitApplicationRequest(
            matter="matters/food-business-permit", applicant=self.w.org,
            request_id=uuid.uuid4().hex, pledges=["fire-safety"]),
            metadata=self.w.callers["owner"])
        return r.application.name

    async def task(self, application: str, step: str = "acceptance",
                   timeout: float = 60) -> str:
        md = self.w.callers["acceptor"] if step == "acceptance" else self.w.callers["reviewer"]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            tasks = await self.stack.matters.ListTasks(mpb.ListTasksRequest(page_size=100),
                                                       metadata=md)
            for t in tasks.tasks:
                if t.application == application and t.step == step:
                    return t.name  # type: ignore[no-any-return]
            await asyncio.sleep(0.2)
        raise AssertionError(f"no {step} task for {application}")

    async def consent(self, certificate: str) -> str:
        # To a party no caller of the matrix is, so that the certificate stays "not theirs".
        r = await self.stack.certificates.GrantConsent(cpb.GrantConsentRequest(
            certificate=certificate, party="partners/sec-nobody",
            purpose=f"matrix {uuid.uuid4().hex[:6]}"),
            metadata=self.w.callers["owner"])
        return r.consent.name

    def matter_yaml(self, agency: str) -> str:
        code = f"sec-{uuid.uuid4().hex[:8]}"
        return (f"code: {code}\ndisplay_name: Matrix matter {code}\nagency: {agency}\n"
                "applicant_kind: person\nlegal_limit_days: 10\npromised_limit_days: 5\n"
                "assurance_level: real_name\nmaterials: []\n"
                f"steps:\n  - code: review\n    display_name: Review\n    role: reviewer\n"
                "    time_limit_days: 3\n"
                "result:\n  certificate_type: certificateTypes/individual-business-licence\n")


Call = Callable[[Md | None, str], Awaitable[object]]


async def _calls(stack: Stack, w: World) -> dict[str, Call]:
    """One coroutine per row: (metadata, caller column) -> the call."""
    ob = Objects(stack, w)
    i, c, m = stack.identity, stack.certificates, stack.matters
    admin = w.admin
    cert = await ob.certificate()
    app = await ob.application()
    task = await ob.task(app)
    shared_consent = await ob.consent(cert)
    login_tokens = await i.Login(ipb.LoginRequest(id_number=w.owner_number, password=PASSWORD))
    assert login_tokens.tokens.refresh_token

    async def create_person(md: Md | None, who: str) -> object:
        from tests.security.support import fresh_id_number
        return await i.CreatePerson(ipb.CreatePersonRequest(person=ipb.Person(
            id_number=fresh_id_number(), display_name="M"), password=PASSWORD), metadata=md)

    async def revoke_rep(md: Md | None, who: str) -> object:
        await i.GrantRepresentation(ipb.GrantRepresentationRequest(
            organisation=w.org, person=w.spare), metadata=admin)
        return await i.RevokeRepresentation(ipb.RevokeRepresentationRequest(
            organisation=w.org, person=w.spare), metadata=md)

    async def set_roles(md: Md | None, who: str) -> object:
        person, _ = await new_person(stack, admin)
        return await i.SetOfficialRoles(ipb.SetOfficialRolesRequest(official=ipb.Official(
            person=person, agency=AMR, roles=[ipb.ROLE_REVIEWER])), metadata=md)

    async def partner_call(md: Md | None, who: str, rpc: str) -> object:
        client_id = f"sec-{uuid.uuid4().hex[:8]}"
        await i.CreatePartner(ipb.CreatePartnerRequest(partner=ipb.Partner(
            client_id=client_id, display_name="m")), metadata=admin)
        if rpc == "rotate":
            return await i.RotatePartnerSecret(ipb.RotatePartnerSecretRequest(
                name=f"partners/{client_id}"), metadata=md)
        private = ec.generate_private_key(ec.SECP256R1())
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private.public_key()))
        jwk.update(kid="k1", alg="ES256")
        if rpc == "add_key":
            return await i.AddPartnerKey(ipb.AddPartnerKeyRequest(
                name=f"partners/{client_id}", public_jwk=json.dumps(jwk)), metadata=md)
        await i.AddPartnerKey(ipb.AddPartnerKeyRequest(
            name=f"partners/{client_id}", public_jwk=json.dumps(jwk)), metadata=admin)
        if rpc == "remove_key":
            return await i.RemovePartnerKey(ipb.RemovePartnerKeyRequest(
                name=f"partners/{client_id}", kid="k1"), metadata=md)
        if rpc == "assertion":
            assertion = jwt.encode(
                {"iss": client_id, "sub": client_id, "aud": "govflow-identity",
                 "exp": int(time.time()) + 60, "jti": uuid.uuid4().hex},
                private, algorithm="ES256", headers={"kid": "k1"})
            return await i.AuthenticatePartnerWithAssertion(
                ipb.AuthenticatePartnerWithAssertionRequest(client_assertion=assertion),
                metadata=md)
        return await i.DisablePartner(ipb.DisablePartnerRequest(name=f"partners/{client_id}"),
                                      metadata=md)

    async def refresh(md: Md | None, who: str) -> object:
        t = await i.Login(ipb.LoginRequest(id_number=w.owner_number, password=PASSWORD))
        return await i.RefreshToken(ipb.RefreshTokenRequest(
            refresh_token=t.tokens.refresh_token), metadata=md)

    async def logout(md: Md | None, who: str) -> object:
        t = await i.Login(ipb.LoginRequest(id_number=w.owner_number, password=PASSWORD))
        return await i.Logout(ipb.LogoutRequest(refresh_token=t.tokens.refresh_token),
                              metadata=md)

    def cert_type(agency: str) -> cpb.CertificateType:
        code = f"sec-{uuid.uuid4().hex[:8]}"
        return cpb.CertificateType(code=code, display_name=code, issuing_agency=agency,
                                   holder_kind=cpb.HOLDER_KIND_PERSON,
                                   fields=[cpb.FieldSpec(name="x", type="string")])

    async def issue(md: Md | None, who: str) -> object:
        return await c.IssueCertificate(cpb.IssueCertificateRequest(certificate=cpb.Certificate(
            type="certificateTypes/business-licence", holder=w.org,
            fields={"credit_code": "91440300MA5FLT8K25", "name": "Matrix Ltd",
                    "legal_representative": "Matrix Owner", "business_scope": "x"}),
            request_id=uuid.uuid4().hex), metadata=md)

    async def change(md: Md | None, who: str, rpc: str) -> object:
        name = await ob.certificate()
        if rpc == "reinstate":
            await c.SuspendCertificate(cpb.SuspendCertificateRequest(name=name, reason="r"),
                                       metadata=admin)
        fn = {"suspend": (c.SuspendCertificate, cpb.SuspendCertificateRequest),
              "reinstate": (c.ReinstateCertificate, cpb.ReinstateCertificateRequest),
              "revoke": (c.RevokeCertificate, cpb.RevokeCertificateRequest)}[rpc]
        return await fn[0](fn[1](name=name, reason="matrix"), metadata=md)

    def delegation() -> ipb.Delegation:
        return ipb.Delegation(delegate=f"partners/{w.partner_id}",
                              matters=["matters/food-business-permit"],
                              expire_time=_ts(int(time.time()) + 3600))

    shared_delegation = (await i.CreateDelegation(ipb.CreateDelegationRequest(
        parent=w.org, delegation=delegation()), metadata=w.callers["owner"])).delegation.name

    async def revoke_delegation(md: Md | None, who: str) -> object:
        name = shared_delegation
        if who == "owner":
            name = (await i.CreateDelegation(ipb.CreateDelegationRequest(
                parent=w.org, delegation=delegation()), metadata=md)).delegation.name
        return await i.RevokeDelegation(ipb.RevokeDelegationRequest(name=name), metadata=md)

    async def revoke_consent(md: Md | None, who: str) -> object:
        name = await ob.consent(cert) if who == "owner" else shared_consent
        return await c.RevokeConsent(cpb.RevokeConsentRequest(name=name), metadata=md)

    async def submit(md: Md | None, who: str) -> object:
        return await m.SubmitApplication(mpb.SubmitApplicationRequest(
            matter="matters/food-business-permit", applicant=w.org, request_id=uuid.uuid4().hex,
            pledges=["fire-safety"]), metadata=md)

    async def claim(md: Md | None, who: str) -> object:
        name = await ob.task(await ob.application()) if who == "acceptor" else task
        return await m.ClaimTask(mpb.ClaimTaskRequest(name=name), metadata=md)

    async def decide(md: Md | None, who: str) -> object:
        name = task
        if who == "acceptor":
            name = await ob.task(await ob.application())
            await m.ClaimTask(mpb.ClaimTaskRequest(name=name), metadata=md)
        return await m.DecideTask(mpb.DecideTaskRequest(name=name, decision=mpb.DECISION_APPROVE),
                                  metadata=md)

    async def reassign(md: Md | None, who: str) -> object:
        return await m.ReassignTask(mpb.ReassignTaskRequest(name=task, assignee=w.spare),
                                    metadata=md)

    async def withdraw(md: Md | None, who: str) -> object:
        name = await ob.application() if who == "owner" else app
        return await m.WithdrawApplication(mpb.WithdrawApplicationRequest(
            name=name, reason="matrix"), metadata=md)

    async def record(md: Md | None, who: str) -> object:
        return await m.RecordApplicationEvent(mpb.RecordApplicationEventRequest(
            application=app, event=mpb.TimelineEvent(
                event_id=f"8000-matrix-{uuid.uuid4().hex[:6]}", kind="note", message="matrix",
                time=_ts(1767225600))), metadata=md)

    async def record_batch(md: Md | None, who: str) -> object:
        return await m.RecordApplicationEvents(mpb.RecordApplicationEventsRequest(events=[
            mpb.RecordApplicationEventRequest(application=app, event=mpb.TimelineEvent(
                event_id=f"8000-matrix-{uuid.uuid4().hex[:6]}", kind="note", message="matrix",
                time=_ts(1767225600)))]), metadata=md)

    async def upsert(md: Md | None, who: str) -> object:
        return await m.UpsertTask(mpb.UpsertTaskRequest(task=mpb.Task(
            name=f"tasks/sec-{uuid.uuid4().hex[:8]}", application="applications/none",
            step="s", role="reviewer", agency="agencies/sec-nowhere",
            status=mpb.TASK_STATUS_OPEN)), metadata=md)

    # A foreign issuer for the trust-list rows (its key made here).
    hk = ForeignIssuer(f"issuers/sec-{uuid.uuid4().hex[:8]}")
    not_after = timestamp_pb2.Timestamp(seconds=int(time.time()) + 86400 * 30)

    def trusted(fi: ForeignIssuer) -> cpb.TrustedIssuer:
        return cpb.TrustedIssuer(
            name=fi.issuer, display_name="Matrix HK", jurisdiction="HK",
            jwks_json=fi.jwks_json(), status_list_location="https://example.invalid/status",
            certificate_types=["certificateTypes/hk-identity-card"], not_after=not_after)

    await c.AddTrustedIssuer(cpb.AddTrustedIssuerRequest(trusted_issuer=trusted(hk)),
                             metadata=admin)
    published = [0]

    async def publish(md: Md | None, who: str) -> object:
        published[0] += 1  # each list newer than the one before
        payload, signature = hk.status_list(issued=dt.datetime.now(dt.UTC) - dt.timedelta(
            hours=1) + dt.timedelta(seconds=published[0]))
        return await c.PublishIssuerStatusList(cpb.PublishIssuerStatusListRequest(
            status_list=cpb.StatusList(signed_payload=payload, signature=signature)),
            metadata=md)

    await publish(admin, "admin")

    async def remove_issuer(md: Md | None, who: str) -> object:
        fresh = ForeignIssuer(f"issuers/sec-{uuid.uuid4().hex[:8]}")
        await c.AddTrustedIssuer(cpb.AddTrustedIssuerRequest(trusted_issuer=trusted(fresh)),
                                 metadata=admin)
        return await c.RemoveTrustedIssuer(cpb.RemoveTrustedIssuerRequest(
            name=fresh.issuer, reason="matrix"), metadata=md)

    async def import_card(md: Md | None, who: str) -> object:
        token, _ = hk.certificate(type_code="hk-identity-card", holder=w.org,
                                  fields={"name": "Matrix Ltd"})
        return await c.ImportCertificate(cpb.ImportCertificateRequest(token=token), metadata=md)

    return {
        "AddTrustedIssuer": lambda md, _: c.AddTrustedIssuer(cpb.AddTrustedIssuerRequest(
            trusted_issuer=trusted(hk)), metadata=md),
        "RemoveTrustedIssuer": remove_issuer,
        "ListTrustedIssuers": lambda md, _: c.ListTrustedIssuers(
            cpb.ListTrustedIssuersRequest(), metadata=md),
        "GetTrustList": lambda md, _: c.GetTrustList(cpb.GetTrustListRequest(), metadata=md),
        "PublishIssuerStatusList": publish,
        "ImportCertificate(owner's org)": import_card,
        "CreatePerson": create_person,
        "GetPerson(owner)": lambda md, _: i.GetPerson(ipb.GetPersonRequest(name=w.owner),
                                                      metadata=md),
        "ListPersons": lambda md, _: i.ListPersons(ipb.ListPersonsRequest(), metadata=md),
        "CreateOrganisation": lambda md, _: i.CreateOrganisation(ipb.CreateOrganisationRequest(
            organisation=ipb.Organisation(credit_code=_credit_code(), display_name="M",
                                          legal_representative=w.spare)), metadata=md),
        "GetOrganisation(owner's)": lambda md, _: i.GetOrganisation(
            ipb.GetOrganisationRequest(name=w.org), metadata=md),
        "GrantRepresentation": lambda md, _: i.GrantRepresentation(
            ipb.GrantRepresentationRequest(organisation=w.org, person=w.spare), metadata=md),
        "RevokeRepresentation": revoke_rep,
        "ListRepresentations(org)": lambda md, _: i.ListRepresentations(
            ipb.ListRepresentationsRequest(parent=w.org), metadata=md),
        "CreateAgency": lambda md, _: i.CreateAgency(ipb.CreateAgencyRequest(agency=ipb.Agency(
            code=f"sec-{uuid.uuid4().hex[:8]}", display_name="M", division_code="440300",
            level=ipb.AGENCY_LEVEL_COUNTY)), metadata=md),
        "ListAgencies": lambda md, _: i.ListAgencies(ipb.ListAgenciesRequest(), metadata=md),
        "SetOfficialRoles(sz-amr)": set_roles,
        "ListOfficials(sz-amr)": lambda md, _: i.ListOfficials(
            ipb.ListOfficialsRequest(parent=AMR), metadata=md),
        "CreatePartner": lambda md, _: i.CreatePartner(ipb.CreatePartnerRequest(
            partner=ipb.Partner(client_id=f"sec-{uuid.uuid4().hex[:8]}", display_name="M")),
            metadata=md),
        "RotatePartnerSecret": lambda md, who: partner_call(md, who, "rotate"),
        "DisablePartner": lambda md, who: partner_call(md, who, "disable"),
        "AddPartnerKey": lambda md, who: partner_call(md, who, "add_key"),
        "RemovePartnerKey": lambda md, who: partner_call(md, who, "remove_key"),
        "AuthenticatePartnerWithAssertion": lambda md, who: partner_call(md, who, "assertion"),
        "EnrollTotp(owner)": lambda md, _: i.EnrollTotp(ipb.EnrollTotpRequest(person=w.owner),
                                                        metadata=md),
        "ConfirmTotp(owner, bad code)": lambda md, _: i.ConfirmTotp(ipb.ConfirmTotpRequest(
            person=w.owner, one_time_code="000000"), metadata=md),
        "ResetTotp(spare)": lambda md, _: i.ResetTotp(ipb.ResetTotpRequest(
            person=w.spare, reason="matrix: lost phone"), metadata=md),
        "Login": lambda md, _: i.Login(ipb.LoginRequest(
            id_number=w.owner_number, password=PASSWORD), metadata=md),
        "AuthenticatePartner": lambda md, _: i.AuthenticatePartner(
            ipb.AuthenticatePartnerRequest(client_id=w.partner_id,
                                           client_secret=w.partner_secret), metadata=md),
        "RefreshToken": refresh,
        "Logout": logout,
        "ListPublicKeys": lambda md, _: i.ListPublicKeys(ipb.ListPublicKeysRequest(),
                                                         metadata=md),
        "RotateSigningKey": lambda md, _: i.RotateSigningKey(ipb.RotateSigningKeyRequest(),
                                                             metadata=md),
        "RetireSigningKey": lambda md, _: i.RetireSigningKey(ipb.RetireSigningKeyRequest(
            name=w.retired_kid), metadata=md),
        "CreateDelegation(owner's org)": lambda md, _: i.CreateDelegation(
            ipb.CreateDelegationRequest(parent=w.org, delegation=delegation()), metadata=md),
        "RevokeDelegation(owner's org)": revoke_delegation,
        "ListDelegations(owner's org)": lambda md, _: i.ListDelegations(
            ipb.ListDelegationsRequest(parent=w.org), metadata=md),
        "UseDelegation(for owner's org)": lambda md, _: i.UseDelegation(ipb.UseDelegationRequest(
            grantor=w.org, matter="matters/food-business-permit", action="SubmitApplication"),
            metadata=md),
        "ListDelegationUses(owner's org)": lambda md, _: i.ListDelegationUses(
            ipb.ListDelegationUsesRequest(parent=f"{w.org}/delegations/-"), metadata=md),
        "ListCertificateTypes": lambda md, _: c.ListCertificateTypes(
            cpb.ListCertificateTypesRequest(), metadata=md),
        "CreateCertificateType(own)": lambda md, _: c.CreateCertificateType(
            cpb.CreateCertificateTypeRequest(certificate_type=cert_type(AMR)), metadata=md),
        "CreateCertificateType(other agency's)": lambda md, _: c.CreateCertificateType(
            cpb.CreateCertificateTypeRequest(certificate_type=cert_type("agencies/sz-psb")),
            metadata=md),
        "IssueCertificate": issue,
        "GetCertificate": lambda md, _: c.GetCertificate(cpb.GetCertificateRequest(
            name=cert, purpose="matrix"), metadata=md),
        "ListCertificates(owner's)": lambda md, _: c.ListCertificates(
            cpb.ListCertificatesRequest(parent=w.org, purpose="matrix"), metadata=md),
        "VerifyCertificate": lambda md, _: c.VerifyCertificate(cpb.VerifyCertificateRequest(
            name=cert, purpose="matrix"), metadata=md),
        "GetCompactCertificate": lambda md, _: c.GetCompactCertificate(
            cpb.GetCompactCertificateRequest(name=cert, purpose="matrix"), metadata=md),
        "ListIssuerKeys": lambda md, _: c.ListIssuerKeys(cpb.ListIssuerKeysRequest(),
                                                         metadata=md),
        "RotateIssuerKey(sz-amr)": lambda md, _: c.RotateIssuerKey(
            cpb.RotateIssuerKeyRequest(agency=AMR), metadata=md),
        "SuspendCertificate": lambda md, who: change(md, who, "suspend"),
        "ReinstateCertificate": lambda md, who: change(md, who, "reinstate"),
        "RevokeCertificate": lambda md, who: change(md, who, "revoke"),
        "ListAccessRecords(owner's)": lambda md, _: c.ListAccessRecords(
            cpb.ListAccessRecordsRequest(parent=w.org), metadata=md),
        "GrantConsent": lambda md, _: c.GrantConsent(cpb.GrantConsentRequest(
            certificate=cert, party=AMR, purpose="matrix grant"), metadata=md),
        "RevokeConsent": revoke_consent,
        "ListConsents(owner's)": lambda md, _: c.ListConsents(
            cpb.ListConsentsRequest(parent=w.org), metadata=md),
        "PullCertificate": lambda md, _: c.PullCertificate(cpb.PullCertificateRequest(
            holder=w.org, certificate_types=["certificateTypes/business-licence"],
            application="applications/sec-pull", purpose="matrix pull"), metadata=md),
        "ReleaseApplicationGrants": lambda md, _: c.ReleaseApplicationGrants(
            cpb.ReleaseApplicationGrantsRequest(application="applications/sec-none"),
            metadata=md),
        "GetStatusList": lambda md, _: c.GetStatusList(cpb.GetStatusListRequest(issuer=AMR),
                                                       metadata=md),
        "ListMatters": lambda md, _: m.ListMatters(mpb.ListMattersRequest(), metadata=md),
        "PublishCalendarYear(validate only)": lambda md, _: m.PublishCalendarYear(
            mpb.PublishCalendarYearRequest(validate_only=True, calendar_year=mpb.CalendarYear(
                region="CN", year=2031, holidays=[mpb.CalendarDay(date="2031-01-01",
                                                                  name="New Year's Day")])),
            metadata=md),
        "GetCalendarYear": lambda md, _: m.GetCalendarYear(mpb.GetCalendarYearRequest(
            name="calendars/CN/years/2026"), metadata=md),
        "ListCalendarYears": lambda md, _: m.ListCalendarYears(mpb.ListCalendarYearsRequest(
            parent="calendars/CN"), metadata=md),
        "ComputeDueTimes": lambda md, _: m.ComputeDueTimes(mpb.ComputeDueTimesRequest(
            queries=[mpb.DueTimeQuery(start_time=timestamp_pb2.Timestamp(seconds=1_790_000_000),
                                      working_days=3)]), metadata=md),
        "GetMatter": lambda md, _: m.GetMatter(mpb.GetMatterRequest(
            name="matters/food-business-permit"), metadata=md),
        "PublishMatter(own agency)": lambda md, _: m.PublishMatter(mpb.PublishMatterRequest(
            definition_yaml=ob.matter_yaml(AMR)), metadata=md),
        "PublishMatter(other agency's)": lambda md, _: m.PublishMatter(mpb.PublishMatterRequest(
            definition_yaml=ob.matter_yaml("agencies/sz-cab")), metadata=md),
        "SubmitApplication(for owner's org)": submit,
        "GetApplication": lambda md, _: m.GetApplication(mpb.GetApplicationRequest(name=app),
                                                         metadata=md),
        "ListApplications": lambda md, _: m.ListApplications(mpb.ListApplicationsRequest(),
                                                             metadata=md),
        "ListTasks": lambda md, _: m.ListTasks(mpb.ListTasksRequest(), metadata=md),
        "ClaimTask(acceptance)": claim,
        "DecideTask(acceptance)": decide,
        "ReassignTask(acceptance)": reassign,
        "WithdrawApplication": withdraw,
        "SupplyMaterials(not asked)": lambda md, _: m.SupplyMaterials(mpb.SupplyMaterialsRequest(
            name=app, materials=[mpb.SuppliedMaterial(code="fire-safety", certificate=cert)]),
            metadata=md),
        "RateApplication(not ended)": lambda md, _: m.RateApplication(mpb.RateApplicationRequest(
            name=app, score=5), metadata=md),
        "GetStatistics": lambda md, _: m.GetStatistics(mpb.GetStatisticsRequest(), metadata=md),
        "RecordApplicationEvent": record,
        "RecordApplicationEvents": record_batch,
        "UpsertTask": upsert,
    }


def test_every_rpc_has_a_row() -> None:
    rows = {name.split("(")[0] for name in MATRIX}
    rpcs = {r.method.name for r in all_rpcs()}
    assert rpcs <= rows, f"RPCs without a matrix row: {sorted(rpcs - rows)}"
    assert rows <= rpcs, f"rows naming no RPC: {sorted(rows - rpcs)}"
    for name, row in MATRIX.items():
        assert len(row.split()) == len(CALLERS), name


async def test_authorisation_matrix(stack: Stack) -> None:
    w: World = await WORLD.get(stack)  # type: ignore[assignment]
    calls = await _calls(stack, w)
    assert set(calls) == set(MATRIX)
    wrong = []
    for rpc, row in MATRIX.items():
        for who, letter in zip(CALLERS, row.split(), strict=True):
            try:
                await calls[rpc](w.callers[who], who)
                got = grpc.StatusCode.OK
            except grpc.aio.AioRpcError as err:
                got = err.code()
            MATRIX_CELLS["role x owner matrix"] += 1
            if got != CODES[letter]:
                wrong.append(f"{rpc} as {who}: wanted {CODES[letter].name}, got {got.name}")
    assert not wrong, "\n".join(wrong)


# ---------------------------------------------------------------- mass assignment


async def test_client_set_output_fields_are_ignored_or_refused(stack: Stack) -> None:
    """Status, owner, version, issuer, name or assignee set by a client in a create or
    submit request are ignored (the stored object shows the server's values) or refused."""
    w: World = await WORLD.get(stack)  # type: ignore[assignment]
    admin, checked = w.admin, 0
    i, c, m = stack.identity, stack.certificates, stack.matters
    from tests.security.support import fresh_id_number

    person = (await i.CreatePerson(ipb.CreatePersonRequest(person=ipb.Person(
        name="persons/i-chose-this", id_number=fresh_id_number(), display_name="MA",
        birth_date="1900-01-01", create_time=_ts(0)), password=PASSWORD),
        metadata=admin)).person
    stored = (await i.GetPerson(ipb.GetPersonRequest(name=person.name), metadata=admin)).person
    assert stored.name != "persons/i-chose-this" and stored.birth_date != "1900-01-01"
    assert stored.create_time.seconds > 0
    checked += 3
    code = f"sec-{uuid.uuid4().hex[:8]}"
    partner = (await i.CreatePartner(ipb.CreatePartnerRequest(partner=ipb.Partner(
        name="partners/someone-else", client_id=code, display_name="MA", disabled=True)),
        metadata=admin)).partner
    assert partner.name == f"partners/{code}" and not partner.disabled
    checked += 2

    # A certificate: name, issuer, key, signature, status, slot and times are the server's.
    cert = (await c.IssueCertificate(cpb.IssueCertificateRequest(certificate=cpb.Certificate(
        name="certificates/mine", type="certificateTypes/business-licence", holder=w.org,
        issuer="agencies/sz-psb", key_id="sz-psb.1", signature="AAAA", signed_payload="{}",
        status=cpb.CERTIFICATE_STATUS_REVOKED, status_list_index=7, issue_time=_ts(0),
        status_reason="forged",
        fields={"credit_code": "91440300MA5FLT8K25", "name": "Matrix Ltd",
                "legal_representative": "Matrix Owner", "business_scope": "x"}),
        request_id=uuid.uuid4().hex), metadata=admin)).certificate
    v = await c.VerifyCertificate(cpb.VerifyCertificateRequest(name=cert.name),
                                  metadata=w.callers["owner"])
    got = v.certificate
    assert got.name != "certificates/mine" and got.issuer == AMR
    assert got.key_id.startswith("sz-amr.") and got.signature != "AAAA"
    assert got.status == cpb.CERTIFICATE_STATUS_ACTIVE and not got.status_reason
    assert got.issue_time.seconds > 0 and v.valid
    checked += 7

    # A submission: the applicant is checked against the caller; owner, status, version and
    # assignee are not in the request at all, and the stored ones are the server's.
    other_person = (await new_person(stack, admin))[0]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await m.SubmitApplication(mpb.SubmitApplicationRequest(
            matter="matters/food-business-permit", applicant=other_person,
            request_id=uuid.uuid4().hex), metadata=w.callers["owner"])
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    app = (await m.SubmitApplication(mpb.SubmitApplicationRequest(
        matter="matters/food-business-permit", applicant=w.org, request_id=uuid.uuid4().hex,
        pledges=["fire-safety"]), metadata=w.callers["owner"])).application
    latest = (await m.GetMatter(mpb.GetMatterRequest(name="matters/food-business-permit"))).matter
    assert app.submitted_by == w.owner and app.applicant == w.org
    assert app.status == mpb.APPLICATION_STATUS_SUBMITTED
    assert app.matter_version == latest.version
    checked += 5

    # A matter definition's own "version" is not the version published.
    yaml = Objects(stack, w).matter_yaml(AMR) + "version: 99\n"
    try:
        published = (await m.PublishMatter(mpb.PublishMatterRequest(definition_yaml=yaml),
                                           metadata=admin)).matter
        assert published.version == 1
    except grpc.aio.AioRpcError as exc:
        assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT
    checked += 1

    # An official's name and an agency's name are derived, never taken from the client.
    agency_code = f"sec-{uuid.uuid4().hex[:8]}"
    agency = (await i.CreateAgency(ipb.CreateAgencyRequest(agency=ipb.Agency(
        name="agencies/elsewhere", code=agency_code, display_name="MA",
        division_code="440300", level=ipb.AGENCY_LEVEL_CITY)), metadata=admin)).agency
    assert agency.name == f"agencies/{agency_code}"
    checked += 1
    MATRIX_CELLS["mass assignment checks"] += checked


async def test_officers_cannot_act_on_their_own_applications(stack: Stack) -> None:
    """An official of sz-amr who applies (acting for their own company) may not claim or
    decide that application's task, nor be assigned it by a supervisor."""
    w: World = await WORLD.get(stack)  # type: ignore[assignment]
    admin = w.admin
    me, number = await new_official(stack, admin, AMR, ["acceptor", "reviewer", "approver"])
    org = (await stack.identity.CreateOrganisation(ipb.CreateOrganisationRequest(
        organisation=ipb.Organisation(credit_code=_credit_code(), display_name="Own Ltd",
                                      legal_representative=me)), metadata=admin)).organisation.name
    await stack.certificates.IssueCertificate(cpb.IssueCertificateRequest(
        certificate=cpb.Certificate(
            type="certificateTypes/business-licence", holder=org,
            fields={"credit_code": "91440300MA5FLT8K25", "name": "Own Ltd",
                    "legal_representative": "Me", "business_scope": "x"}),
        request_id=uuid.uuid4().hex), metadata=admin)
    as_applicant = await login(stack, number, acting_for=org)
    app = (await stack.matters.SubmitApplication(mpb.SubmitApplicationRequest(
        matter="matters/food-business-permit", applicant=org, request_id=uuid.uuid4().hex,
        pledges=["fire-safety"]), metadata=as_applicant)).application.name
    as_officer = await login(stack, number, agency=AMR)
    task = await Objects(stack, w).task(app)
    cells = 0
    for call in (
        stack.matters.ClaimTask(mpb.ClaimTaskRequest(name=task), metadata=as_officer),
        stack.matters.DecideTask(mpb.DecideTaskRequest(name=task, decision=mpb.DECISION_APPROVE),
                                 metadata=as_officer),
        stack.matters.ReassignTask(mpb.ReassignTaskRequest(name=task, assignee=me),
                                   metadata=w.callers["supervisor"]),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        cells += 1
    # Another acceptor may.
    await stack.matters.ClaimTask(mpb.ClaimTaskRequest(name=task),
                                  metadata=w.callers["acceptor"])
    MATRIX_CELLS["own application cells"] += cells + 1


# ---------------------------------------------------------------- partners under delegations

# Partners (columns), each with applications.submit unless said otherwise, against one
# subject (a citizen, or an organisation through its legal representative) and matter M:
# delegated     holds the subject's live delegation for M; submitted the target application
# none          never had a delegation from the subject
# wrong_matter  submitted under a delegation for M, since revoked; holds one for N only
# revoked       submitted under a delegation for M, since revoked
# expired       submitted under a delegation for M that has since expired
# others        holds a live delegation for M from another subject of the same kind
# no_scope      holds the subject's live delegation for M but not applications.submit
# The target is the partner's own application where it has one, else delegated's.
# Letters as above; "-" is OK without the target in the answer (a partner's list leaves out
# what it may no longer act on).
PARTNERS = ("delegated", "none", "wrong_matter", "revoked", "expired", "others", "no_scope")
PARTNER_MATRIX = {
    #                         dlg non wrm rev exp oth nsc
    "SubmitApplication(M)":  "O   P   P   P   P   P   P",
    "GetApplication":        "O   N   P   P   P   N   N",
    "ListApplications":      "O   -   -   -   -   -   -",
    "SupplyMaterials(not asked)":
                             "F   N   P   P   P   N   N",
    "RateApplication(not ended)":
                             "F   N   P   P   P   N   N",
    "WithdrawApplication":   "O   N   P   P   P   N   N",
}
SUBJECTS = ("person", "organisation")


def _delegation_matter_yaml(kind: str) -> str:
    code = f"sec-{uuid.uuid4().hex[:8]}"
    return (f"code: {code}\ndisplay_name: Delegation matrix {code}\nagency: {AMR}\n"
            f"applicant_kind: {kind}\nlegal_limit_days: 10\npromised_limit_days: 5\n"
            "assurance_level: account\nmaterials: []\n"
            "steps:\n  - code: review\n    display_name: Review\n    role: reviewer\n"
            "    time_limit_days: 3\n"
            "result:\n  certificate_type: certificateTypes/individual-business-licence\n")


@dataclasses.dataclass
class Side:
    """One subject and its partners: who grants for it, its matters, each partner's token
    and the application each partner acts on."""

    subject: str
    grantor: Md  # the citizen, or the organisation's legal representative
    matter: str
    names: dict[str, str]  # partners/{client_id} of each column
    partners: dict[str, Md]
    targets: dict[str, str]


async def _side(stack: Stack, admin: Md, kind: str) -> Side:
    i, m = stack.identity, stack.matters

    async def publish() -> str:
        r = await m.PublishMatter(mpb.PublishMatterRequest(
            definition_yaml=_delegation_matter_yaml(kind)), metadata=admin)
        return str(r.matter.name)

    async def subject() -> tuple[str, Md]:
        person, number = await new_person(stack, admin, "Delegating Subject")
        if kind == "person":
            return person, await login(stack, number)
        org = (await i.CreateOrganisation(ipb.CreateOrganisationRequest(
            organisation=ipb.Organisation(credit_code=_credit_code(), display_name="Dlg Ltd",
                                          legal_representative=person)),
            metadata=admin)).organisation.name
        return org, await login(stack, number)

    async def grant(grantor: str, md: Md, partner: str, matter: str,
                    seconds: int = 3600) -> str:
        return (await i.CreateDelegation(ipb.CreateDelegationRequest(
            parent=grantor, delegation=ipb.Delegation(
                delegate=partner, matters=[matter],
                expire_time=timestamp_pb2.Timestamp(seconds=int(time.time()) + seconds))),
            metadata=md)).delegation.name

    async def revoke(name: str, md: Md) -> None:
        await i.RevokeDelegation(ipb.RevokeDelegationRequest(name=name), metadata=md)

    async def submit(md: Md, matter: str, applicant: str) -> str:
        return (await m.SubmitApplication(mpb.SubmitApplicationRequest(
            matter=matter, applicant=applicant, request_id=uuid.uuid4().hex),
            metadata=md)).application.name

    matter, other_matter = await publish(), await publish()
    who, md = await subject()
    elsewhere, elsewhere_md = await subject()
    names: dict[str, str] = {}
    partners: dict[str, Md] = {}
    targets: dict[str, str] = {}
    for p in PARTNERS:
        names[p], partners[p] = await new_partner(
            stack, admin, [] if p == "no_scope" else ["applications.submit"])
    expiring = await grant(who, md, names["expired"], matter, seconds=2)
    expires = time.monotonic() + 2
    for p in ("delegated", "wrong_matter", "revoked", "expired"):
        live = expiring if p == "expired" else await grant(who, md, names[p], matter)
        targets[p] = await submit(partners[p], matter, who)
        if p in ("wrong_matter", "revoked"):
            await revoke(live, md)
    await grant(who, md, names["wrong_matter"], other_matter)
    await grant(elsewhere, elsewhere_md, names["others"], matter)
    await submit(partners["others"], matter, elsewhere)
    await grant(who, md, names["no_scope"], matter)
    for p in ("none", "others", "no_scope"):
        targets[p] = targets["delegated"]
    await asyncio.sleep(max(0.0, expires + 0.5 - time.monotonic()))  # until it has expired
    return Side(who, md, matter, names, partners, targets)


async def _partner_cell(stack: Stack, side: Side, rpc: str, md: Md, target: str) -> str:
    m = stack.matters
    try:
        if rpc == "SubmitApplication(M)":
            await m.SubmitApplication(mpb.SubmitApplicationRequest(
                matter=side.matter, applicant=side.subject, request_id=uuid.uuid4().hex),
                metadata=md)
        elif rpc == "GetApplication":
            await m.GetApplication(mpb.GetApplicationRequest(name=target), metadata=md)
        elif rpc == "ListApplications":
            listed = await m.ListApplications(mpb.ListApplicationsRequest(page_size=100),
                                              metadata=md)
            return "O" if target in {a.name for a in listed.applications} else "-"
        elif rpc == "SupplyMaterials(not asked)":
            await m.SupplyMaterials(mpb.SupplyMaterialsRequest(
                name=target, materials=[mpb.SuppliedMaterial(
                    code="x", upload_uri="https://example.org/x")]), metadata=md)
        elif rpc == "RateApplication(not ended)":
            await m.RateApplication(mpb.RateApplicationRequest(name=target, score=5),
                                    metadata=md)
        else:
            await m.WithdrawApplication(mpb.WithdrawApplicationRequest(
                name=target, reason="matrix"), metadata=md)
    except grpc.aio.AioRpcError as err:
        return next((k for k, v in CODES.items() if v == err.code()), err.code().name)
    return "O"


async def _records(stack: Stack, side: Side) -> list[ipb.DelegationUse]:
    """The subject's access records (ListDelegationUses), as its grantor reads them."""
    return list((await stack.identity.ListDelegationUses(ipb.ListDelegationUsesRequest(
        parent=f"{side.subject}/delegations/-", page_size=100), metadata=side.grantor)).uses)


async def _applications(stack: Stack, admin: Md, side: Side) -> set[str]:
    listed = await stack.matters.ListApplications(mpb.ListApplicationsRequest(
        page_size=100, filter=f"matter={side.matter}"), metadata=admin)
    return {a.name for a in listed.applications if a.applicant == side.subject}


async def test_partner_subject_rpc_matrix(stack: Stack) -> None:
    """Every partner x subject x RPC cell: a partner acts for a citizen or an organisation
    only under a live delegation from it, for that matter, to that partner; every refusal
    writes nothing (no application, no access record), and every action allowed is in the
    subject's access records."""
    admin = await stack.service_md("govflow-admin")
    wrong = []
    for kind in SUBJECTS:
        side = await _side(stack, admin, kind)
        before_records = {u.name for u in await _records(stack, side)}
        before_apps = await _applications(stack, admin, side)
        for rpc, row in PARTNER_MATRIX.items():
            for p, letter in zip(PARTNERS, row.split(), strict=True):
                got = await _partner_cell(stack, side, rpc, side.partners[p], side.targets[p])
                MATRIX_CELLS["partner x subject x RPC matrix"] += 1
                if got != letter:
                    wrong.append(f"{kind} {rpc} as {p}: wanted {letter}, got {got}")
        # Nothing written by any refusal: one new application (delegated's submit), and
        # the new access records are the delegated partner's actions, one for each cell
        # it passed (its list of two applications counting as two).
        new_records = [u for u in await _records(stack, side) if u.name not in before_records]
        assert len(await _applications(stack, admin, side) - before_apps) == 1, kind
        assert {u.partner for u in new_records} == {side.names["delegated"]}, kind
        assert sorted(u.action for u in new_records) == sorted(
            [rpc.split("(")[0] for rpc in PARTNER_MATRIX] + ["ListApplications"]), kind
    assert not wrong, "\n".join(wrong)
