"""The certificates service over real gRPC, against a real identity service issuing the
tokens, on SQLite and on PostgreSQL (a fresh database per run)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import pathlib
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf import timestamp_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from jwt.algorithms import OKPAlgorithm

from govflow.certificates.v1 import certificates_pb2 as pb
from govflow.certificates.v1 import certificates_pb2_grpc
from govflow.errors import error_info, field_violations
from govflow.grpckit import GovflowServer
from govflow.identity.v1 import identity_pb2 as ipb
from services.certificates import domain
from services.identity.domain import credit_code_check_char, id_check_char
from tests.integration.certificates_servers import (
    BACKENDS,
    Metadata,
    bearer,
    certificates_servers,
)

PASSWORD = "password123"


def _id_number(seq: int) -> str:
    first = f"11010519900101{seq:03d}"
    return first + id_check_char(first)


def _credit_code(seq: int) -> str:
    first = f"91110000MA{seq:07d}"
    return first + credit_code_check_char(first)


def _ts(t: dt.datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(t)
    return ts


@dataclasses.dataclass
class Env:
    certs: certificates_pb2_grpc.CertificatesServiceStub
    channel: grpc.aio.Channel
    server: GovflowServer
    admin: Metadata
    worker: Metadata
    alice: Metadata  # citizen
    bob: Metadata  # another citizen
    carol: Metadata  # approver at agencies/gongan
    dave: Metadata  # reviewer at agencies/gongan (may not issue)
    alice_for_org: Metadata  # alice acting for her company
    scj_partner: Metadata  # the market regulator's own system
    alice_name: str
    bob_name: str
    org_name: str
    addr: str  # the certificates service, for commands run in a subprocess


@pytest.fixture(scope="module", params=BACKENDS)
async def env(request: pytest.FixtureRequest,
              tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    tmp: pathlib.Path = tmp_path_factory.mktemp(f"certs-{request.param}")
    async with certificates_servers(tmp, request.param) as servers:
        ident = servers.identity
        admin = await servers.admin()
        worker = await servers.worker()
        for code in ("gongan", "scj"):
            await ident.CreateAgency(ipb.CreateAgencyRequest(agency=ipb.Agency(
                code=code, display_name=code, division_code="110000",
                level=ipb.AGENCY_LEVEL_PROVINCE)), metadata=admin)
        people = {}
        for seq, who in enumerate(("alice", "bob", "carol", "dave"), start=1):
            r = await ident.CreatePerson(ipb.CreatePersonRequest(
                person=ipb.Person(id_number=_id_number(seq), display_name=who),
                password=PASSWORD, request_id=f"person-{who}"), metadata=admin)
            people[who] = r.person.name
        for who, role in (("carol", ipb.ROLE_APPROVER), ("dave", ipb.ROLE_REVIEWER)):
            await ident.SetOfficialRoles(ipb.SetOfficialRolesRequest(official=ipb.Official(
                person=people[who], agency="agencies/gongan", roles=[role])), metadata=admin)
        org = await ident.CreateOrganisation(ipb.CreateOrganisationRequest(
            organisation=ipb.Organisation(credit_code=_credit_code(1), display_name="Alice Ltd",
                                          legal_representative=people["alice"]),
            request_id="org-1"), metadata=admin)
        partner = await ident.CreatePartner(ipb.CreatePartnerRequest(partner=ipb.Partner(
            client_id="scj-system", display_name="SCJ", agency="agencies/scj",
            scopes=["certificates.issue", "certificates.verify"])), metadata=admin)

        async def login(seq: int, agency: str = "", acting_for: str = "") -> Metadata:
            r = await ident.Login(ipb.LoginRequest(id_number=_id_number(seq), password=PASSWORD,
                                                   agency=agency, acting_for=acting_for))
            return bearer(r.tokens.access_token)

        certs = servers.certificates
        for t in (
            pb.CertificateType(
                code="resident-id-card", display_name="居民身份证", display_name_en="Resident ID card",
                issuing_agency="agencies/gongan",
                holder_kind=pb.HOLDER_KIND_PERSON, default_validity_days=3650,
                fields=[pb.FieldSpec(name="full_name", type="string", required=True),
                        pb.FieldSpec(name="birth_date", type="date", required=True),
                        pb.FieldSpec(name="height_cm", type="int"),
                        pb.FieldSpec(name="organ_donor", type="bool")]),
            pb.CertificateType(
                code="business-licence", display_name="营业执照", issuing_agency="agencies/scj",
                holder_kind=pb.HOLDER_KIND_ORGANISATION,
                fields=[pb.FieldSpec(name="company_name", type="string", required=True)]),
        ):
            await certs.CreateCertificateType(pb.CreateCertificateTypeRequest(certificate_type=t),
                                              metadata=admin)
        yield Env(
            certs=certs, channel=servers.channel, server=servers.server, admin=admin,
            worker=worker,
            alice=await login(1), bob=await login(2), carol=await login(3, "agencies/gongan"),
            dave=await login(4, "agencies/gongan"),
            alice_for_org=await login(1, acting_for=org.organisation.name),
            scj_partner=await servers.partner_token("scj-system", partner.client_secret),
            alice_name=people["alice"], bob_name=people["bob"], org_name=org.organisation.name,
            addr=servers.addr)


def _id_card(holder: str, **fields: str) -> pb.Certificate:
    values = {"full_name": "Alice", "birth_date": "1990-01-01", **fields}
    return pb.Certificate(type="certificateTypes/resident-id-card", holder=holder, fields=values)


async def _issue(env: Env, md: Metadata, cert: pb.Certificate, request_id: str | None = None,
                 application: str = "") -> pb.Certificate:
    r: pb.IssueCertificateResponse = await env.certs.IssueCertificate(
        pb.IssueCertificateRequest(certificate=cert, request_id=request_id or uuid.uuid4().hex,
                                   application=application), metadata=md)
    return r.certificate


async def _error(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await call  # type: ignore[misc]
    return exc.value


# ---------------------------------------------------------------- issue and verify


async def test_issue_then_verify_valid(env: Env) -> None:
    cert = await _issue(env, env.carol, _id_card(env.alice_name, height_cm="170"))
    assert cert.name.startswith("certificates/")
    assert cert.issuer == "agencies/gongan" and cert.key_id.startswith("gongan.")
    assert cert.status == pb.CERTIFICATE_STATUS_ACTIVE
    assert dict(cert.fields) == {"full_name": "Alice", "birth_date": "1990-01-01",
                                 "height_cm": "170"}
    # Default validity comes from the type: ten years.
    span = cert.valid_until.ToDatetime() - cert.valid_from.ToDatetime()
    assert span == dt.timedelta(days=3650)
    signed = json.loads(cert.signed_payload)
    assert signed["id"] == cert.name and signed["holder"] == env.alice_name
    assert signed["status_list_index"] == cert.status_list_index

    # The holder verifies freely; others under a grant (the worker's for one application).
    await env.certs.GrantConsent(pb.GrantConsentRequest(
        certificate=cert.name, party="partners/scj-system", purpose="kyc"), metadata=env.alice)
    await env.certs.GrantConsent(pb.GrantConsentRequest(
        certificate=cert.name, party="applications/v1", purpose="application-processing"),
        metadata=env.worker)
    for md, purpose, application in ((env.alice, "", ""), (env.scj_partner, "kyc", ""),
                                     (env.worker, "application-processing", "applications/v1")):
        v = await env.certs.VerifyCertificate(pb.VerifyCertificateRequest(
            name=cert.name, purpose=purpose, application=application), metadata=md)
        assert v.valid and list(v.failures) == []
        assert v.certificate.name == cert.name

    # Offline: the published key alone verifies the QR-code payload.
    keys = await env.certs.ListIssuerKeys(pb.ListIssuerKeysRequest())
    jwk = next(k for k in json.loads(keys.jwks_json)["keys"] if k["kid"] == cert.key_id)
    assert jwk["alg"] == "EdDSA" and jwk["issuer"] == "agencies/gongan"
    assert "d" not in jwk  # never the private part
    public = OKPAlgorithm.from_jwk(json.dumps(jwk))
    assert domain.verify(cert.signed_payload.encode(), cert.signature, public,  # type: ignore[arg-type]
                         status=domain.ACTIVE, now=dt.datetime.now(dt.UTC),
                         key_issuer=jwk["issuer"]) == []


async def test_partner_issues_for_its_own_agency_only(env: Env) -> None:
    licence = pb.Certificate(type="certificateTypes/business-licence", holder=env.org_name,
                             fields={"company_name": "Alice Ltd"})
    cert = await _issue(env, env.scj_partner, licence)
    assert cert.issuer == "agencies/scj" and cert.valid_until.seconds == 0  # no end
    err = await _error(_issue(env, env.scj_partner, _id_card(env.alice_name)))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_only_issuers_issue(env: Env) -> None:
    for md in (env.alice, env.dave):  # a citizen; a reviewer (not approver) of gongan
        err = await _error(_issue(env, md, _id_card(env.alice_name)))
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED
        info = error_info(rpc_status.from_call(err))
        assert info is not None and info.reason == "NOT_THE_ISSUER"
    err = await _error(env.certs.CreateCertificateType(pb.CreateCertificateTypeRequest(
        certificate_type=pb.CertificateType(code="x")), metadata=env.carol))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_idempotent_retry_returns_same_certificate(env: Env) -> None:
    holder = f"persons/retry{uuid.uuid4().hex[:8]}"
    rid = uuid.uuid4().hex
    first = await _issue(env, env.worker, _id_card(holder), rid, "applications/a1")
    again = await _issue(env, env.worker, _id_card(holder), rid, "applications/a1")
    assert again == first

    holder2 = f"persons/burst{uuid.uuid4().hex[:8]}"
    rid2 = uuid.uuid4().hex
    burst = await asyncio.gather(*(_issue(env, env.worker, _id_card(holder2), rid2)
                                   for _ in range(5)))
    assert len({c.name for c in burst}) == 1
    assert all(c.signature == burst[0].signature for c in burst)
    await env.certs.GrantConsent(pb.GrantConsentRequest(
        holder=holder2, certificate_type="certificateTypes/resident-id-card",
        party="applications/count", purpose="count"), metadata=env.worker)
    wallet = await env.certs.ListCertificates(pb.ListCertificatesRequest(
        parent=holder2, purpose="count", application="applications/count"), metadata=env.worker)
    assert [c.name for c in wallet.certificates] == [burst[0].name]


async def test_concurrent_distinct_issues_get_distinct_status_slots(env: Env) -> None:
    holder = f"persons/slots{uuid.uuid4().hex[:8]}"
    made = await asyncio.gather(*(_issue(env, env.carol, _id_card(holder))
                                  for _ in range(5)))
    assert len({c.name for c in made}) == 5
    assert len({c.status_list_index for c in made}) == 5


async def test_bad_fields_are_named(env: Env) -> None:
    cert = pb.Certificate(type="certificateTypes/resident-id-card", holder=env.org_name,
                          fields={"birth_date": "1990-02-30", "height_cm": "tall",
                                  "organ_donor": "maybe", "nickname": "Al"})
    err = await _error(env.certs.IssueCertificate(
        pb.IssueCertificateRequest(certificate=cert), metadata=env.carol))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    bad = field_violations(rpc_status.from_call(err))
    assert set(bad) == {
        "request_id", "certificate.holder", "certificate.fields.full_name",
        "certificate.fields.birth_date", "certificate.fields.height_cm",
        "certificate.fields.organ_donor", "certificate.fields.nickname"}

    err = await _error(_issue(env, env.carol, pb.Certificate(
        type="certificateTypes/no-such-type", holder=env.alice_name)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(rpc_status.from_call(err))) == {"certificate.type"}

    now = dt.datetime.now(dt.UTC)
    backwards = _id_card(env.alice_name)
    backwards.valid_from.CopyFrom(_ts(now))
    backwards.valid_until.CopyFrom(_ts(now - dt.timedelta(days=1)))
    err = await _error(_issue(env, env.carol, backwards))
    assert set(field_violations(rpc_status.from_call(err))) == {"certificate.valid_until"}


# ---------------------------------------------------------------- who sees what


async def test_citizen_cannot_read_anothers_certificate(env: Env) -> None:
    cert = await _issue(env, env.carol, _id_card(env.alice_name))
    missing = "certificates/" + uuid.uuid4().hex
    messages = set()
    for name in (cert.name, missing):
        for rpc, req in ((env.certs.GetCertificate, pb.GetCertificateRequest(name=name)),
                         (env.certs.VerifyCertificate, pb.VerifyCertificateRequest(name=name))):
            err = await _error(rpc(req, metadata=env.bob))
            assert err.code() == grpc.StatusCode.NOT_FOUND
            messages.add(err.details().replace(name, "<name>"))
    # Foreign and absent read the same: nothing reveals that Alice's certificate exists.
    assert len(messages) == 1
    err = await _error(env.certs.ListCertificates(
        pb.ListCertificatesRequest(parent=env.alice_name), metadata=env.bob))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    # An official of the issuing agency is not the holder either.
    err = await _error(env.certs.GetCertificate(pb.GetCertificateRequest(name=cert.name),
                                                  metadata=env.dave))
    assert err.code() == grpc.StatusCode.NOT_FOUND


async def test_holder_wallet_lists_and_filters(env: Env) -> None:
    cert = await _issue(env, env.carol, _id_card(env.alice_name))
    got = await env.certs.GetCertificate(pb.GetCertificateRequest(name=cert.name),
                                           metadata=env.alice)
    assert got.certificate == cert
    names: list[str] = []
    token = ""
    while True:  # page through the whole wallet
        page = await env.certs.ListCertificates(pb.ListCertificatesRequest(
            parent=env.alice_name, page_size=2, page_token=token,
            filter="type=certificateTypes/resident-id-card AND status=ACTIVE"),
            metadata=env.alice)
        names += [c.name for c in page.certificates]
        assert all(c.holder == env.alice_name for c in page.certificates)
        token = page.next_page_token
        if not token:
            break
    assert cert.name in names and len(names) == len(set(names))
    none = await env.certs.ListCertificates(pb.ListCertificatesRequest(
        parent=env.alice_name, filter="type=certificateTypes/business-licence"),
        metadata=env.alice)
    assert list(none.certificates) == []
    err = await _error(env.certs.ListCertificates(pb.ListCertificatesRequest(
        parent=env.alice_name, filter="colour=red"), metadata=env.alice))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_person_acting_for_organisation_sees_its_wallet(env: Env) -> None:
    licence = await _issue(env, env.scj_partner, pb.Certificate(
        type="certificateTypes/business-licence", holder=env.org_name,
        fields={"company_name": "Alice Ltd"}))
    wallet = await env.certs.ListCertificates(
        pb.ListCertificatesRequest(parent=env.org_name), metadata=env.alice_for_org)
    assert licence.name in [c.name for c in wallet.certificates]
    # Alice without the organisation in her token is not its holder.
    err = await _error(env.certs.GetCertificate(pb.GetCertificateRequest(name=licence.name),
                                                  metadata=env.alice))
    assert err.code() == grpc.StatusCode.NOT_FOUND


async def _access_log(env: Env, certificate_name: str) -> list[dict[str, object]]:
    db = env.server.certificates.db  # type: ignore[attr-defined]

    def read(s: object) -> list[dict[str, object]]:
        rows = s.execute(sa.text(  # type: ignore[attr-defined]
            "SELECT accessor, action, purpose, application FROM access_log "
            "WHERE certificate_id = :c ORDER BY id"),
            {"c": certificate_name.removeprefix("certificates/")})
        return [dict(r._mapping) for r in rows]

    result: list[dict[str, object]] = await db.run(read)
    return result


async def test_worker_pull_is_logged(env: Env) -> None:
    cert = await _issue(env, env.carol, _id_card(env.alice_name))
    await env.certs.GetCertificate(pb.GetCertificateRequest(name=cert.name),
                                     metadata=env.alice)  # the holder's own reads: no log
    # The worker reads for one application: without it, the call is malformed.
    err = await _error(env.certs.GetCertificate(pb.GetCertificateRequest(
        name=cert.name, purpose="application-processing"), metadata=env.worker))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(rpc_status.from_call(err))) == {"application"}
    granted = await env.certs.GrantConsent(pb.GrantConsentRequest(
        holder=env.alice_name, certificate_type="certificateTypes/resident-id-card",
        party="applications/a42", purpose="application-processing"), metadata=env.worker)
    assert granted.consent.certificate == cert.name  # her newest active one
    err = await _error(env.certs.GetCertificate(pb.GetCertificateRequest(
        name=cert.name, application="applications/a42"), metadata=env.worker))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(rpc_status.from_call(err))) == {"purpose"}
    pulled = await env.certs.GetCertificate(pb.GetCertificateRequest(
        name=cert.name, purpose="application-processing", application="applications/a42"),
        metadata=env.worker)
    assert pulled.certificate == cert
    await env.certs.ListCertificates(pb.ListCertificatesRequest(
        parent=env.alice_name, purpose="application-processing", application="applications/a42",
        filter="type=certificateTypes/resident-id-card"), metadata=env.worker)
    log = await _access_log(env, cert.name)
    assert log == [
        {"accessor": "partners/govflow-worker", "action": "get",
         "purpose": "application-processing", "application": "applications/a42"},
        {"accessor": "partners/govflow-worker", "action": "list",
         "purpose": "application-processing", "application": "applications/a42"},
    ]

    # The holder sees the same log, newest first; nobody else sees it at all.
    seen = await env.certs.ListAccessRecords(pb.ListAccessRecordsRequest(
        parent=env.alice_name, filter=f"certificate={cert.name}"), metadata=env.alice)
    assert [(r.action, r.accessor, r.application, r.party, r.consent)
            for r in seen.access_records] == [
        ("list", "partners/govflow-worker", "applications/a42", "applications/a42",
         granted.consent.name),
        ("get", "partners/govflow-worker", "applications/a42", "applications/a42",
         granted.consent.name)]
    assert all(r.certificate == cert.name for r in seen.access_records)
    for md in (env.bob, env.worker):
        err = await _error(env.certs.ListAccessRecords(
            pb.ListAccessRecordsRequest(parent=env.alice_name), metadata=md))
        assert err.code() == grpc.StatusCode.NOT_FOUND


# ---------------------------------------------------------------- status and tampering


async def test_suspend_reinstate_revoke(env: Env) -> None:
    cert = await _issue(env, env.carol, _id_card(env.alice_name))

    async def verify() -> pb.VerifyCertificateResponse:
        r: pb.VerifyCertificateResponse = await env.certs.VerifyCertificate(
            pb.VerifyCertificateRequest(name=cert.name), metadata=env.alice)
        return r

    err = await _error(env.certs.SuspendCertificate(
        pb.SuspendCertificateRequest(name=cert.name), metadata=env.carol))
    assert set(field_violations(rpc_status.from_call(err))) == {"reason"}
    err = await _error(env.certs.RevokeCertificate(
        pb.RevokeCertificateRequest(name=cert.name, reason="x"), metadata=env.alice))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED  # the holder is not the issuer
    err = await _error(env.certs.RevokeCertificate(
        pb.RevokeCertificateRequest(name=cert.name, reason="x"), metadata=env.bob))
    assert err.code() == grpc.StatusCode.NOT_FOUND

    r = await env.certs.SuspendCertificate(
        pb.SuspendCertificateRequest(name=cert.name, reason="pledge under check"),
        metadata=env.carol)
    assert r.certificate.status == pb.CERTIFICATE_STATUS_SUSPENDED
    assert r.certificate.status_reason == "pledge under check"
    v = await verify()
    assert not v.valid and list(v.failures) == [pb.VERIFICATION_FAILURE_SUSPENDED]

    await env.certs.ReinstateCertificate(
        pb.ReinstateCertificateRequest(name=cert.name, reason="pledge checked"),
        metadata=env.carol)
    assert (await verify()).valid

    await env.certs.RevokeCertificate(
        pb.RevokeCertificateRequest(name=cert.name, reason="pledge was false"),
        metadata=env.worker)
    v = await verify()
    assert list(v.failures) == [pb.VERIFICATION_FAILURE_REVOKED]
    assert v.certificate.status == pb.CERTIFICATE_STATUS_REVOKED
    err = await _error(env.certs.ReinstateCertificate(
        pb.ReinstateCertificateRequest(name=cert.name, reason="oops"), metadata=env.carol))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = error_info(rpc_status.from_call(err))
    assert info is not None and info.reason == "CERTIFICATE_REVOKED"


async def test_expired_certificate(env: Env) -> None:
    now = dt.datetime.now(dt.UTC)
    old = _id_card(env.alice_name)
    old.valid_from.CopyFrom(_ts(now - dt.timedelta(days=30)))
    old.valid_until.CopyFrom(_ts(now - dt.timedelta(days=1)))
    cert = await _issue(env, env.carol, old)
    assert cert.status == pb.CERTIFICATE_STATUS_EXPIRED
    v = await env.certs.VerifyCertificate(pb.VerifyCertificateRequest(name=cert.name),
                                            metadata=env.alice)
    assert list(v.failures) == [pb.VERIFICATION_FAILURE_EXPIRED]
    expired = await env.certs.ListCertificates(pb.ListCertificatesRequest(
        parent=env.alice_name, filter="status=EXPIRED", page_size=100), metadata=env.alice)
    assert cert.name in [c.name for c in expired.certificates]
    active = await env.certs.ListCertificates(pb.ListCertificatesRequest(
        parent=env.alice_name, filter="status=ACTIVE", page_size=100), metadata=env.alice)
    assert cert.name not in [c.name for c in active.certificates]


async def test_tampered_record_is_detected(env: Env) -> None:
    cert = await _issue(env, env.carol, _id_card(env.alice_name))
    db = env.server.certificates.db  # type: ignore[attr-defined]
    cid = cert.name.removeprefix("certificates/")

    def tamper(s: object) -> None:
        s.execute(sa.text("UPDATE certificates SET fields_json = :f WHERE id = :i"),  # type: ignore[attr-defined]
                  {"f": json.dumps({"full_name": "Mallory", "birth_date": "1990-01-01"}),
                   "i": cid})

    await db.run(tamper)
    v = await env.certs.VerifyCertificate(pb.VerifyCertificateRequest(name=cert.name),
                                            metadata=env.alice)
    assert not v.valid and list(v.failures) == [pb.VERIFICATION_FAILURE_PAYLOAD_MISMATCH]

    def forge(s: object) -> None:
        s.execute(sa.text("UPDATE certificates SET signed_payload = :p WHERE id = :i"),  # type: ignore[attr-defined]
                  {"p": cert.signed_payload.replace('"Alice"', '"Mallory"'), "i": cid})

    await db.run(forge)
    v = await env.certs.VerifyCertificate(pb.VerifyCertificateRequest(name=cert.name),
                                            metadata=env.alice)
    assert list(v.failures) == [pb.VERIFICATION_FAILURE_BAD_SIGNATURE]


async def test_a_verification_served_again_sees_every_change(env: Env) -> None:
    """VerifyCertificate answers a holder with the verification it made before while the
    certificate's version (database triggers) and key are unchanged: a row changed by plain
    SQL, a forged key, a status change — each is seen by the very next verification."""
    cert = await _issue(env, env.carol, _id_card(env.alice_name))
    db = env.server.certificates.db  # type: ignore[attr-defined]
    cid = cert.name.removeprefix("certificates/")

    async def verify() -> pb.VerifyCertificateResponse:
        r: pb.VerifyCertificateResponse = await env.certs.VerifyCertificate(
            pb.VerifyCertificateRequest(name=cert.name), metadata=env.alice)
        return r

    def sql(statement: str, **params: object) -> None:
        async def run() -> None:
            await db.run(lambda s: s.execute(sa.text(statement), params))
        return run()  # type: ignore[return-value]

    first = await verify()
    assert first.valid and await verify() == first  # made once, served again
    original = json.loads(cert.signed_payload)["fields"]

    await sql("UPDATE certificates SET fields_json = :f WHERE id = :i",
              f=json.dumps({**original, "full_name": "Mallory"}), i=cid)
    assert list((await verify()).failures) == [pb.VERIFICATION_FAILURE_PAYLOAD_MISMATCH]
    await sql("UPDATE certificates SET fields_json = :f WHERE id = :i",
              f=json.dumps(original), i=cid)
    assert (await verify()) == first

    # Another public key put in place of the issuer's: the signature fails.
    forged = OKPAlgorithm.to_jwk(Ed25519PrivateKey.generate().public_key())
    genuine = await db.run(lambda s: s.execute(sa.text(
        "SELECT public_jwk FROM issuer_keys WHERE kid = :k"), {"k": cert.key_id}).scalar_one())
    await sql("UPDATE issuer_keys SET public_jwk = :j WHERE kid = :k", j=forged, k=cert.key_id)
    assert list((await verify()).failures) == [pb.VERIFICATION_FAILURE_BAD_SIGNATURE]
    # A key row that is not a key at all: no usable key, not an internal error.
    await sql("UPDATE issuer_keys SET public_jwk = 'damaged' WHERE kid = :k", k=cert.key_id)
    assert pb.VERIFICATION_FAILURE_UNKNOWN_KEY in (await verify()).failures
    await sql("UPDATE issuer_keys SET public_jwk = :j WHERE kid = :k", j=genuine, k=cert.key_id)
    assert (await verify()).valid

    # A status written by plain SQL, as by the API.
    await sql("UPDATE certificates SET status = 'suspended' WHERE id = :i", i=cid)
    suspended = await verify()
    assert list(suspended.failures) == [pb.VERIFICATION_FAILURE_SUSPENDED]
    assert suspended.certificate.status == pb.CERTIFICATE_STATUS_SUSPENDED
    await env.certs.ReinstateCertificate(
        pb.ReinstateCertificateRequest(name=cert.name, reason="checked"), metadata=env.carol)
    again = await verify()
    assert again.valid and again.certificate.status_reason == "checked"

    # Deleted and written again under the same id (its old version): verified afresh.
    row = await db.run(lambda s: dict(s.execute(sa.text(
        "SELECT * FROM certificates WHERE id = :i"), {"i": cid}).mappings().one()))
    await sql("DELETE FROM certificates WHERE id = :i", i=cid)
    err = await _error(verify())
    assert err.code() == grpc.StatusCode.NOT_FOUND
    tampered = {**row, "fields_json": json.dumps({**original, "full_name": "Mallory"})}
    await sql(f"INSERT INTO certificates ({', '.join(tampered)}) VALUES "
              f"({', '.join(':' + k for k in tampered)})", **tampered)
    assert list((await verify()).failures) == [pb.VERIFICATION_FAILURE_PAYLOAD_MISMATCH]


async def test_a_verification_served_again_follows_the_clock(env: Env,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    """Within its validity a certificate's verification is served again; once the clock
    passes its end (or is set before its start) it is made again and says so."""
    certs = env.server.certificates  # type: ignore[attr-defined]
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    card = _id_card(env.alice_name)
    card.valid_from.CopyFrom(_ts(now - dt.timedelta(days=1)))
    card.valid_until.CopyFrom(_ts(now + dt.timedelta(days=2)))
    cert = await _issue(env, env.carol, card)

    async def verify_at(t: dt.datetime) -> pb.VerifyCertificateResponse:
        monkeypatch.setattr(certs, "clock", lambda: t)
        r: pb.VerifyCertificateResponse = await env.certs.VerifyCertificate(
            pb.VerifyCertificateRequest(name=cert.name), metadata=env.alice)
        return r

    assert (await verify_at(now)).valid
    assert (await verify_at(now + dt.timedelta(days=1))).valid
    late = await verify_at(now + dt.timedelta(days=2))
    assert list(late.failures) == [pb.VERIFICATION_FAILURE_EXPIRED]
    assert late.certificate.status == pb.CERTIFICATE_STATUS_EXPIRED
    early = await verify_at(now - dt.timedelta(days=2))
    assert list(early.failures) == [pb.VERIFICATION_FAILURE_NOT_YET_VALID]
    back = await verify_at(now)
    assert back.valid and back.certificate.status == pb.CERTIFICATE_STATUS_ACTIVE


# ---------------------------------------------------------------- the service itself


async def test_public_methods_health_and_auth(env: Env) -> None:
    types = await env.certs.ListCertificateTypes(pb.ListCertificateTypesRequest(
        filter="issuing_agency=agencies/gongan"))
    assert [t.name for t in types.certificate_types] == ["certificateTypes/resident-id-card"]
    assert types.certificate_types[0].fields[1].type == "date"
    # Chinese first, English beside it (issue 21, item 4); a type defined without one has "".
    assert types.certificate_types[0].display_name == "居民身份证"
    assert types.certificate_types[0].display_name_en == "Resident ID card"
    licence = await env.certs.ListCertificateTypes(pb.ListCertificateTypesRequest(
        filter="issuing_agency=agencies/scj"))
    assert [(t.display_name, t.display_name_en) for t in licence.certificate_types] == [("营业执照", "")]
    err = await _error(env.certs.GetCertificate(pb.GetCertificateRequest(name="certificates/x")))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    health = health_pb2_grpc.HealthStub(env.channel)
    r = await health.Check(health_pb2.HealthCheckRequest(
        service="govflow.certificates.v1.CertificatesService"))
    assert r.status == health_pb2.HealthCheckResponse.SERVING
