"""Cross-border recognition (issue 27, items 3 and 4) over real gRPC, on SQLite and
PostgreSQL: the trust list (add, replace, remove, versions, signature, who may change it,
the audit chain), imports of foreign certificates (good, and refused with the reason: bad
signature, unknown issuer, out of scope, expired, revoked, no status list, someone else's),
and verification online and offline before and after an issuer is removed."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import pathlib
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest
import sqlalchemy as sa
from google.protobuf import timestamp_pb2
from grpc_status import rpc_status
from sqlmodel import Session, col, select

from govflow import audit
from govflow.certificates.v1 import certificates_pb2 as pb
from govflow.certificates.v1 import certificates_pb2_grpc
from govflow.db import make_engine
from govflow.errors import error_info, field_violations
from govflow.identity.v1 import identity_pb2 as ipb
from govflow.settings import Settings
from govflow_cli.foreign_issuer import ForeignIssuer
from services.certificates import foreign, offline, offline_cli
from services.certificates.store.audit import AUDIT_CHAIN
from services.certificates.store.tables import AuditEntryRow, AuditHeadRow
from services.identity.domain import credit_code_check_char, id_check_char
from tests.integration.certificates_servers import (
    BACKENDS,
    bearer,
    certificates_servers,
)
from tests.integration.certificates_servers import Metadata as Md

PASSWORD = "password123"
HKID = "hk-identity-card"


def _ts(t: dt.datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(t)
    return ts


@dataclasses.dataclass
class Env:
    certs: certificates_pb2_grpc.CertificatesServiceStub
    settings: Settings
    admin: Md
    worker: Md
    alice: Md  # a Hong Kong resident with a Govflow account
    bob: Md
    official: Md  # an admin official of an agency: not a platform administrator
    alice_for_org: Md
    alice_name: str
    bob_name: str
    org_name: str
    addr: str


@pytest.fixture(scope="module", params=BACKENDS)
async def env(request: pytest.FixtureRequest,
              tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    tmp: pathlib.Path = tmp_path_factory.mktemp(f"trust-{request.param}")
    async with certificates_servers(tmp, request.param) as servers:
        ident = servers.identity
        admin = await servers.admin()
        await ident.CreateAgency(ipb.CreateAgencyRequest(agency=ipb.Agency(
            code="gongan", display_name="gongan", division_code="440300",
            level=ipb.AGENCY_LEVEL_CITY)), metadata=admin)
        numbers, names = {}, {}
        for seq, who in enumerate(("alice", "bob", "olga"), start=1):
            first = f"81000019900101{seq:03d}"
            numbers[who] = first + id_check_char(first)
            r = await ident.CreatePerson(ipb.CreatePersonRequest(
                person=ipb.Person(id_number=numbers[who], display_name=who),
                password=PASSWORD, request_id=f"person-{who}"), metadata=admin)
            names[who] = r.person.name
        await ident.SetOfficialRoles(ipb.SetOfficialRolesRequest(official=ipb.Official(
            person=names["olga"], agency="agencies/gongan", roles=[ipb.ROLE_ADMIN])),
            metadata=admin)
        code = "91440300MA5TRQ7K2"
        org = await ident.CreateOrganisation(ipb.CreateOrganisationRequest(
            organisation=ipb.Organisation(credit_code=code + credit_code_check_char(code),
                                          display_name="Alice HK Ltd",
                                          legal_representative=names["alice"]),
            request_id="org-1"), metadata=admin)

        async def login(who: str, agency: str = "", acting_for: str = "") -> Md:
            r = await ident.Login(ipb.LoginRequest(id_number=numbers[who], password=PASSWORD,
                                                   agency=agency, acting_for=acting_for))
            return bearer(r.tokens.access_token)

        yield Env(
            certs=servers.certificates, settings=servers.settings,
            admin=admin, worker=await servers.worker(),
            alice=await login("alice"), bob=await login("bob"),
            official=await login("olga", agency="agencies/gongan"),
            alice_for_org=await login("alice", acting_for=org.organisation.name),
            alice_name=names["alice"], bob_name=names["bob"], org_name=org.organisation.name,
            addr=servers.addr)


async def _error(call: object) -> grpc.aio.AioRpcError:
    try:
        await call  # type: ignore[misc]  # a grpc.aio call object is awaitable
    except grpc.aio.AioRpcError as err:
        return err
    raise AssertionError("the call succeeded")


def _reason(err: grpc.aio.AioRpcError) -> tuple[str, dict[str, str]]:
    status = rpc_status.from_call(err)
    assert status is not None
    info = error_info(status)
    assert info is not None
    return info.reason, dict(info.metadata)


def _entry(fi: ForeignIssuer, *, types: tuple[str, ...] = (HKID,),
           days: int = 365) -> pb.TrustedIssuer:
    return pb.TrustedIssuer(
        name=fi.issuer, display_name="香港特别行政区入境事务处", jurisdiction="HK",
        jwks_json=fi.jwks_json(), status_list_location="https://example.invalid/hk/status",
        certificate_types=[f"certificateTypes/{t}" for t in types],
        not_after=_ts(dt.datetime.now(dt.UTC) + dt.timedelta(days=days)))


async def _listed(env: Env, *, types: tuple[str, ...] = (HKID,),
                  publish: bool = True) -> ForeignIssuer:
    """A fresh foreign issuer in the trust list, with its (empty) status list published."""
    fi = ForeignIssuer(f"issuers/hk-{uuid.uuid4().hex[:8]}")
    await env.certs.AddTrustedIssuer(pb.AddTrustedIssuerRequest(
        trusted_issuer=_entry(fi, types=types)), metadata=env.admin)
    if publish:  # a minute ago, so that a test's next list is newer
        await _publish(env, fi, issued=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
    return fi


async def _publish(env: Env, fi: ForeignIssuer, *, revoked: tuple[int, ...] = (),
                   issued: dt.datetime | None = None) -> None:
    payload, signature = fi.status_list(revoked=revoked, issued=issued)
    await env.certs.PublishIssuerStatusList(pb.PublishIssuerStatusListRequest(
        status_list=pb.StatusList(signed_payload=payload, signature=signature)),
        metadata=env.admin)


def _hkid(fi: ForeignIssuer, holder: str, **kw: object) -> tuple[str, int]:
    return fi.certificate(type_code=str(kw.pop("type_code", HKID)), holder=holder,
                          fields={"name": "CHAN Tai Man", "hkid_number": "A123456(7)",
                                  "permanent_resident": "true"}, **kw)  # type: ignore[arg-type]


def _audit(env: Env, subject: str) -> list[tuple[str, str, dict[str, object]]]:
    engine = make_engine(env.settings.database_url("certificates"))
    try:
        with Session(engine) as s:
            report = audit.read_and_verify(s, AUDIT_CHAIN, AuditEntryRow, AuditHeadRow)
            assert report.ok, report.problem
            rows = s.exec(select(AuditEntryRow).where(AuditEntryRow.subject == subject)
                          .order_by(col(AuditEntryRow.seq))).all()
            return [(r.action, r.actor, json.loads(r.entry_json)["details"]) for r in rows]
    finally:
        engine.dispose()


Bundle = tuple[str, dict[str, object], dict[str, object]]


async def _offline(env: Env, token: str, holder: str | None = None,
                   bundle: Bundle | None = None) -> tuple[bool, list[str]]:
    """``govflow verify``'s verdict on ``token`` with what ``trust-bundle`` fetches now (or
    with ``bundle``, fetched earlier)."""
    jwks, lists, trust = bundle or await offline_cli.fetch(env.addr)
    return offline.verify_report(token, jwks, json.dumps(lists), now=dt.datetime.now(dt.UTC),
                                 holder=holder, trust_list_json=json.dumps(trust))


# ---------------------------------------------------------------- the list


async def test_trust_list_versions_signature_and_audit(env: Env) -> None:
    before = (await env.certs.ListTrustedIssuers(pb.ListTrustedIssuersRequest())).trust_list_version
    fi = ForeignIssuer(f"issuers/hk-{uuid.uuid4().hex[:8]}")
    added = await env.certs.AddTrustedIssuer(pb.AddTrustedIssuerRequest(
        trusted_issuer=_entry(fi)), metadata=env.admin)
    assert added.trust_list_version == before + 1
    assert added.trusted_issuer.added_by == "partners/govflow-admin"
    assert added.trusted_issuer.version == added.trust_list_version
    assert json.loads(added.trusted_issuer.jwks_json)["keys"][0]["kid"] == fi.kid

    # Replacing the entry (a wider scope) is a new version too.
    replaced = await env.certs.AddTrustedIssuer(pb.AddTrustedIssuerRequest(
        trusted_issuer=_entry(fi, types=(HKID, "hk-driving-licence"))), metadata=env.admin)
    assert replaced.trust_list_version == before + 2

    # The signed list, public, verifies with the platform's published key.
    signed = (await env.certs.GetTrustList(pb.GetTrustListRequest())).trust_list
    keys = offline.load_keys((await env.certs.ListIssuerKeys(pb.ListIssuerKeysRequest())).jwks_json)
    tl = foreign.read_trust_list(signed.signed_payload, signed.signature, keys)
    assert tl.version == signed.version == before + 2
    assert keys[signed.key_id].issuer == "agencies/govflow"
    assert tl.issuers[fi.issuer].certificate_types == (
        "certificateTypes/hk-driving-licence", f"certificateTypes/{HKID}")
    # A changed byte breaks the signature.
    forged = signed.signed_payload.replace(fi.issuer, "issuers/evil-0000")
    with pytest.raises(ValueError, match="signature"):
        foreign.read_trust_list(forged, signed.signature, keys)

    removed = await env.certs.RemoveTrustedIssuer(pb.RemoveTrustedIssuerRequest(
        name=fi.issuer, reason="agreement ended"), metadata=env.admin)
    assert removed.trust_list_version == before + 3
    listed = await env.certs.ListTrustedIssuers(pb.ListTrustedIssuersRequest(page_size=100))
    assert fi.issuer not in {t.name for t in listed.trusted_issuers}
    assert listed.trust_list_version == before + 3
    again = await _error(env.certs.RemoveTrustedIssuer(pb.RemoveTrustedIssuerRequest(
        name=fi.issuer, reason="again"), metadata=env.admin))
    assert again.code() == grpc.StatusCode.NOT_FOUND

    # Who changed the list, and how, is in the audit chain (which still verifies).
    entries = _audit(env, fi.issuer)
    assert [(a, actor) for a, actor, _ in entries] == [
        ("trust_list.issuer_added", "partners/govflow-admin"),
        ("trust_list.issuer_added", "partners/govflow-admin"),
        ("trust_list.issuer_removed", "partners/govflow-admin")]
    assert [d["trust_list_version"] for _, _, d in entries] == [before + 1, before + 2, before + 3]
    assert entries[0][2]["key_ids"] == [fi.kid] and entries[1][2]["replaced"] is True
    assert entries[2][2]["reason"] == "agreement ended"


async def test_only_platform_administrators_change_the_list(env: Env) -> None:
    fi = ForeignIssuer(f"issuers/hk-{uuid.uuid4().hex[:8]}")
    for md in (env.alice, env.official, env.worker):
        err = await _error(env.certs.AddTrustedIssuer(pb.AddTrustedIssuerRequest(
            trusted_issuer=_entry(fi)), metadata=md))
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED, md
    err = await _error(env.certs.AddTrustedIssuer(pb.AddTrustedIssuerRequest(
        trusted_issuer=_entry(fi))))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    await _listed(env)
    # Reading it needs no token.
    await env.certs.ListTrustedIssuers(pb.ListTrustedIssuersRequest())
    await env.certs.GetTrustList(pb.GetTrustListRequest())


async def test_bad_entries_are_refused_by_field(env: Env) -> None:
    fi = ForeignIssuer(f"issuers/hk-{uuid.uuid4().hex[:8]}")
    private = json.loads(fi.jwks_json())
    private["keys"][0]["d"] = private["keys"][0]["x"]
    rsa_like = {"keys": [{"kty": "RSA", "kid": "r1", "n": "AQAB", "e": "AQAB"}]}
    cases = {
        "trusted_issuer.jwks_json": [json.dumps(private), json.dumps(rsa_like), "{}"],
    }
    for bad in cases["trusted_issuer.jwks_json"]:
        entry = _entry(fi)
        entry.jwks_json = bad
        err = await _error(env.certs.AddTrustedIssuer(pb.AddTrustedIssuerRequest(
            trusted_issuer=entry), metadata=env.admin))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "trusted_issuer.jwks_json" in field_violations(rpc_status.from_call(err))
    entry = _entry(fi, types=("Not A Type",), days=-1)
    entry.name = "agencies/hk"
    entry.jurisdiction = "hong kong"
    err = await _error(env.certs.AddTrustedIssuer(pb.AddTrustedIssuerRequest(
        trusted_issuer=entry), metadata=env.admin))
    fields = field_violations(rpc_status.from_call(err))
    assert {"trusted_issuer.name", "trusted_issuer.jurisdiction",
            "trusted_issuer.certificate_types[0]", "trusted_issuer.not_after"} <= set(fields)


# ---------------------------------------------------------------- imports and verification


async def test_import_verify_online_and_offline_then_removal(env: Env) -> None:
    fi = await _listed(env)
    token, _ = _hkid(fi, env.alice_name)
    cert = (await env.certs.ImportCertificate(pb.ImportCertificateRequest(token=token),
                                              metadata=env.alice)).certificate
    assert cert.foreign and cert.issuer == fi.issuer and cert.holder == env.alice_name
    assert cert.type == f"certificateTypes/{HKID}" and cert.fields["name"] == "CHAN Tai Man"
    assert cert.status == pb.CERTIFICATE_STATUS_ACTIVE and cert.key_id == fi.kid
    # The same token again is the same certificate.
    again = (await env.certs.ImportCertificate(pb.ImportCertificateRequest(token=token),
                                               metadata=env.alice)).certificate
    assert again.name == cert.name
    wallet = await env.certs.ListCertificates(pb.ListCertificatesRequest(
        parent=env.alice_name, filter=f"type=certificateTypes/{HKID}"), metadata=env.alice)
    assert [c.name for c in wallet.certificates] == [cert.name]
    assert _audit(env, cert.name)[0][:2] == ("certificate.imported", env.alice_name)

    # Online: the holder verifies; the worker pulls it by type under a grant for an
    # application, as a matter whose material lists the foreign type does.
    v = await env.certs.VerifyCertificate(pb.VerifyCertificateRequest(name=cert.name),
                                          metadata=env.alice)
    assert v.valid, list(v.failures)
    granted = await env.certs.GrantConsent(pb.GrantConsentRequest(
        holder=env.alice_name, certificate_type=f"certificateTypes/{HKID}",
        party="applications/hk1", purpose="application-processing"), metadata=env.worker)
    assert granted.consent.certificate == cert.name
    pulled = await env.certs.VerifyCertificate(pb.VerifyCertificateRequest(
        name=cert.name, purpose="application-processing", application="applications/hk1"),
        metadata=env.worker)
    assert pulled.valid
    # The compact form is the issuer's own token; offline it verifies with the trust list.
    compact = await env.certs.GetCompactCertificate(pb.GetCompactCertificateRequest(
        name=cert.name), metadata=env.alice)
    assert compact.token == token
    ok, lines = await _offline(env, token, holder=env.alice_name)
    assert ok, lines
    before = await offline_cli.fetch(env.addr)

    # Removed from the list: from then on it fails, online and offline, with the reason.
    await env.certs.RemoveTrustedIssuer(pb.RemoveTrustedIssuerRequest(
        name=fi.issuer, reason="test"), metadata=env.admin)
    v = await env.certs.VerifyCertificate(pb.VerifyCertificateRequest(name=cert.name),
                                          metadata=env.alice)
    assert not v.valid
    assert list(v.failures) == [pb.VERIFICATION_FAILURE_ISSUER_NOT_TRUSTED]
    ok, lines = await _offline(env, token)
    assert not ok and any("ISSUER_NOT_TRUSTED" in line for line in lines), lines
    # A verifier still carrying the bundle from before the removal accepts it until that
    # trust list's valid_until (an hour); one holding both trust lists goes by the newer.
    ok, lines = await _offline(env, token, bundle=before)
    assert ok, lines
    jwks, lists, after = await offline_cli.fetch(env.addr)
    both: dict[str, object] = {
        "trust_lists": [*before[2]["trust_lists"], *after["trust_lists"]]}  # type: ignore[misc]  # JSON values are untyped
    ok, lines = await _offline(env, token, bundle=(before[0], before[1], both))
    assert not ok and any("ISSUER_NOT_TRUSTED" in line for line in lines), lines
    err = await _error(env.certs.ImportCertificate(pb.ImportCertificateRequest(
        token=_hkid(fi, env.alice_name)[0]), metadata=env.alice))
    assert _reason(err)[0] == "ISSUER_NOT_TRUSTED"


async def test_the_verify_command_reads_the_trust_list_file(env: Env,
                                                            tmp_path: pathlib.Path) -> None:
    fi = await _listed(env)
    token, _ = _hkid(fi, env.alice_name)
    files = tmp_path / "k.json", tmp_path / "s.json", tmp_path / "t.json"
    await offline_cli.save(env.addr, *files)  # what trust-bundle writes
    assert offline_cli.verify_command(token, *files[:2], trust_list_path=files[2]) == 0
    # Without the trust list, a foreign certificate is not trusted.
    assert offline_cli.verify_command(token, *files[:2], trust_list_path=None) == 1


async def test_imports_are_refused_with_the_reason(env: Env) -> None:
    fi = await _listed(env)
    now = dt.datetime.now(dt.UTC)
    stranger = ForeignIssuer(fi.issuer, kid=fi.kid)  # the issuer's name and kid, another key
    unlisted = ForeignIssuer(f"issuers/mo-{uuid.uuid4().hex[:8]}")
    revoked_token, revoked_index = _hkid(fi, env.alice_name)
    await _publish(env, fi, revoked=(revoked_index,))
    cases = {
        "BAD_SIGNATURE": _hkid(stranger, env.alice_name)[0],
        "ISSUER_NOT_TRUSTED": _hkid(unlisted, env.alice_name)[0],
        "TYPE_NOT_IN_SCOPE": _hkid(fi, env.alice_name, type_code="macao-identity-card")[0],
        "EXPIRED": _hkid(fi, env.alice_name, valid_from=now - dt.timedelta(days=30),
                         valid_until=now - dt.timedelta(days=1))[0],
        "REVOKED": revoked_token,
        "HOLDER_MISMATCH": _hkid(fi, env.bob_name)[0],
    }
    for reason, token in cases.items():
        err = await _error(env.certs.ImportCertificate(pb.ImportCertificateRequest(token=token),
                                                       metadata=env.alice))
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, reason
        got, meta = _reason(err)
        assert got == reason, (reason, meta)
        assert reason in meta["failures"].split(",")
    # No status list held for the issuer: its status cannot be known.
    silent = await _listed(env, publish=False)
    err = await _error(env.certs.ImportCertificate(pb.ImportCertificateRequest(
        token=_hkid(silent, env.alice_name)[0]), metadata=env.alice))
    assert _reason(err)[0] == "STATUS_UNKNOWN"
    # Not a token, or one of Govflow's own issuers: INVALID_ARGUMENT.
    local = ForeignIssuer("issuers/x")
    own_token, _ = local.certificate(type_code="resident-id-card", holder=env.alice_name,
                                     fields={}, issuer="agencies/gongan")
    for token in ("not-a-token", own_token):
        err = await _error(env.certs.ImportCertificate(pb.ImportCertificateRequest(token=token),
                                                       metadata=env.alice))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    # Only a person imports, into their own wallet or their organisation's.
    good, _ = _hkid(fi, env.alice_name)
    for md in (env.official, env.worker, env.admin):
        err = await _error(env.certs.ImportCertificate(pb.ImportCertificateRequest(token=good),
                                                       metadata=md))
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    err = await _error(env.certs.ImportCertificate(pb.ImportCertificateRequest(token=good),
                                                   metadata=env.bob))
    assert _reason(err)[0] == "HOLDER_MISMATCH"


async def test_status_changes_and_scope_apply_after_import(env: Env) -> None:
    fi = await _listed(env, types=(HKID, "hk-driving-licence"))
    token, index = _hkid(fi, env.alice_name)
    licence, _ = _hkid(fi, env.alice_name, type_code="hk-driving-licence")
    cert = (await env.certs.ImportCertificate(pb.ImportCertificateRequest(token=token),
                                              metadata=env.alice)).certificate
    second = (await env.certs.ImportCertificate(pb.ImportCertificateRequest(token=licence),
                                                metadata=env.alice)).certificate

    async def failures(name: str) -> list[int]:
        v = await env.certs.VerifyCertificate(pb.VerifyCertificateRequest(name=name),
                                              metadata=env.alice)
        return list(v.failures)

    # The issuer revokes it in a newer status list: refused from then on.
    await _publish(env, fi, revoked=(index,),
                   issued=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1))
    assert await failures(cert.name) == [pb.VERIFICATION_FAILURE_REVOKED]
    # The holder's wallet shows it revoked too, with why (the other, still good, active).
    wallet = await env.certs.ListCertificates(pb.ListCertificatesRequest(
        parent=env.alice_name), metadata=env.alice)
    shown = {c.name: (c.status, c.status_reason) for c in wallet.certificates}
    assert shown[cert.name] == (pb.CERTIFICATE_STATUS_REVOKED, "revoked by its issuer")
    assert shown[second.name] == (pb.CERTIFICATE_STATUS_ACTIVE, "")
    got = (await env.certs.GetCertificate(pb.GetCertificateRequest(name=cert.name),
                                          metadata=env.alice)).certificate
    assert (got.status, got.status_reason) == (pb.CERTIFICATE_STATUS_REVOKED,
                                               "revoked by its issuer")
    # An older list cannot be published over a newer one (no un-revoking by replay).
    payload, signature = fi.status_list(issued=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    err = await _error(env.certs.PublishIssuerStatusList(pb.PublishIssuerStatusListRequest(
        status_list=pb.StatusList(signed_payload=payload, signature=signature)),
        metadata=env.admin))
    assert _reason(err)[0] == "STATUS_LIST_NOT_NEWER"
    # The scope narrowed: the licence is out of scope, the card (still revoked) too is checked.
    await env.certs.AddTrustedIssuer(pb.AddTrustedIssuerRequest(trusted_issuer=_entry(fi)),
                                     metadata=env.admin)
    assert await failures(second.name) == [pb.VERIFICATION_FAILURE_TYPE_NOT_IN_SCOPE]
    # The status list, as the issuer signed it, is public through GetStatusList.
    sl = (await env.certs.GetStatusList(pb.GetStatusListRequest(issuer=fi.issuer))).status_list
    assert sl.issuer == fi.issuer and sl.key_id == fi.kid
    # A tampered record no longer matches the token it came from.
    engine = make_engine(env.settings.database_url("certificates"))
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE certificates SET fields_json = :f WHERE id = :i"),
                         {"f": json.dumps({"name": "SOMEONE Else"}),
                          "i": second.name.removeprefix("certificates/")})
    finally:
        engine.dispose()
    assert pb.VERIFICATION_FAILURE_PAYLOAD_MISMATCH in await failures(second.name)


async def test_an_organisation_holds_its_foreign_certificate(env: Env) -> None:
    fi = await _listed(env, types=("macao-business-registration",))
    token, _ = fi.certificate(type_code="macao-business-registration", holder=env.org_name,
                              fields={"name": "Alice HK Ltd", "registration_no": "SO-12345"})
    cert = (await env.certs.ImportCertificate(pb.ImportCertificateRequest(token=token),
                                              metadata=env.alice_for_org)).certificate
    assert cert.holder == env.org_name and cert.foreign
    err = await _error(env.certs.ImportCertificate(pb.ImportCertificateRequest(
        token=fi.certificate(type_code="macao-business-registration", holder=env.org_name,
                             fields={})[0]), metadata=env.alice))
    assert _reason(err)[0] == "HOLDER_MISMATCH"
