"""Tokens across the real stack (identity, certificates and matters on SQLite and on
PostgreSQL): every service verifies locally and refuses missing, expired, forged and
wrong-audience tokens with UNAUTHENTICATED; a signing-key rotation logs nobody out."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Awaitable, Callable

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from grpc_status import rpc_status

from govflow import auth
from govflow.certificates.v1 import certificates_pb2 as cpb
from govflow.errors import error_info
from govflow.identity.v1 import identity_pb2 as ipb
from govflow.matters.v1 import matters_pb2 as mpb
from govflow_cli.demo_data import DEMO_PASSWORD, person
from services.identity.keys import ensure_signing_key
from tests.stack import Stack

Metadata = tuple[tuple[str, str], ...]
SERVICES = ("identity", "certificates", "matters")


def _bearer(token: str) -> Metadata:
    return (("authorization", f"Bearer {token}"),)


def _wang(stack: Stack) -> str:
    return stack.seeded.persons["wang-fang"]  # type: ignore[attr-defined,no-any-return]


def _probes(stack: Stack) -> dict[str, Callable[[Metadata], Awaitable[object]]]:
    """One call per service that a citizen may make about themself."""
    me = _wang(stack)
    return {
        "identity": lambda md: stack.identity.GetPerson(ipb.GetPersonRequest(name=me),
                                                        metadata=md),
        "certificates": lambda md: stack.certificates.ListCertificates(
            cpb.ListCertificatesRequest(parent=me), metadata=md),
        "matters": lambda md: stack.matters.ListApplications(mpb.ListApplicationsRequest(),
                                                             metadata=md),
    }


async def _outcome(call: Awaitable[object]) -> tuple[grpc.StatusCode, str]:
    try:
        await call
        return grpc.StatusCode.OK, ""
    except grpc.aio.AioRpcError as err:
        status = rpc_status.from_call(err)
        info = error_info(status) if status else None
        return err.code(), info.reason if info else ""


async def _on_all(stack: Stack, md: Metadata) -> dict[str, tuple[grpc.StatusCode, str]]:
    return {name: await _outcome(call(md)) for name, call in _probes(stack).items()}


async def _active_key(stack: Stack) -> tuple[object, str]:
    """Identity's own active private key, read from its database."""
    identity = stack.servers["identity"].identity  # type: ignore[attr-defined]
    row = await identity.db.run(ensure_signing_key)
    return serialization.load_pem_private_key(row.private_pem.encode(), password=None), row.kid


def _wang_principal(stack: Stack) -> auth.Principal:
    return auth.Principal(subject=_wang(stack), kind=auth.PERSON)


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _claims(stack: Stack, **over: object) -> dict[str, object]:
    now = int(time.time())
    return {**_wang_principal(stack).claims(), "iss": auth.ISSUER, "aud": list(auth.AUDIENCES),
            "iat": now, "nbf": now - 5, "exp": now + 300, "jti": uuid.uuid4().hex, **over}


async def test_a_real_token_works_everywhere(stack: Stack) -> None:
    md = await stack.login(person("wang-fang").id_number, DEMO_PASSWORD)
    assert {k: v[0] for k, v in (await _on_all(stack, md)).items()} == {
        s: grpc.StatusCode.OK for s in SERVICES}


@pytest.mark.parametrize("header", [
    None, "Bearer", "Bearer ", "Bearer garbage", "Bearer a.b.c", "Basic d2FuZzpwdw==",
    "Bearer " + "x" * 5000,
])
async def test_missing_or_malformed_tokens_are_refused(stack: Stack, header: str | None) -> None:
    md: Metadata = () if header is None else (("authorization", header),)
    for service, (code, _) in (await _on_all(stack, md)).items():
        assert code == grpc.StatusCode.UNAUTHENTICATED, (service, header)


async def test_a_token_signed_by_a_foreign_key_is_refused(stack: Stack) -> None:
    _, kid = await _active_key(stack)
    forged = auth.sign_token(_wang_principal(stack), private_key=Ed25519PrivateKey.generate(),
                             kid=kid, ttl_seconds=300, token_id=uuid.uuid4().hex)
    for service, (code, reason) in (await _on_all(stack, _bearer(forged))).items():
        assert code == grpc.StatusCode.UNAUTHENTICATED and reason == "TOKEN_INVALID", service


async def test_a_token_with_an_unknown_key_id_is_refused(stack: Stack) -> None:
    forged = auth.sign_token(_wang_principal(stack), private_key=Ed25519PrivateKey.generate(),
                             kid="idk-unknown", ttl_seconds=300, token_id=uuid.uuid4().hex)
    code, reason = await _outcome(_probes(stack)["identity"](_bearer(forged)))
    assert code == grpc.StatusCode.UNAUTHENTICATED and reason == "TOKEN_UNKNOWN_KEY"


async def test_an_expired_token_is_refused(stack: Stack) -> None:
    key, kid = await _active_key(stack)
    expired = auth.sign_token(_wang_principal(stack), private_key=key, kid=kid, ttl_seconds=-60,
                              token_id=uuid.uuid4().hex)
    for service, (code, reason) in (await _on_all(stack, _bearer(expired))).items():
        assert code == grpc.StatusCode.UNAUTHENTICATED and reason == "TOKEN_EXPIRED", service
    # The same key and claims with a future expiry are accepted: only the time was wrong.
    fresh = auth.sign_token(_wang_principal(stack), private_key=key, kid=kid, ttl_seconds=60,
                            token_id=uuid.uuid4().hex)
    assert all(c == grpc.StatusCode.OK for c, _ in (await _on_all(stack, _bearer(fresh))).values())


