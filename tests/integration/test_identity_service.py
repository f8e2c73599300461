"""The identity service over real gRPC, on SQLite and on PostgreSQL (a fresh database per
run): persons and ID masking, organisations and who may act for them, officials' roles,
partners' secrets, TOTP, login throttling, signing-key rotation, and the authorisation
matrix of identity's own RPCs."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import itertools
import json
import pathlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import pyotp
import pytest
from google.protobuf import timestamp_pb2
from grpc_status import rpc_status

from govflow.errors import error_info, field_violations
from govflow.grpckit import GovflowServer
from govflow.identity.v1 import identity_pb2 as pb
from govflow.identity.v1 import identity_pb2_grpc
from govflow.settings import Settings
from services.identity import domain
from services.identity.domain import credit_code_check_char, id_check_char
from services.identity.server import create_server
from services.identity.store import partners as partner_store
from services.identity.store import persons as person_store
from tests.stack import postgres_databases

ADMIN_SECRET = "admin-secret-123"
WORKER_SECRET = "worker-secret-123"
PASSWORD = "password123"

Metadata = tuple[tuple[str, str], ...]
_seq = itertools.count(100)


def _bearer(token: str) -> Metadata:
    return (("authorization", f"Bearer {token}"),)


def id_number(seq: int | None = None) -> str:
    first = f"44030419850101{(next(_seq) if seq is None else seq) % 1000:03d}"
    return first + id_check_char(first)


def credit_code() -> str:
    first = f"91440300MA{next(_seq):07d}"
    return first + credit_code_check_char(first)


def _ts(t: dt.datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(t)
    return ts


@dataclasses.dataclass
class Env:
    stub: identity_pb2_grpc.IdentityServiceStub
    server: GovflowServer
    callers: dict[str, Metadata]
    people: dict[str, str]  # key -> persons/{id}
    numbers: dict[str, str]  # key -> ID number
    org: str  # citizen A's organisation
    reader_partner: Metadata  # a partner with persons.read

    async def person(self, *, assurance: int = pb.ASSURANCE_LEVEL_ACCOUNT) -> tuple[str, str]:
        """A fresh person: (name, ID number)."""
        number = id_number()
        r = await self.stub.CreatePerson(pb.CreatePersonRequest(
            person=pb.Person(id_number=number, display_name="Fresh Person",
                             assurance_level=assurance),
            password=PASSWORD), metadata=self.callers["admin"])
        return r.person.name, number

    async def login(self, number: str, **kw: str) -> pb.TokenSet:
        r = await self.stub.Login(pb.LoginRequest(id_number=number, password=PASSWORD, **kw))
        return r.tokens

    async def partner(self, scopes: list[str] = ()) -> tuple[str, str]:  # type: ignore[assignment]
        """A fresh partner: (client id, secret)."""
        client_id = f"p-{uuid.uuid4().hex[:10]}"
        r = await self.stub.CreatePartner(pb.CreatePartnerRequest(partner=pb.Partner(
            client_id=client_id, display_name=client_id, scopes=list(scopes))),
            metadata=self.callers["admin"])
        return client_id, r.client_secret


async def error(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await call
    return exc.value


def reason(err: grpc.aio.AioRpcError) -> str:
    status = rpc_status.from_call(err)
    info = error_info(status) if status else None
    return info.reason if info else ""


def violations(err: grpc.aio.AioRpcError) -> dict[str, str]:
    status = rpc_status.from_call(err)
    return field_violations(status) if status else {}


@pytest.fixture(scope="module",
                params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def env(request: pytest.FixtureRequest,
              tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    tmp: pathlib.Path = tmp_path_factory.mktemp(f"identity-{request.param}")
    with postgres_databases(("identity",)) if request.param == "postgres" else _no_db() as urls:
        settings = Settings(data_dir=tmp, admin_client_secret=ADMIN_SECRET,
                            worker_client_secret=WORKER_SECRET,
                            identity_database_url=urls.get("identity", ""))
        server, port = await create_server(settings, port=0)
        await server.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        try:
            yield await _populate(identity_pb2_grpc.IdentityServiceStub(channel), server)
        finally:
            await channel.close()
            await server.stop(0)


class _no_db:
    def __enter__(self) -> dict[str, str]:
        return {}

    def __exit__(self, *exc: object) -> None:
        return None


async def _populate(stub: identity_pb2_grpc.IdentityServiceStub, server: GovflowServer) -> Env:
    async def partner_md(client_id: str, secret: str) -> Metadata:
        r = await stub.AuthenticatePartner(pb.AuthenticatePartnerRequest(
            client_id=client_id, client_secret=secret))
        return _bearer(r.tokens.access_token)

    admin = await partner_md("govflow-admin", ADMIN_SECRET)
    worker = await partner_md("govflow-worker", WORKER_SECRET)
    for code in ("agx", "agy"):
        await stub.CreateAgency(pb.CreateAgencyRequest(agency=pb.Agency(
            code=code, display_name=code, division_code="440300",
            level=pb.AGENCY_LEVEL_CITY)), metadata=admin)
    keys = ("cit_a", "cit_b", "acceptor", "reviewer", "approver", "supervisor", "x_admin",
            "y_admin", "spare")
    people, numbers = {}, {}
    for i, key in enumerate(keys, start=1):
        numbers[key] = id_number(i)
        r = await stub.CreatePerson(pb.CreatePersonRequest(
            person=pb.Person(id_number=numbers[key], display_name=key,
                             assurance_level=pb.ASSURANCE_LEVEL_REAL_NAME),
            password=PASSWORD, request_id=f"person-{key}"), metadata=admin)
        people[key] = r.person.name
    posts = {"acceptor": ("agx", pb.ROLE_ACCEPTOR), "reviewer": ("agx", pb.ROLE_REVIEWER),
             "approver": ("agx", pb.ROLE_APPROVER), "supervisor": ("agx", pb.ROLE_SUPERVISOR),
             "x_admin": ("agx", pb.ROLE_ADMIN), "y_admin": ("agy", pb.ROLE_ADMIN)}
    for key, (agency, role) in posts.items():
        await stub.SetOfficialRoles(pb.SetOfficialRolesRequest(official=pb.Official(
            person=people[key], agency=f"agencies/{agency}", roles=[role])), metadata=admin)
    org = await stub.CreateOrganisation(pb.CreateOrganisationRequest(
        organisation=pb.Organisation(credit_code=credit_code(), display_name="A Ltd",
                                     legal_representative=people["cit_a"])), metadata=admin)
    nothing = await stub.CreatePartner(pb.CreatePartnerRequest(partner=pb.Partner(
        client_id="no-scope", display_name="No scope", scopes=[])), metadata=admin)
    reader = await stub.CreatePartner(pb.CreatePartnerRequest(partner=pb.Partner(
        client_id="reader", display_name="Reader", scopes=["persons.read"])), metadata=admin)

    async def login(key: str, agency: str = "") -> Metadata:
        r = await stub.Login(pb.LoginRequest(id_number=numbers[key], password=PASSWORD,
                                             agency=agency))
        return _bearer(r.tokens.access_token)

    callers: dict[str, Metadata] = {
        "anonymous": (),
        "cit_a": await login("cit_a"),
        "cit_b": await login("cit_b"),
        **{k: await login(k, f"agencies/{a}") for k, (a, _) in posts.items()},
        "partner": await partner_md("no-scope", nothing.client_secret),
        "worker": worker,
        "admin": admin,
    }
    return Env(stub=stub, server=server, callers=callers, people=people, numbers=numbers,
               org=org.organisation.name,
               reader_partner=await partner_md("reader", reader.client_secret))


# ---------------------------------------------------------------- persons


async def test_create_get_list_persons(env: Env) -> None:
    admin = env.callers["admin"]
    number = id_number()
    made = await env.stub.CreatePerson(pb.CreatePersonRequest(
        person=pb.Person(id_number=number.lower(), display_name=" Xu Ming ",
                         assurance_level=pb.ASSURANCE_LEVEL_FACE),
        password=PASSWORD, request_id="xu-ming"), metadata=admin)
    p = made.person
    assert p.name.startswith("persons/") and p.id_number == number
    assert p.display_name == "Xu Ming" and p.assurance_level == pb.ASSURANCE_LEVEL_FACE
    assert p.birth_date == "1985-01-01"
    again = await env.stub.CreatePerson(pb.CreatePersonRequest(
        person=pb.Person(id_number=number, display_name="Xu Ming"), password=PASSWORD,
        request_id="xu-ming"), metadata=admin)
    assert again.person.name == p.name  # idempotent by request id
    err = await error(env.stub.CreatePerson(pb.CreatePersonRequest(
        person=pb.Person(id_number=number, display_name="Someone"), password=PASSWORD),
        metadata=admin))
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS

    got = await env.stub.GetPerson(pb.GetPersonRequest(name=p.name), metadata=admin)
    assert got.person == p

    listed = await env.stub.ListPersons(pb.ListPersonsRequest(filter=f"id_number={number}"),
                                        metadata=admin)
    assert [x.name for x in listed.persons] == [p.name] and not listed.next_page_token
    faces = await env.stub.ListPersons(pb.ListPersonsRequest(
        filter="assurance_level=FACE", page_size=100), metadata=admin)
    assert p.name in {x.name for x in faces.persons}
    assert all(x.assurance_level == pb.ASSURANCE_LEVEL_FACE for x in faces.persons)

    seen: list[str] = []
    token = ""
    while True:
        page = await env.stub.ListPersons(pb.ListPersonsRequest(page_size=3, page_token=token),
                                          metadata=admin)
        assert len(page.persons) <= 3
        seen += [x.name for x in page.persons]
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == len(set(seen)) and set(env.people.values()) | {p.name} <= set(seen)

    for bad_filter in ("assurance_level=GOLD", "colour=red", "id_number"):
        err = await error(env.stub.ListPersons(pb.ListPersonsRequest(filter=bad_filter),
                                               metadata=admin))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "filter" in violations(err)


async def test_bad_person_is_refused_naming_fields_and_changes_nothing(env: Env) -> None:
    admin = env.callers["admin"]
    before = await env.stub.ListPersons(pb.ListPersonsRequest(page_size=100), metadata=admin)
    err = await error(env.stub.CreatePerson(pb.CreatePersonRequest(
        person=pb.Person(id_number="440304198501011230", display_name=""), password="short",
        request_id="bad-one"), metadata=admin))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(err)) >= {"person.display_name", "password"}
    err = await error(env.stub.CreatePerson(pb.CreatePersonRequest(
        person=pb.Person(id_number="11010519491231002Y", display_name="X"), password=PASSWORD),
        metadata=admin))
    assert set(violations(err)) == {"person.id_number"}
    after = await env.stub.ListPersons(pb.ListPersonsRequest(page_size=100), metadata=admin)
    assert len(after.persons) == len(before.persons)


async def test_id_number_is_masked_except_for_those_who_need_it(env: Env) -> None:
    name, number = env.people["cit_a"], env.numbers["cit_a"]
    masked = number[:4] + "*" * 10 + number[-4:]
    expected = {
        "cit_a": number, "acceptor": number, "x_admin": number, "y_admin": number,
        "worker": number, "admin": number,
        "reviewer": masked, "approver": masked, "supervisor": masked,
    }
    for who, want in expected.items():
        got = await env.stub.GetPerson(pb.GetPersonRequest(name=name),
                                       metadata=env.callers[who])
        assert got.person.id_number == want, who
    got = await env.stub.GetPerson(pb.GetPersonRequest(name=name), metadata=env.reader_partner)
    assert got.person.id_number == number  # a partner with persons.read
    # Lists mask the same way.
    listed = await env.stub.ListPersons(pb.ListPersonsRequest(filter=f"id_number={number}"),
                                        metadata=env.reader_partner)
    assert listed.persons[0].id_number == number


# ---------------------------------------------------------------- organisations


async def test_organisation_validation(env: Env) -> None:
    admin = env.callers["admin"]
    good = credit_code()
    bad = good[:17] + ("0" if good[17] != "0" else "1")
    err = await error(env.stub.CreateOrganisation(pb.CreateOrganisationRequest(
        organisation=pb.Organisation(credit_code=bad, display_name="",
                                     legal_representative="persons/nobody")), metadata=admin))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(err)) == {"organisation.credit_code", "organisation.display_name",
                                    "organisation.legal_representative"}
    org = await env.stub.CreateOrganisation(pb.CreateOrganisationRequest(
        organisation=pb.Organisation(credit_code=good, display_name="B Ltd",
                                     legal_representative=env.people["cit_b"])),
        metadata=admin)
    assert org.organisation.legal_representative == env.people["cit_b"]
    assert org.organisation.credit_code == good


async def test_representation_grant_list_revoke(env: Env) -> None:
    a = env.callers["cit_a"]
    rep_name, rep_number = await env.person()
    org = await env.stub.CreateOrganisation(pb.CreateOrganisationRequest(
        organisation=pb.Organisation(credit_code=credit_code(), display_name="Rep Test Ltd",
                                     legal_representative=env.people["cit_a"])),
        metadata=env.callers["admin"])
    org_name = org.organisation.name
    # Not yet authorised: cannot act for it.
    err = await error(env.login(rep_number, acting_for=org_name))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED

    until = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=30)
    granted = await env.stub.GrantRepresentation(pb.GrantRepresentationRequest(
        organisation=org_name, person=rep_name, expire_time=_ts(until)), metadata=a)
    r = granted.representation
    assert (r.organisation, r.person, r.organisation_display_name) == (
        org_name, rep_name, "Rep Test Ltd")
    assert r.expire_time.ToDatetime(tzinfo=dt.UTC) == until and not r.legal_representative

    listed = await env.stub.ListRepresentations(pb.ListRepresentationsRequest(parent=org_name),
                                                metadata=a)
    by_person = {x.person: x for x in listed.representations}
    assert set(by_person) == {env.people["cit_a"], rep_name}
    assert by_person[env.people["cit_a"]].legal_representative

    tokens = await env.login(rep_number, acting_for=org_name)
    rep_md = _bearer(tokens.access_token)
    mine = await env.stub.ListRepresentations(pb.ListRepresentationsRequest(parent=rep_name),
                                              metadata=rep_md)
    assert [(x.organisation, x.organisation_display_name) for x in mine.representations] == [
        (org_name, "Rep Test Ltd")]
    # The representative sees the organisation but may not manage who acts for it.
    await env.stub.GetOrganisation(pb.GetOrganisationRequest(name=org_name), metadata=rep_md)
    err = await error(env.stub.ListRepresentations(
        pb.ListRepresentationsRequest(parent=org_name), metadata=rep_md))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED

    # Bad input changes nothing.
    err = await error(env.stub.GrantRepresentation(pb.GrantRepresentationRequest(
        organisation=org_name, person=rep_name,
        expire_time=_ts(dt.datetime.now(dt.UTC) - dt.timedelta(days=1))), metadata=a))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "expire_time" in violations(err)
    err = await error(env.stub.ListRepresentations(pb.ListRepresentationsRequest(parent="x/y"),
                                                   metadata=a))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "parent" in violations(err)
    err = await error(env.stub.RevokeRepresentation(pb.RevokeRepresentationRequest(
        organisation=org_name, person=env.people["cit_a"]), metadata=a))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason(err) == "LEGAL_REPRESENTATIVE"

    await env.stub.RevokeRepresentation(pb.RevokeRepresentationRequest(
        organisation=org_name, person=rep_name), metadata=a)
    err = await error(env.stub.RevokeRepresentation(pb.RevokeRepresentationRequest(
        organisation=org_name, person=rep_name), metadata=a))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    err = await error(env.login(rep_number, acting_for=org_name))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    # A refresh token issued while acting for it no longer carries the authority.
    err = await error(env.stub.RefreshToken(pb.RefreshTokenRequest(
        refresh_token=tokens.refresh_token)))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED and reason(err) == "REFRESH_INVALID"
    mine = await env.stub.ListRepresentations(pb.ListRepresentationsRequest(parent=rep_name),
                                              metadata=rep_md)
    assert not mine.representations


async def test_expired_representation_is_listed_only_on_request(env: Env) -> None:
    rep_name, rep_number = await env.person()
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    await env.stub.GrantRepresentation(pb.GrantRepresentationRequest(
        organisation=env.org, person=rep_name, expire_time=_ts(soon)),
        metadata=env.callers["cit_a"])
    await env.login(rep_number, acting_for=env.org)
    await asyncio.sleep(2.2)
    err = await error(env.login(rep_number, acting_for=env.org))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    admin = env.callers["admin"]
    current = await env.stub.ListRepresentations(pb.ListRepresentationsRequest(parent=rep_name),
                                                 metadata=admin)
    assert not current.representations
    every = await env.stub.ListRepresentations(pb.ListRepresentationsRequest(
        parent=rep_name, show_expired=True), metadata=admin)
    assert [x.organisation for x in every.representations] == [env.org]


# ---------------------------------------------------------------- officials


async def test_only_an_admin_of_that_agency_sets_roles(env: Env) -> None:
    name, number = await env.person()
    official = pb.Official(person=name, agency="agencies/agx", roles=[pb.ROLE_REVIEWER])
    for who in ("y_admin", "supervisor", "acceptor", "cit_a", "worker", "partner"):
        err = await error(env.stub.SetOfficialRoles(
            pb.SetOfficialRolesRequest(official=official), metadata=env.callers[who]))
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED, who
    err = await error(env.login(number, agency="agencies/agx"))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED and reason(err) == "NOT_AN_OFFICIAL"

    x_admin = env.callers["x_admin"]
    set_ = await env.stub.SetOfficialRoles(pb.SetOfficialRolesRequest(official=official),
                                           metadata=x_admin)
    assert set_.official.name == f"agencies/agx/officials/{name.split('/')[1]}"
    assert list(set_.official.roles) == [pb.ROLE_REVIEWER]
    tokens = await env.login(number, agency="agencies/agx")
    listed = await env.stub.ListOfficials(pb.ListOfficialsRequest(parent="agencies/agx",
                                                                  page_size=100),
                                          metadata=x_admin)
    assert name in {o.person for o in listed.officials}
    # Y's admin grants nothing in X, even to themself.
    err = await error(env.stub.SetOfficialRoles(pb.SetOfficialRolesRequest(
        official=pb.Official(person=env.people["y_admin"], agency="agencies/agx",
                             roles=[pb.ROLE_ADMIN])), metadata=env.callers["y_admin"]))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    # Bad roles and agencies are named.
    err = await error(env.stub.SetOfficialRoles(pb.SetOfficialRolesRequest(official=pb.Official(
        person=name, agency="agencies/nowhere", roles=[pb.ROLE_REVIEWER])),
        metadata=env.callers["admin"]))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "official.agency" in violations(err)

    # Removing every role revokes the post: no official login, no refresh as an official.
    await env.stub.SetOfficialRoles(pb.SetOfficialRolesRequest(official=pb.Official(
        person=name, agency="agencies/agx")), metadata=x_admin)
    err = await error(env.login(number, agency="agencies/agx"))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    err = await error(env.stub.RefreshToken(pb.RefreshTokenRequest(
        refresh_token=tokens.refresh_token)))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED and reason(err) == "REFRESH_INVALID"


# ---------------------------------------------------------------- partners


async def test_rotate_partner_secret(env: Env) -> None:
    admin = env.callers["admin"]
    client_id, old = await env.partner(["certificates.verify"])
    first = await env.stub.AuthenticatePartner(pb.AuthenticatePartnerRequest(
        client_id=client_id, client_secret=old))
    rotated = await env.stub.RotatePartnerSecret(pb.RotatePartnerSecretRequest(
        name=f"partners/{client_id}"), metadata=admin)
    new = rotated.client_secret
    assert new and new != old and rotated.partner.scopes == ["certificates.verify"]
    err = await error(env.stub.AuthenticatePartner(pb.AuthenticatePartnerRequest(
        client_id=client_id, client_secret=old)))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    err = await error(env.stub.RefreshToken(pb.RefreshTokenRequest(
        refresh_token=first.tokens.refresh_token)))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    await env.stub.AuthenticatePartner(pb.AuthenticatePartnerRequest(
        client_id=client_id, client_secret=new))

    err = await error(env.stub.RotatePartnerSecret(pb.RotatePartnerSecretRequest(
        name="partners/nobody"), metadata=admin))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    # Govflow's own accounts take their secrets from settings.
    err = await error(env.stub.RotatePartnerSecret(pb.RotatePartnerSecretRequest(
        name="partners/govflow-worker"), metadata=admin))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_disable_partner(env: Env) -> None:
    admin = env.callers["admin"]
    client_id, secret = await env.partner(["certificates.verify"])
    first = await env.stub.AuthenticatePartner(pb.AuthenticatePartnerRequest(
        client_id=client_id, client_secret=secret))
    done = await env.stub.DisablePartner(pb.DisablePartnerRequest(name=f"partners/{client_id}"),
                                         metadata=admin)
    assert done.partner.disabled
    err = await error(env.stub.AuthenticatePartner(pb.AuthenticatePartnerRequest(
        client_id=client_id, client_secret=secret)))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    err = await error(env.stub.RefreshToken(pb.RefreshTokenRequest(
        refresh_token=first.tokens.refresh_token)))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    # Disabling again is harmless.
    await env.stub.DisablePartner(pb.DisablePartnerRequest(name=f"partners/{client_id}"),
                                  metadata=admin)


# ---------------------------------------------------------------- TOTP


async def test_totp_second_factor(env: Env) -> None:
    name, number = await env.person()
    md = _bearer((await env.login(number)).access_token)
    enrolled = await env.stub.EnrollTotp(pb.EnrollTotpRequest(person=name), metadata=md)
    totp = pyotp.TOTP(enrolled.secret)
    assert enrolled.provisioning_uri.startswith("otpauth://totp/Govflow:")
    assert f"secret={enrolled.secret}" in enrolled.provisioning_uri
    assert number not in enrolled.provisioning_uri  # the full ID number stays out of QR codes
    # Until confirmed, login needs no code.
    await env.login(number)
    err = await error(env.stub.ConfirmTotp(pb.ConfirmTotpRequest(
        person=name, one_time_code="12345"), metadata=md))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "one_time_code" in violations(err)
    await env.stub.ConfirmTotp(pb.ConfirmTotpRequest(person=name, one_time_code=totp.now()),
                               metadata=md)
    err = await error(env.stub.EnrollTotp(pb.EnrollTotpRequest(person=name), metadata=md))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION

    err = await error(env.login(number))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED and reason(err) == "OTP_REQUIRED"
    err = await error(env.login(number, one_time_code="000000"
                                if totp.now() != "000000" else "111111"))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED and reason(err) == "BAD_OTP"
    # The wrong password is still BAD_CREDENTIALS, whatever the code.
    err = await error(env.stub.Login(pb.LoginRequest(id_number=number, password="wrong-pass",
                                                     one_time_code=totp.now())))
    assert reason(err) == "BAD_CREDENTIALS"
    # The code of the next step (one step of drift is allowed) logs in, once.
    code = totp.at(time.time() + 30)
    tokens = await env.login(number, one_time_code=code)
    assert tokens.access_token
    err = await error(env.login(number, one_time_code=code))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED and reason(err) == "BAD_OTP"


async def test_totp_reset_by_a_platform_admin(env: Env) -> None:
    """A lost phone: the help desk (a platform admin) removes the factor with a reason; the
    person is signed out everywhere and logs in with the password until they enrol again."""
    name, number = await env.person()
    tokens = await env.login(number)
    md = _bearer(tokens.access_token)
    enrolled = await env.stub.EnrollTotp(pb.EnrollTotpRequest(person=name), metadata=md)
    totp = pyotp.TOTP(enrolled.secret)
    await env.stub.ConfirmTotp(pb.ConfirmTotpRequest(person=name, one_time_code=totp.now()),
                               metadata=md)
    assert reason(await error(env.login(number))) == "OTP_REQUIRED"

    admin = env.callers["admin"]
    # Refused, and nothing changes: no reason, a bad name, someone who is not an admin.
    err = await error(env.stub.ResetTotp(pb.ResetTotpRequest(person=name), metadata=admin))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "reason" in violations(err)
    err = await error(env.stub.ResetTotp(pb.ResetTotpRequest(person="nobody", reason="x"),
                                         metadata=admin))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "person" in violations(err)
    err = await error(env.stub.ResetTotp(pb.ResetTotpRequest(person="persons/nobody",
                                                             reason="x"), metadata=admin))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    for who in ("cit_b", "x_admin", "partner"):
        err = await error(env.stub.ResetTotp(pb.ResetTotpRequest(person=name, reason="x"),
                                             metadata=env.callers[who]))
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED, who
    err = await error(env.stub.ResetTotp(pb.ResetTotpRequest(person=name, reason="x"), metadata=md))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED  # not even for oneself
    assert reason(await error(env.login(number))) == "OTP_REQUIRED"

    reset = await env.stub.ResetTotp(pb.ResetTotpRequest(person=name, reason="ticket 4711: lost phone"),
                                     metadata=admin)
    assert reset.was_enrolled
    # Signed out everywhere: the refresh token from before no longer works.
    err = await error(env.stub.RefreshToken(pb.RefreshTokenRequest(
        refresh_token=tokens.refresh_token)))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    # The password alone logs in again, and the person can enrol a new phone.
    again = await env.login(number)
    await env.stub.EnrollTotp(pb.EnrollTotpRequest(person=name),
                              metadata=_bearer(again.access_token))
    second = await env.stub.ResetTotp(pb.ResetTotpRequest(person=name, reason="again"),
                                      metadata=admin)
    assert second.was_enrolled  # the pending enrolment is removed too
    third = await env.stub.ResetTotp(pb.ResetTotpRequest(person=name, reason="again"),
                                     metadata=admin)
    assert not third.was_enrolled


async def test_totp_enrolment_is_only_for_oneself(env: Env) -> None:
    target = env.people["spare"]
    for who, code in (("cit_b", grpc.StatusCode.NOT_FOUND),
                      ("partner", grpc.StatusCode.NOT_FOUND),
                      ("x_admin", grpc.StatusCode.PERMISSION_DENIED),
                      ("admin", grpc.StatusCode.PERMISSION_DENIED)):
        err = await error(env.stub.EnrollTotp(pb.EnrollTotpRequest(person=target),
                                              metadata=env.callers[who]))
        assert err.code() == code, who
    # Those who may look persons up still learn nothing about persons who do not exist.
    err = await error(env.stub.EnrollTotp(pb.EnrollTotpRequest(person="persons/nobody"),
                                          metadata=env.callers["admin"]))
    assert err.code() == grpc.StatusCode.NOT_FOUND


# ---------------------------------------------------------------- throttling


async def test_login_throttling(env: Env) -> None:
    _, number = await env.person()
    _, other = await env.person()
    for _ in range(5):
        err = await error(env.stub.Login(pb.LoginRequest(id_number=number, password="wrong-1234")))
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED and reason(err) == "BAD_CREDENTIALS"
    for password in ("wrong-1234", PASSWORD):  # the right password is refused too
        err = await error(env.stub.Login(pb.LoginRequest(id_number=number, password=password)))
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, password
        assert reason(err) == "LOGIN_THROTTLED"
    await env.login(other)  # another person is not affected

    client_id, secret = await env.partner()
    for _ in range(5):
        await error(env.stub.AuthenticatePartner(pb.AuthenticatePartnerRequest(
            client_id=client_id, client_secret="nope")))
    err = await error(env.stub.AuthenticatePartner(pb.AuthenticatePartnerRequest(
        client_id=client_id, client_secret=secret)))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


# ---------------------------------------------------------------- password hashing


async def test_old_hashes_are_upgraded_to_argon2id_at_the_next_login(env: Env) -> None:
    name, number = await env.person()
    person_id = name.removeprefix("persons/")
    identity = env.server.identity  # type: ignore[attr-defined]

    async def stored() -> str:
        return str(await identity.db.run(
            lambda s: person_store.get(s, person_id).password_hash))

    assert (await stored()).startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    await identity.db.run(lambda s: person_store.set_password_hash(
        s, person_id, domain.scrypt_hash(PASSWORD)))
    assert (await stored()).startswith("scrypt$")
    err = await error(env.stub.Login(pb.LoginRequest(id_number=number, password="wrong-1234")))
    assert reason(err) == "BAD_CREDENTIALS"
    assert (await stored()).startswith("scrypt$")  # a failed login changes nothing
    await env.login(number)  # the old hash still verifies...
    upgraded = await stored()
    assert upgraded.startswith("$argon2id$")  # ...and is replaced
    await env.login(number)  # the new one verifies, and stays
    assert await stored() == upgraded

    # A partner's client secret, likewise.
    client_id, secret = await env.partner()
    await identity.db.run(lambda s: partner_store.update(
        s, client_id, secret_hash=domain.scrypt_hash(secret)))
    await env.stub.AuthenticatePartner(pb.AuthenticatePartnerRequest(
        client_id=client_id, client_secret=secret))
    partner_hash = await identity.db.run(lambda s: partner_store.get(s, client_id).secret_hash)
    assert partner_hash.startswith("$argon2id$")


# ---------------------------------------------------------------- signing keys


async def test_signing_key_rotation_and_retirement(env: Env) -> None:
    admin = env.callers["admin"]
    name = env.people["cit_b"]
    old_md = _bearer((await env.login(env.numbers["cit_b"])).access_token)
    before = {k["kid"] for k in json.loads((await env.stub.ListPublicKeys(
        pb.ListPublicKeysRequest())).jwks_json)["keys"]}
    rotated = await env.stub.RotateSigningKey(pb.RotateSigningKeyRequest(), metadata=admin)
    key = rotated.signing_key
    assert key.active and key.name == f"signingKeys/{key.kid}" and key.kid not in before
    after = {k["kid"] for k in json.loads((await env.stub.ListPublicKeys(
        pb.ListPublicKeysRequest())).jwks_json)["keys"]}
    assert after == before | {key.kid}

    new_tokens = await env.login(env.numbers["cit_b"])
    assert json.loads(_header(new_tokens.access_token))["kid"] == key.kid
    await env.stub.GetPerson(pb.GetPersonRequest(name=name), metadata=old_md)  # nobody logged out
    await env.stub.GetPerson(pb.GetPersonRequest(name=name),
                             metadata=_bearer(new_tokens.access_token))

    err = await error(env.stub.RetireSigningKey(pb.RetireSigningKeyRequest(name=key.name),
                                                metadata=admin))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    err = await error(env.stub.RetireSigningKey(pb.RetireSigningKeyRequest(
        name="signingKeys/nope"), metadata=admin))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    old_kid = json.loads(_header(old_md[0][1].removeprefix("Bearer ")))["kid"]
    await env.stub.RetireSigningKey(pb.RetireSigningKeyRequest(name=f"signingKeys/{old_kid}"),
                                    metadata=admin)
    published = {k["kid"] for k in json.loads((await env.stub.ListPublicKeys(
        pb.ListPublicKeysRequest())).jwks_json)["keys"]}
    assert old_kid not in published and key.kid in published
    await asyncio.sleep(1.2)  # identity re-reads its keys at least every second
    err = await error(env.stub.GetPerson(pb.GetPersonRequest(name=name), metadata=old_md))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    # The caller tokens of the matrix were signed with the old key: renew them.
    await _renew_callers(env)


def _header(token: str) -> str:
    import base64

    head = token.split(".")[0]
    return base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)).decode()


async def _renew_callers(env: Env) -> None:
    out = env.callers
    agencies = {"acceptor": "agx", "reviewer": "agx", "approver": "agx", "supervisor": "agx",
                "x_admin": "agx", "y_admin": "agy"}
    for key in ("cit_a", "cit_b", *agencies):
        agency = f"agencies/{agencies[key]}" if key in agencies else ""
        out[key] = _bearer((await env.login(env.numbers[key], agency=agency)).access_token)
    for key, client_id, secret in (("admin", "govflow-admin", ADMIN_SECRET),
                                   ("worker", "govflow-worker", WORKER_SECRET)):
        r = await env.stub.AuthenticatePartner(pb.AuthenticatePartnerRequest(
            client_id=client_id, client_secret=secret))
        out[key] = _bearer(r.tokens.access_token)
    client_id, secret = await env.partner()
    r = await env.stub.AuthenticatePartner(pb.AuthenticatePartnerRequest(
        client_id=client_id, client_secret=secret))
    out["partner"] = _bearer(r.tokens.access_token)
    rotated = await env.stub.RotatePartnerSecret(pb.RotatePartnerSecretRequest(
        name="partners/reader"), metadata=out["admin"])
    r = await env.stub.AuthenticatePartner(pb.AuthenticatePartnerRequest(
        client_id="reader", client_secret=rotated.client_secret))
    env.reader_partner = _bearer(r.tokens.access_token)


# ---------------------------------------------------------------- authorisation matrix

CALLERS = ("anonymous", "cit_a", "cit_b", "acceptor", "reviewer", "approver", "supervisor",
           "x_admin", "y_admin", "partner", "worker", "admin")
# One letter per caller, in the order above: O = OK, U = UNAUTHENTICATED,
# P = PERMISSION_DENIED, N = NOT_FOUND. Objects "of citizen A" exist but are not B's.
MATRIX = {
    #                         anon A  B  acc rev apr sup xad yad prt wrk adm
    "CreatePerson":          "U  P  P  P   P   P   P   O   O   P   P   O",
    "GetPerson(A)":          "U  O  N  O   O   O   O   O   O   N   O   O",
    "GetPerson(missing)":    "U  N  N  N   N   N   N   N   N   N   N   N",
    "ListPersons":           "U  P  P  P   P   P   P   O   O   P   O   O",
    "CreateOrganisation":    "U  P  P  P   P   P   P   O   O   P   P   O",
    "GetOrganisation(A)":    "U  O  N  O   O   O   O   O   O   N   O   O",
    "GrantRepresentation":   "U  O  N  P   P   P   P   P   P   N   P   O",
    "RevokeRepresentation":  "U  O  N  P   P   P   P   P   P   N   P   O",
    "ListRepresentations(org A)": "U O N P P P P P P N O O",
    "ListRepresentations(A)":     "U O N P P P P P P N P O",
    "CreateAgency":          "U  P  P  P   P   P   P   P   P   P   P   O",
    "ListAgencies":          "O  O  O  O   O   O   O   O   O   O   O   O",
    "SetOfficialRoles(X)":   "U  P  P  P   P   P   P   O   P   P   P   O",
    "ListOfficials(X)":      "U  P  P  O   O   O   O   O   P   P   P   O",
    "CreatePartner":         "U  P  P  P   P   P   P   P   P   P   P   O",
    "RotatePartnerSecret":   "U  P  P  P   P   P   P   P   P   P   P   O",
    "DisablePartner":        "U  P  P  P   P   P   P   P   P   P   P   O",
    "EnrollTotp(A)":         "U  O  N  P   P   P   P   P   P   N   P   P",
    "RotateSigningKey":      "U  P  P  P   P   P   P   P   P   P   P   O",
    "ListPublicKeys":        "O  O  O  O   O   O   O   O   O   O   O   O",
}
_CODES = {"O": grpc.StatusCode.OK, "U": grpc.StatusCode.UNAUTHENTICATED,
          "P": grpc.StatusCode.PERMISSION_DENIED, "N": grpc.StatusCode.NOT_FOUND}


def _calls(env: Env) -> dict[str, Callable[[Metadata], Awaitable[object]]]:
    s, a = env.stub, env.people["cit_a"]
    admin = env.callers["admin"]

    async def create_person(md: Metadata) -> object:
        return await s.CreatePerson(pb.CreatePersonRequest(person=pb.Person(
            id_number=id_number(), display_name="M"), password=PASSWORD), metadata=md)

    async def create_org(md: Metadata) -> object:
        return await s.CreateOrganisation(pb.CreateOrganisationRequest(
            organisation=pb.Organisation(credit_code=credit_code(), display_name="M Ltd",
                                         legal_representative=a)), metadata=md)

    async def revoke(md: Metadata) -> object:
        await s.GrantRepresentation(pb.GrantRepresentationRequest(
            organisation=env.org, person=env.people["spare"]), metadata=admin)
        return await s.RevokeRepresentation(pb.RevokeRepresentationRequest(
            organisation=env.org, person=env.people["spare"]), metadata=md)

    async def set_roles(md: Metadata) -> object:
        person, _ = await env.person()
        return await s.SetOfficialRoles(pb.SetOfficialRolesRequest(official=pb.Official(
            person=person, agency="agencies/agx", roles=[pb.ROLE_REVIEWER])), metadata=md)

    async def create_agency(md: Metadata) -> object:
        return await s.CreateAgency(pb.CreateAgencyRequest(agency=pb.Agency(
            code=f"ag-{uuid.uuid4().hex[:8]}", display_name="M", division_code="440300",
            level=pb.AGENCY_LEVEL_COUNTY, parent="agencies/agx")), metadata=md)

    async def create_partner(md: Metadata) -> object:
        return await s.CreatePartner(pb.CreatePartnerRequest(partner=pb.Partner(
            client_id=f"m-{uuid.uuid4().hex[:8]}", display_name="M")), metadata=md)

    async def rotate_partner(md: Metadata) -> object:
        client_id, _ = await env.partner()
        return await s.RotatePartnerSecret(pb.RotatePartnerSecretRequest(
            name=f"partners/{client_id}"), metadata=md)

    async def disable_partner(md: Metadata) -> object:
        client_id, _ = await env.partner()
        return await s.DisablePartner(pb.DisablePartnerRequest(name=f"partners/{client_id}"),
                                      metadata=md)

    return {
        "CreatePerson": create_person,
        "GetPerson(A)": lambda md: s.GetPerson(pb.GetPersonRequest(name=a), metadata=md),
        "GetPerson(missing)": lambda md: s.GetPerson(
            pb.GetPersonRequest(name="persons/missing"), metadata=md),
        "ListPersons": lambda md: s.ListPersons(pb.ListPersonsRequest(), metadata=md),
        "CreateOrganisation": create_org,
        "GetOrganisation(A)": lambda md: s.GetOrganisation(
            pb.GetOrganisationRequest(name=env.org), metadata=md),
        "GrantRepresentation": lambda md: s.GrantRepresentation(pb.GrantRepresentationRequest(
            organisation=env.org, person=env.people["spare"]), metadata=md),
        "RevokeRepresentation": revoke,
        "ListRepresentations(org A)": lambda md: s.ListRepresentations(
            pb.ListRepresentationsRequest(parent=env.org), metadata=md),
        "ListRepresentations(A)": lambda md: s.ListRepresentations(
            pb.ListRepresentationsRequest(parent=a), metadata=md),
        "CreateAgency": create_agency,
        "ListAgencies": lambda md: s.ListAgencies(pb.ListAgenciesRequest(), metadata=md),
        "SetOfficialRoles(X)": set_roles,
        "ListOfficials(X)": lambda md: s.ListOfficials(
            pb.ListOfficialsRequest(parent="agencies/agx"), metadata=md),
        "CreatePartner": create_partner,
        "RotatePartnerSecret": rotate_partner,
        "DisablePartner": disable_partner,
        "EnrollTotp(A)": lambda md: s.EnrollTotp(pb.EnrollTotpRequest(person=a), metadata=md),
        "RotateSigningKey": lambda md: s.RotateSigningKey(pb.RotateSigningKeyRequest(),
                                                          metadata=md),
        "ListPublicKeys": lambda md: s.ListPublicKeys(pb.ListPublicKeysRequest(), metadata=md),
    }


async def test_authorisation_matrix(env: Env) -> None:
    calls = _calls(env)
    assert set(calls) == set(MATRIX)
    wrong = []
    for rpc, row in MATRIX.items():
        letters = row.split()
        assert len(letters) == len(CALLERS), rpc
        for caller, letter in zip(CALLERS, letters, strict=True):
            try:
                await calls[rpc](env.callers[caller])
                got = grpc.StatusCode.OK
            except grpc.aio.AioRpcError as err:
                got = err.code()
            if got != _CODES[letter]:
                wrong.append(f"{rpc} as {caller}: wanted {_CODES[letter].name}, got {got.name}")
    assert not wrong, "\n".join(wrong)
