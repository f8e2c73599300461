"""Certificates that must not be accepted, beyond what tests/unit/test_certificates_domain.py
(tampered fields and signatures, wrong and unknown keys, other or untrusted issuers, validity
window), tests/unit/test_certificates_offline.py (every offline failure: tampered, garbled,
revoked, suspended, expired, unknown issuer or key, stale status lists) and
tests/integration/test_certificates_consent.py (reads without a grant) already cover:
algorithm confusion on the compact token (alg none, HS256 keyed with the issuer's public
key, an EdDSA header over a forged body) and replay by another holder, offline and online."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import uuid

import grpc
import pytest
from cryptography.hazmat.primitives import serialization

from govflow.certificates.v1 import certificates_pb2 as cpb
from services.certificates import domain, offline
from services.certificates.offline import OfflineFailure as F
from tests.security.support import login, new_person
from tests.stack import Stack
from tests.unit.test_certificates_offline import NOW, Issuer, _verify


def _b64json(doc: dict[str, object]) -> str:
    return domain.b64url(json.dumps(doc).encode())


def _body(token: str) -> str:
    return token.split(".")[1]


def test_alg_none_is_refused() -> None:
    issuer = Issuer()
    body = _body(issuer.token())
    for header in ({"alg": "none", "kid": issuer.kid}, {"alg": "None", "kid": issuer.kid},
                   {"kid": issuer.kid}):
        for sig in ("", "AA"):
            forged = f"{_b64json(header)}.{body}.{sig}"
            assert _verify(forged, [issuer], [issuer.status_list()]) == [F.BAD_SIGNATURE]


def test_hs256_keyed_with_the_public_key_is_refused() -> None:
    """The classic confusion: HMAC the token with the issuer's *public* key as the secret,
    hoping a verifier that trusts the header's alg uses that key as an HMAC secret."""
    issuer = Issuer()
    public = issuer.key.public_key()
    secrets_tried = [
        public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw),
        public.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo),
        json.dumps(issuer.jwk()).encode(),
    ]
    claims = json.loads(domain.b64url_decode(_body(issuer.token())))
    claims["holder"] = "persons/mallory"
    body = domain.b64url(domain.canonical(claims))
    for alg in ("HS256", "HS512"):
        header = _b64json({"alg": alg, "kid": issuer.kid, "typ": offline.COMPACT_TYP})
        for secret in secrets_tried:
            digest = hashlib.sha256 if alg == "HS256" else hashlib.sha512
            sig = domain.b64url(hmac.new(secret, f"{header}.{body}".encode(), digest).digest())
            assert _verify(f"{header}.{body}.{sig}", [issuer],
                           [issuer.status_list()]) == [F.BAD_SIGNATURE]


def test_eddsa_header_over_a_forged_body_is_refused() -> None:
    issuer, mallory = Issuer(), Issuer()  # mallory signs with a key of the same kid
    mallory.kid = issuer.kid
    forged = mallory.token(holder="persons/mallory")
    assert _verify(forged, [issuer], [issuer.status_list()]) == [F.BAD_SIGNATURE]


def test_replay_by_another_holder_is_refused_offline() -> None:
    issuer = Issuer()
    token = issuer.token()  # held by persons/p1
    keys = offline.load_keys(json.dumps({"keys": [issuer.jwk()]}))
    lists, _ = offline.load_status_lists([issuer.status_list()], keys)
    now = NOW
    assert offline.verify_compact(token, keys, lists, now=now, holder="persons/p1").valid
    result = offline.verify_compact(token, keys, lists, now=now, holder="persons/p2")
    assert result.failures == [F.HOLDER_MISMATCH]
    valid, lines = offline.verify_report(
        token, json.dumps({"keys": [issuer.jwk()]}),
        json.dumps({"status_lists": [issuer.status_list()]}), now=now, holder="persons/p2")
    assert not valid and any("HOLDER_MISMATCH" in line for line in lines)


@pytest.mark.parametrize("rpc", ["GetCertificate", "VerifyCertificate",
                                 "GetCompactCertificate"])
async def test_replay_by_another_holder_is_refused_online(stack: Stack, rpc: str) -> None:
    """Holder B presenting holder A's certificate (its name, or A's compact token) is not
    served as B's: NOT_FOUND online, HOLDER_MISMATCH offline for B."""
    admin = await stack.service_md()
    a, a_no = await new_person(stack, admin, "Holder A")
    b, b_no = await new_person(stack, admin, "Holder B")
    cert = (await stack.certificates.IssueCertificate(cpb.IssueCertificateRequest(
        certificate=cpb.Certificate(
            type="certificateTypes/drivers-licence", holder=a,
            fields={"id_number": a_no, "name": "Holder A", "licence_class": "C1",
                    "first_issue_date": "2012-05-20"}),
        request_id=uuid.uuid4().hex), metadata=admin)).certificate.name
    as_a, as_b = await login(stack, a_no), await login(stack, b_no)
    request = getattr(cpb, f"{rpc}Request")(name=cert)
    await getattr(stack.certificates, rpc)(request, metadata=as_a)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await getattr(stack.certificates, rpc)(request, metadata=as_b)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    wallet = await stack.certificates.ListCertificates(cpb.ListCertificatesRequest(parent=b),
                                                       metadata=as_b)
    assert cert not in [c.name for c in wallet.certificates]
    if rpc == "GetCompactCertificate":
        token = (await stack.certificates.GetCompactCertificate(request, metadata=as_a)).token
        keys = offline.load_keys((await stack.certificates.ListIssuerKeys(
            cpb.ListIssuerKeysRequest())).jwks_json)
        lst = (await stack.certificates.GetStatusList(cpb.GetStatusListRequest(
            issuer="agencies/sz-psb"))).status_list
        lists, _ = offline.load_status_lists(
            [{"issuer": lst.issuer, "key_id": lst.key_id, "signed_payload": lst.signed_payload,
              "signature": lst.signature}], keys)
        now = dt.datetime.now(dt.UTC)
        assert offline.verify_compact(token, keys, lists, now=now, holder=a).valid
        assert offline.verify_compact(token, keys, lists, now=now, holder=b).failures == [
            F.HOLDER_MISMATCH]
