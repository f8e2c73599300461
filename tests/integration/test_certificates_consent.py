"""Consent grants, status lists, compact offline tokens and issuer key rotation, over real
gRPC against a real identity service, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import pathlib
import struct
import sys
import uuid

import grpc
from grpc_status import rpc_status

from govflow.certificates.v1 import certificates_pb2 as pb
from govflow.errors import error_info, field_violations
from services.certificates import domain, offline
from tests.integration.test_certificates_service import (  # noqa: F401  (env is a fixture)
    Env,
    Metadata,
    _error,
    _id_card,
    _issue,
    _ts,
    env,
)

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _reason(err: grpc.aio.AioRpcError) -> str:
    info = error_info(rpc_status.from_call(err))
    return info.reason if info else ""


async def _grant(env: Env, md: Metadata, **kw: object) -> pb.Consent:
    r: pb.GrantConsentResponse = await env.certs.GrantConsent(pb.GrantConsentRequest(**kw),
                                                              metadata=md)
    return r.consent


async def _get(env: Env, md: Metadata, name: str, purpose: str = "",
               application: str = "") -> pb.Certificate:
    r: pb.GetCertificateResponse = await env.certs.GetCertificate(pb.GetCertificateRequest(
        name=name, purpose=purpose, application=application), metadata=md)
    return r.certificate


# ---------------------------------------------------------------- consent matrix


async def test_consent_matrix(env: Env) -> None:
    cert = await _issue(env, env.carol, _id_card(env.alice_name))
    missing = "certificates/" + uuid.uuid4().hex

    # No grant: NOT_FOUND, worded exactly as for a certificate that does not exist.
    absent = await _error(_get(env, env.scj_partner, missing, "kyc"))
    no_grant = await _error(_get(env, env.scj_partner, cert.name, "kyc"))
    assert no_grant.code() == absent.code() == grpc.StatusCode.NOT_FOUND
    assert no_grant.details().replace(cert.name, "<n>") == absent.details().replace(missing, "<n>")

    kyc = await _grant(env, env.alice, certificate=cert.name, party="partners/scj-system",
                       purpose="kyc")
    assert kyc.state == pb.CONSENT_STATE_ACTIVE and kyc.holder == env.alice_name
    assert kyc.granted_by == env.alice_name and kyc.certificate == cert.name
    span = kyc.expire_time.ToDatetime() - kyc.create_time.ToDatetime()
    assert span == dt.timedelta(days=30)  # the default

    # Live grant: the party reads, verifies, lists, for the stated purpose.
    assert await _get(env, env.scj_partner, cert.name, "kyc") == cert
    v = await env.certs.VerifyCertificate(pb.VerifyCertificateRequest(
        name=cert.name, purpose="kyc"), metadata=env.scj_partner)
    assert v.valid
    wallet = await env.certs.ListCertificates(pb.ListCertificatesRequest(
        parent=env.alice_name, purpose="kyc", page_size=100), metadata=env.scj_partner)
    assert [c.name for c in wallet.certificates] == [cert.name]  # only what is granted

    # Wrong purpose under a grant the caller holds: PERMISSION_DENIED, WRONG_PURPOSE.
    for call in (_get(env, env.scj_partner, cert.name, "marketing"),
                 env.certs.VerifyCertificate(pb.VerifyCertificateRequest(
                     name=cert.name, purpose="marketing"), metadata=env.scj_partner),
                 env.certs.ListCertificates(pb.ListCertificatesRequest(
                     parent=env.alice_name, purpose="marketing"), metadata=env.scj_partner)):
        err = await _error(call)
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED and _reason(err) == "WRONG_PURPOSE"

    # Wrong party: an agency, the worker for some application, another citizen.
    for md, application in ((env.dave, ""), (env.worker, "applications/other"), (env.bob, "")):
        err = await _error(_get(env, md, cert.name, "kyc", application))
        assert err.code() == grpc.StatusCode.NOT_FOUND
    err = await _error(env.certs.ListCertificates(pb.ListCertificatesRequest(
        parent=env.alice_name, purpose="kyc"), metadata=env.dave))
    assert err.code() == grpc.StatusCode.NOT_FOUND

    # An official reads as their agency.
    review = await _grant(env, env.alice, certificate=cert.name, party="agencies/gongan",
                          purpose="case-review")
    assert await _get(env, env.dave, cert.name, "case-review") == cert

    # Revoked: NOT_FOUND again; revoking twice is harmless; only the holder revokes.
    err = await _error(env.certs.RevokeConsent(pb.RevokeConsentRequest(name=kyc.name),
                                               metadata=env.scj_partner))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    revoked = (await env.certs.RevokeConsent(pb.RevokeConsentRequest(name=kyc.name),
                                             metadata=env.alice)).consent
    assert revoked.state == pb.CONSENT_STATE_REVOKED and revoked.HasField("revoke_time")
    again = (await env.certs.RevokeConsent(pb.RevokeConsentRequest(name=kyc.name),
                                           metadata=env.alice)).consent
    assert again == revoked
    err = await _error(_get(env, env.scj_partner, cert.name, "kyc"))
    assert err.code() == grpc.StatusCode.NOT_FOUND

    # Expired: NOT_FOUND once the time has passed.
    soon = await _grant(env, env.alice, certificate=cert.name, party="partners/scj-system",
                        purpose="short", expire_time=_ts(dt.datetime.now(dt.UTC)
                                                         + dt.timedelta(seconds=2)))
    assert await _get(env, env.scj_partner, cert.name, "short") == cert
    await asyncio.sleep(2.2)
    err = await _error(_get(env, env.scj_partner, cert.name, "short"))
    assert err.code() == grpc.StatusCode.NOT_FOUND

    # The holder's access log shows every read made under a grant, with the grant.
    seen = await env.certs.ListAccessRecords(pb.ListAccessRecordsRequest(
        parent=env.alice_name, filter=f"certificate={cert.name}", page_size=100),
        metadata=env.alice)
    got = [(r.action, r.accessor, r.purpose, r.party, r.consent)
           for r in reversed(seen.access_records)]
    assert got == [
        ("get", "partners/scj-system", "kyc", "partners/scj-system", kyc.name),
        ("verify", "partners/scj-system", "kyc", "partners/scj-system", kyc.name),
        ("list", "partners/scj-system", "kyc", "partners/scj-system", kyc.name),
        ("get", dave_subject(seen), "case-review", "agencies/gongan", review.name),
        ("get", "partners/scj-system", "short", "partners/scj-system", soon.name),
    ]

    # The holder lists their grants; nobody else can.
    mine = await env.certs.ListConsents(pb.ListConsentsRequest(
        parent=env.alice_name, filter=f"certificate={cert.name}"), metadata=env.alice)
    states = {c.name: c.state for c in mine.consents}
    assert states == {kyc.name: pb.CONSENT_STATE_REVOKED, review.name: pb.CONSENT_STATE_ACTIVE,
                      soon.name: pb.CONSENT_STATE_EXPIRED}
    active = await env.certs.ListConsents(pb.ListConsentsRequest(
        parent=env.alice_name, filter=f"certificate={cert.name} AND state=ACTIVE"),
        metadata=env.alice)
    assert [c.name for c in active.consents] == [review.name]
    page1 = await env.certs.ListConsents(pb.ListConsentsRequest(
        parent=env.alice_name, filter=f"certificate={cert.name}", page_size=2),
        metadata=env.alice)
    page2 = await env.certs.ListConsents(pb.ListConsentsRequest(
        parent=env.alice_name, filter=f"certificate={cert.name}", page_size=2,
        page_token=page1.next_page_token), metadata=env.alice)
    assert [c.name for c in [*page1.consents, *page2.consents]] == [c.name for c in mine.consents]
    err = await _error(env.certs.ListConsents(pb.ListConsentsRequest(parent=env.alice_name),
                                              metadata=env.bob))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    # An expired grant does not stand in the way of the same grant made again: a new one.
    renewed = await _grant(env, env.alice, certificate=cert.name, party="partners/scj-system",
                           purpose="short")
    assert renewed.name != soon.name and renewed.state == pb.CONSENT_STATE_ACTIVE
    assert await _get(env, env.scj_partner, cert.name, "short") == cert
    states = {c.name: c.state for c in (await env.certs.ListConsents(pb.ListConsentsRequest(
        parent=env.alice_name, filter="party=partners/scj-system", page_size=100),
        metadata=env.alice)).consents}
    assert states[soon.name] == pb.CONSENT_STATE_EXPIRED
    assert states[renewed.name] == pb.CONSENT_STATE_ACTIVE


def dave_subject(seen: pb.ListAccessRecordsResponse) -> str:
    return next(r.accessor for r in seen.access_records if r.party == "agencies/gongan")


async def test_grant_rules_and_idempotency(env: Env) -> None:
    cert = await _issue(env, env.carol, _id_card(env.alice_name))
    # Only the holder grants (the worker aside): anyone else is told nothing.
    for md in (env.bob, env.dave, env.scj_partner):
        err = await _error(_grant(env, md, certificate=cert.name, party="partners/scj-system",
                                  purpose="kyc"))
        assert err.code() == grpc.StatusCode.NOT_FOUND
    err = await _error(_grant(env, env.alice, certificate="nope", party="persons/x", purpose="",
                              expire_time=_ts(dt.datetime.now(dt.UTC) - dt.timedelta(days=1))))
    assert set(field_violations(rpc_status.from_call(err))) == {
        "certificate", "party", "purpose", "expire_time"}
    # The same live grant comes back, also under concurrent retries.
    many = await asyncio.gather(*(_grant(env, env.alice, certificate=cert.name,
                                         party="partners/scj-system", purpose="loan")
                                  for _ in range(5)))
    assert len({c.name for c in many}) == 1
    other = await _grant(env, env.alice, certificate=cert.name, party="partners/scj-system",
                         purpose="loan-2")
    assert other.name != many[0].name
    # The organisation's certificate is granted by the person acting for it.
    licence = await _issue(env, env.scj_partner, pb.Certificate(
        type="certificateTypes/business-licence", holder=env.org_name,
        fields={"company_name": "Alice Ltd"}))
    org_grant = await _grant(env, env.alice_for_org, certificate=licence.name,
                             party="agencies/gongan", purpose="tender")
    assert org_grant.holder == env.org_name


async def _three_id_cards(env: Env) -> tuple[str, pb.Certificate, pb.Certificate]:
    """A new holder with three ID cards, the last suspended: (holder, oldest, newest active)."""
    holder = f"persons/w{uuid.uuid4().hex[:8]}"
    old = await _issue(env, env.carol, _id_card(holder))
    newest = await _issue(env, env.carol, _id_card(holder))
    suspended = await _issue(env, env.carol, _id_card(holder))
    await env.certs.SuspendCertificate(pb.SuspendCertificateRequest(
        name=suspended.name, reason="check"), metadata=env.carol)
    return holder, old, newest


async def test_worker_contract(env: Env) -> None:
    holder, old, newest = await _three_id_cards(env)
    app = f"applications/{uuid.uuid4().hex[:8]}"
    purpose = "application-processing"

    g = await _grant(env, env.worker, holder=holder,
                     certificate_type="certificateTypes/resident-id-card", party=app,
                     purpose=purpose)
    assert g.certificate == newest.name and g.party == app  # newest ACTIVE, not the suspended
    assert g.granted_by == "partners/govflow-worker"
    again = await _grant(env, env.worker, holder=holder,
                         certificate_type="certificateTypes/resident-id-card", party=app,
                         purpose=purpose)
    assert again.name == g.name
    assert await _get(env, env.worker, newest.name, purpose, app) == newest
    err = await _error(_get(env, env.worker, old.name, purpose, app))
    assert err.code() == grpc.StatusCode.NOT_FOUND  # the grant covers one certificate

    err = await _error(_grant(env, env.worker, holder=holder,
                              certificate_type="certificateTypes/business-licence", party=app,
                              purpose=purpose))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    err = await _error(_grant(env, env.worker, certificate=newest.name,
                              party="partners/scj-system", purpose=purpose))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED

    # The application ends: its grants end.
    for md in (env.alice, env.scj_partner, env.carol):
        err = await _error(env.certs.ReleaseApplicationGrants(
            pb.ReleaseApplicationGrantsRequest(application=app), metadata=md))
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    r = await env.certs.ReleaseApplicationGrants(pb.ReleaseApplicationGrantsRequest(
        application=app), metadata=env.worker)
    assert r.released_count == 1
    r = await env.certs.ReleaseApplicationGrants(pb.ReleaseApplicationGrantsRequest(
        application=app), metadata=env.worker)
    assert r.released_count == 0
    err = await _error(_get(env, env.worker, newest.name, purpose, app))
    assert err.code() == grpc.StatusCode.NOT_FOUND


async def _pull(env: Env, md: Metadata, **kw: object) -> pb.PullCertificateResponse:
    r: pb.PullCertificateResponse = await env.certs.PullCertificate(
        pb.PullCertificateRequest(**kw), metadata=md)
    return r


async def test_pull_grants_and_verifies_in_one_call(env: Env) -> None:
    holder, _old, newest = await _three_id_cards(env)
    app = f"applications/{uuid.uuid4().hex[:8]}"
    purpose = "application-processing"
    types = ["certificateTypes/business-licence", "certificateTypes/resident-id-card"]

    # The first type the holder has an active one of; its newest active, verified.
    r = await _pull(env, env.worker, holder=holder, certificate_types=types, application=app,
                    purpose=purpose)
    assert r.valid and not r.failures
    assert r.certificate.name == newest.name == r.consent.certificate
    assert r.certificate.fields == newest.fields
    assert (r.consent.party, r.consent.purpose) == (app, purpose)
    assert r.consent.granted_by == "partners/govflow-worker"
    # Again (a retried activity): the same grant, no second one.
    again = await _pull(env, env.worker, holder=holder, certificate_types=types,
                        application=app, purpose=purpose)
    assert again.consent.name == r.consent.name
    # The grant is GrantConsent's: the worker reads under it; the release ends it.
    assert await _get(env, env.worker, newest.name, purpose, app) == newest
    released = await env.certs.ReleaseApplicationGrants(pb.ReleaseApplicationGrantsRequest(
        application=app), metadata=env.worker)
    assert released.released_count == 1

    # Only the worker.
    for md in (env.alice, env.scj_partner, env.carol):
        err = await _error(_pull(env, md, holder=holder, certificate_types=types,
                                 application=app, purpose=purpose))
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED, md

    # Bad input: every field at fault named.
    err = await _error(_pull(env, env.worker, holder="people/x", certificate_types=[],
                             application="app-1", purpose=" "))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(rpc_status.from_call(err))) == {
        "holder", "certificate_types", "application", "purpose"}
    err = await _error(_pull(env, env.worker, holder=holder,
                             certificate_types=["certificateTypes/resident-id-card", "id-card"],
                             application=app, purpose=purpose))
    assert set(field_violations(rpc_status.from_call(err))) == {"certificate_types[1]"}

    # None of the types held.
    err = await _error(_pull(env, env.worker, holder=holder, certificate_types=types[:1],
                             application=app, purpose=purpose))
    assert (err.code(), _reason(err)) == (grpc.StatusCode.NOT_FOUND, "CERTIFICATE_NOT_FOUND")
    # Held, but not active: which one and why; no grant is made.
    only_suspended = f"persons/p{uuid.uuid4().hex[:8]}"
    card = await _issue(env, env.carol, _id_card(only_suspended))
    await env.certs.SuspendCertificate(pb.SuspendCertificateRequest(
        name=card.name, reason="check"), metadata=env.carol)
    app2 = f"applications/{uuid.uuid4().hex[:8]}"
    err = await _error(_pull(env, env.worker, holder=only_suspended, certificate_types=types,
                             application=app2, purpose=purpose))
    assert (err.code(), _reason(err)) == (grpc.StatusCode.NOT_FOUND, "CERTIFICATE_NOT_ACTIVE")
    info = error_info(rpc_status.from_call(err))
    assert info is not None and dict(info.metadata) == {
        "certificate": card.name, "certificate_type": "certificateTypes/resident-id-card",
        "state": "SUSPENDED"}
    released = await env.certs.ReleaseApplicationGrants(pb.ReleaseApplicationGrantsRequest(
        application=app2), metadata=env.worker)
    assert released.released_count == 0


# ---------------------------------------------------------------- status lists


async def _status_list(env: Env, issuer: str = "agencies/gongan") -> pb.StatusList:
    r: pb.GetStatusListResponse = await env.certs.GetStatusList(
        pb.GetStatusListRequest(issuer=issuer))  # public: no token
    return r.status_list


async def _keys(env: Env) -> dict[str, offline.IssuerKey]:
    jwks = await env.certs.ListIssuerKeys(pb.ListIssuerKeysRequest())
    return offline.load_keys(jwks.jwks_json)


async def test_status_list_reflects_revocation_and_is_signed(env: Env) -> None:
    cert = await _issue(env, env.carol, _id_card(env.alice_name))
    other = await _issue(env, env.carol, _id_card(env.alice_name))
    before = await _status_list(env)
    assert before.size >= 131072 and before.issuer == "agencies/gongan"
    assert before.valid_until.ToDatetime() - before.issued_time.ToDatetime() == dt.timedelta(hours=1)
    keys = await _keys(env)
    sl = offline.read_status_list(before.signed_payload, before.signature, keys)
    assert not offline.bit_set(sl.revoked, cert.status_list_index)
    assert json.loads(before.signed_payload)["revocation_list"] == before.revocation_list

    await env.certs.RevokeCertificate(pb.RevokeCertificateRequest(
        name=cert.name, reason="lost"), metadata=env.carol)
    await env.certs.SuspendCertificate(pb.SuspendCertificateRequest(
        name=other.name, reason="check"), metadata=env.carol)
    after = await _status_list(env)
    sl = offline.read_status_list(after.signed_payload, after.signature, keys)
    assert offline.bit_set(sl.revoked, cert.status_list_index)
    assert not offline.bit_set(sl.suspended, cert.status_list_index)
    assert offline.bit_set(sl.suspended, other.status_list_index)
    assert not offline.bit_set(sl.revoked, other.status_list_index)

    # Tampering: clearing the bit breaks the signature.
    doc = json.loads(after.signed_payload)
    doc["revocation_list"] = before.revocation_list
    forged = domain.canonical(doc).decode()
    try:
        offline.read_status_list(forged, after.signature, keys)
    except ValueError as exc:
        assert "signature" in str(exc)
    else:
        raise AssertionError("a tampered status list verified")

    err = await _error(env.certs.GetStatusList(pb.GetStatusListRequest(issuer="agencies/none")))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    err = await _error(env.certs.GetStatusList(pb.GetStatusListRequest(issuer="gongan")))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT


# ---------------------------------------------------------------- offline round trip


async def _govflow(*args: str) -> tuple[int, str]:
    """Runs the govflow command in a subprocess without blocking this loop (the services
    under test run on it). The certificates address points at a dead port unless given, so
    a command that tried to reach a service would fail."""
    env_vars = {**os.environ, "GOVFLOW_CERTIFICATES_ADDR": "127.0.0.1:9"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "govflow_cli", *args, cwd=ROOT, env=env_vars,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


async def test_offline_round_trip(env: Env, tmp_path: pathlib.Path) -> None:
    cert = await _issue(env, env.carol, _id_card(env.alice_name, height_cm="170"))
    r = await env.certs.GetCompactCertificate(pb.GetCompactCertificateRequest(
        name=cert.name, include_qr=True), metadata=env.alice)
    assert r.token.count(".") == 2 and len(r.token) < 1500
    width, height = _png_size(r.qr_png)
    assert width == height and 100 < width < 2000 and len(r.qr_png) > 200
    plain = await env.certs.GetCompactCertificate(pb.GetCompactCertificateRequest(
        name=cert.name), metadata=env.alice)
    assert plain.token == r.token and plain.qr_png == b""  # deterministic
    err = await _error(env.certs.GetCompactCertificate(pb.GetCompactCertificateRequest(
        name=cert.name), metadata=env.bob))
    assert err.code() == grpc.StatusCode.NOT_FOUND

    token_file = tmp_path / "token.txt"
    token_file.write_text(r.token)
    keys, lists = tmp_path / "keys.json", tmp_path / "lists.json"
    files = ("--keys", str(keys), "--status-lists", str(lists),
             "--trust-list", str(tmp_path / "trust-list.json"))
    addr = ("--addr", env.addr)
    code, out = await _govflow("trust-bundle", *files, *addr)
    assert code == 0, out

    code, out = await _govflow("verify", str(token_file), *files)
    assert code == 0, out
    assert out.startswith(f"valid: {cert.name}")

    tampered = r.token.split(".")
    claims = json.loads(domain.b64url_decode(tampered[1]))
    claims["fields"]["height_cm"] = "190"
    tampered[1] = domain.b64url(domain.canonical(claims))
    code, out = await _govflow("verify", ".".join(tampered), *files)
    assert code == 1 and "BAD_SIGNATURE" in out, out

    await env.certs.RevokeCertificate(pb.RevokeCertificateRequest(
        name=cert.name, reason="lost"), metadata=env.carol)
    code, out = await _govflow("verify", str(token_file), *files)
    assert code == 0, out  # the cached list predates the revocation
    code, out = await _govflow("trust-bundle", *files, *addr)
    assert code == 0, out
    code, out = await _govflow("verify", str(token_file), *files)
    assert code == 1 and out.startswith("INVALID") and "REVOKED" in out, out

    # Under a grant, another party gets the same token.
    await _grant(env, env.alice, certificate=cert.name, party="partners/scj-system",
                 purpose="offline-check")
    theirs = await env.certs.GetCompactCertificate(pb.GetCompactCertificateRequest(
        name=cert.name, purpose="offline-check"), metadata=env.scj_partner)
    assert theirs.token == r.token


# ---------------------------------------------------------------- key rotation


async def test_key_rotation_keeps_old_certificates_verifiable(env: Env) -> None:
    old = await _issue(env, env.scj_partner, pb.Certificate(
        type="certificateTypes/business-licence", holder=env.org_name,
        fields={"company_name": "Alice Ltd"}))
    old_token = (await env.certs.GetCompactCertificate(pb.GetCompactCertificateRequest(
        name=old.name), metadata=env.alice_for_org)).token

    for md in (env.carol, env.alice, env.scj_partner):  # not admins (carol: not of scj)
        err = await _error(env.certs.RotateIssuerKey(pb.RotateIssuerKeyRequest(
            agency="agencies/scj"), metadata=md))
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    err = await _error(env.certs.RotateIssuerKey(pb.RotateIssuerKeyRequest(
        agency="agencies/nowhere"), metadata=env.admin))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    rotated = await env.certs.RotateIssuerKey(pb.RotateIssuerKeyRequest(agency="agencies/scj"),
                                              metadata=env.admin)
    assert rotated.key_id != old.key_id and rotated.key_id.startswith("scj.")
    assert "d" not in json.loads(rotated.jwk_json)

    new = await _issue(env, env.scj_partner, pb.Certificate(
        type="certificateTypes/business-licence", holder=env.org_name,
        fields={"company_name": "Alice Ltd"}))
    assert new.key_id == rotated.key_id
    for c in (old, new):
        v = await env.certs.VerifyCertificate(pb.VerifyCertificateRequest(name=c.name),
                                              metadata=env.alice_for_org)
        assert v.valid, list(v.failures)
    keys = await _keys(env)
    assert {old.key_id, new.key_id} <= set(keys)

    # Offline too: the old token keeps its old kid; the new one carries the new kid.
    new_token = (await env.certs.GetCompactCertificate(pb.GetCompactCertificateRequest(
        name=new.name), metadata=env.alice_for_org)).token
    assert offline.parse_compact(old_token).kid == old.key_id
    assert offline.parse_compact(new_token).kid == rotated.key_id
    sl = await _status_list(env, "agencies/scj")
    assert sl.key_id == rotated.key_id  # lists are signed with the active key
    lists = {"agencies/scj": offline.read_status_list(sl.signed_payload, sl.signature, keys)}
    now = dt.datetime.now(dt.UTC)
    for token in (old_token, new_token):
        assert offline.verify_compact(token, keys, lists, now=now).failures == []