async def test_a_token_for_another_audience_is_refused(stack: Stack) -> None:
    key, kid = await _active_key(stack)
    token = auth.sign_token(_wang_principal(stack), private_key=key, kid=kid, ttl_seconds=60,
                            token_id=uuid.uuid4().hex, audiences=["govflow.certificates"])
    got = await _on_all(stack, _bearer(token))
    assert got["certificates"][0] == grpc.StatusCode.OK
    for service in ("identity", "matters"):
        assert got[service] == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_AUDIENCE"), service


async def test_unsigned_symmetric_and_foreign_issuer_tokens_are_refused(stack: Stack) -> None:
    key, kid = await _active_key(stack)
    claims = _claims(stack)
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{_b64(claims)}."
    # HS256 keyed with the public key's bytes: the classic algorithm-confusion forgery.
    public = key.public_key().public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    hs256 = f"{_b64({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{_b64(claims)}"
    import hashlib
    import hmac

    mac = hmac.new(public, hs256.encode(), hashlib.sha256).digest()
    hs256 += "." + base64.urlsafe_b64encode(mac).decode().rstrip("=")
    other_issuer = jwt.encode(_claims(stack, iss="someone-else"), key,  # type: ignore[arg-type]
                              algorithm="EdDSA", headers={"kid": kid})
    no_expiry = jwt.encode({k: v for k, v in _claims(stack).items() if k != "exp"},
                           key, algorithm="EdDSA", headers={"kid": kid})  # type: ignore[arg-type]
    for label, token in (("none", unsigned), ("HS256", hs256), ("issuer", other_issuer),
                         ("no exp", no_expiry)):
        for service, (code, _) in (await _on_all(stack, _bearer(token))).items():
            assert code == grpc.StatusCode.UNAUTHENTICATED, (label, service)


async def test_key_rotation_logs_nobody_out(stack: Stack) -> None:
    number = person("wang-fang").id_number
    old_md = await stack.login(number, DEMO_PASSWORD)
    _, old_kid = await _active_key(stack)
    # Touch every service with the old key first, so their key caches are warm (and were
    # refreshed a moment ago: the verifier must not refuse the new key for that).
    assert all(c == grpc.StatusCode.OK for c, _ in (await _on_all(stack, old_md)).values())

    admin = await stack.service_md()
    rotated = await stack.identity.RotateSigningKey(ipb.RotateSigningKeyRequest(), metadata=admin)
    new_kid = rotated.signing_key.kid
    assert new_kid != old_kid
    keys = json.loads((await stack.identity.ListPublicKeys(
        ipb.ListPublicKeysRequest())).jwks_json)["keys"]
    assert {old_kid, new_kid} <= {k["kid"] for k in keys}

    new_md = await stack.login(number, DEMO_PASSWORD)
    assert jwt.get_unverified_header(new_md[0][1].removeprefix("Bearer "))["kid"] == new_kid
    for label, md in (("old", old_md), ("new", new_md)):
        got = await _on_all(stack, md)
        assert all(c == grpc.StatusCode.OK for c, _ in got.values()), (label, got)
    # Tokens signed by hand with the new key verify too (certificates and matters fetched it).
    key, kid = await _active_key(stack)
    assert kid == new_kid
    token = auth.sign_token(_wang_principal(stack), private_key=key, kid=kid, ttl_seconds=60,
                            token_id=uuid.uuid4().hex)
    assert all(c == grpc.StatusCode.OK for c, _ in (await _on_all(stack, _bearer(token))).values())


# ---------------------------------------------------------------- the verifier's key cache


def _jwks(keys: dict[str, Ed25519PrivateKey]) -> str:
    from jwt.algorithms import OKPAlgorithm

    out = []
    for kid, k in keys.items():
        jwk = json.loads(OKPAlgorithm.to_jwk(k.public_key()))
        out.append({**jwk, "kid": kid, "alg": "EdDSA", "use": "sig"})
    return json.dumps({"keys": out})


async def test_verifier_takes_a_new_key_at_once_and_drops_a_retired_one() -> None:
    import asyncio

    keys = {"k1": Ed25519PrivateKey.generate()}
    fetches = 0

    async def fetch() -> str:
        nonlocal fetches
        fetches += 1
        return _jwks(keys)

    verifier = auth.TokenVerifier("govflow.matters", fetch, min_refresh_seconds=1.0,
                                  max_age_seconds=2.0)
    p = auth.Principal(subject="persons/p1", kind=auth.PERSON)

    def token(kid: str) -> str:
        return auth.sign_token(p, private_key=keys[kid], kid=kid, ttl_seconds=60,
                               token_id=uuid.uuid4().hex)

    assert (await verifier.verify(token("k1"))).subject == "persons/p1"
    assert fetches == 1
    keys["k2"] = Ed25519PrivateKey.generate()  # rotated a moment after the last refresh
    started = time.monotonic()
    assert (await verifier.verify(token("k2"))).subject == "persons/p1"
    assert fetches == 2 and time.monotonic() - started < 1.5

    # A flood of unknown key ids costs one fetch per interval, not one per request.
    stranger = Ed25519PrivateKey.generate()
    forged = [auth.sign_token(p, private_key=stranger, kid=f"x{i}", ttl_seconds=60,
                              token_id="t") for i in range(20)]
    results = await asyncio.gather(*(verifier.verify(t) for t in forged), return_exceptions=True)
    assert all(isinstance(r, auth.Unauthenticated) for r in results)
    assert fetches <= 4

    old = token("k1")
    del keys["k1"]  # retired: no longer published
    await asyncio.sleep(2.1)
    with pytest.raises(auth.Unauthenticated):
        await verifier.verify(old)
    assert (await verifier.verify(token("k2"))).subject == "persons/p1"
