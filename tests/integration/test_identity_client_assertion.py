"""Partner authentication by private_key_jwt (RFC 7523) on the identity service's use cases,
on SQLite and PostgreSQL: keys registered by kid (two at once for rotation), a real
assertion accepted, and refusals with a reason (expired, replayed jti, wrong audience,
wrongly signed, removed key); then the same over gRPC (AddPartnerKey, RemovePartnerKey,
AuthenticatePartnerWithAssertion)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from govflow import auth
from govflow.errors import AlreadyExists, InvalidArgument, Unauthenticated
from govflow.identity.v1 import identity_pb2 as pb
from services.identity.api import JWT_BEARER
from services.identity.server import ADMIN_SCOPES
from tests.integration.test_identity_service import Env, env, error, reason  # noqa: F401

ADMIN = auth.Principal(subject="partners/govflow-admin", kind=auth.SERVICE, scopes=ADMIN_SCOPES)


def _keypair(kid: str) -> tuple[ec.EllipticCurvePrivateKey, str]:
    private = ec.generate_private_key(ec.SECP256R1())
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private.public_key()))
    public.update(kid=kid, alg="ES256")
    return private, json.dumps(public)


def _assertion(client_id: str, private: ec.EllipticCurvePrivateKey, kid: str,
               **claims: object) -> str:
    now = int(time.time())
    body: dict[str, object] = {"iss": client_id, "sub": client_id, "aud": auth.ISSUER,
                               "exp": now + 60, "iat": now, "jti": uuid.uuid4().hex}
    body.update(claims)
    return jwt.encode(body, private, algorithm="ES256", headers={"kid": kid})


async def test_private_key_jwt(env: Env) -> None:
    identity = env.server.identity  # type: ignore[attr-defined]
    client_id, _ = await env.partner(["persons.read"])
    name = f"partners/{client_id}"
    old, old_jwk = _keypair("2026-01")
    new, new_jwk = _keypair("2026-06")
    assert await identity.partners.add_key(ADMIN, name, old_jwk) == "2026-01"
    with pytest.raises(AlreadyExists):
        await identity.partners.add_key(ADMIN, name, old_jwk)
    with pytest.raises(InvalidArgument):
        await identity.partners.add_key(ADMIN, name, '{"kty": "oct", "k": "c2VjcmV0", "kid": "h"}')

    async def refused(assertion: str) -> str:
        with pytest.raises(Unauthenticated) as exc:
            await identity.tokens.authenticate_partner_by_assertion(assertion)
        return exc.value.reason

    good = _assertion(client_id, old, "2026-01")
    access, refresh, _ = await identity.tokens.authenticate_partner_by_assertion(good)
    claims = jwt.decode(access, options={"verify_signature": False})
    assert claims["sub"] == name and claims["scopes"] == ["persons.read"]
    assert refresh
    # The same jti again: a replay.
    assert await refused(good) == "ASSERTION_REPLAYED"
    now = int(time.time())
    assert await refused(_assertion(client_id, old, "2026-01", exp=now - 120)) == "ASSERTION_EXPIRED"
    assert await refused(_assertion(client_id, old, "2026-01", aud="https://elsewhere")) \
        == "ASSERTION_WRONG_AUDIENCE"
    assert await refused(_assertion(client_id, new, "2026-01")) == "ASSERTION_BAD_SIGNATURE"
    assert await refused(_assertion(client_id, new, "2026-06")) == "ASSERTION_UNKNOWN_KEY"
    assert await refused(_assertion("no-such-client", old, "2026-01")) == "BAD_CREDENTIALS"
    # Rotation without downtime: both keys work while both are registered, then only the new.
    await identity.partners.add_key(ADMIN, name, new_jwk)
    await identity.tokens.authenticate_partner_by_assertion(_assertion(client_id, old, "2026-01"))
    await identity.tokens.authenticate_partner_by_assertion(_assertion(client_id, new, "2026-06"))
    await identity.partners.remove_key(ADMIN, name, "2026-01")
    assert await refused(_assertion(client_id, old, "2026-01")) == "ASSERTION_UNKNOWN_KEY"
    await identity.tokens.authenticate_partner_by_assertion(_assertion(client_id, new, "2026-06"))


async def test_private_key_jwt_over_grpc(env: Env) -> None:
    client_id, _ = await env.partner(["persons.read"])
    private, public = _keypair("k1")
    stranger, _ = _keypair("k1")
    added = await env.stub.AddPartnerKey(pb.AddPartnerKeyRequest(
        name=f"partners/{client_id}", public_jwk=public), metadata=env.callers["admin"])
    assert added.kid == "k1"

    def call(assertion: str, kind: str = JWT_BEARER) -> Awaitable[object]:
        return env.stub.AuthenticatePartnerWithAssertion(
            pb.AuthenticatePartnerWithAssertionRequest(client_assertion_type=kind,
                                                       client_assertion=assertion))

    good = _assertion(client_id, private, "k1")
    r = await call(good)
    # The token works: the partner reads a person with its persons.read scope.
    await env.stub.GetPerson(pb.GetPersonRequest(name=env.people["cit_a"]),
                             metadata=(("authorization", f"Bearer {r.tokens.access_token}"),))  # type: ignore[attr-defined]
    now = int(time.time())
    for assertion, why in ((good, "ASSERTION_REPLAYED"),
                           (_assertion(client_id, private, "k1", exp=now - 120), "ASSERTION_EXPIRED"),
                           (_assertion(client_id, private, "k1", aud="x"), "ASSERTION_WRONG_AUDIENCE"),
                           (_assertion(client_id, stranger, "k1"), "ASSERTION_BAD_SIGNATURE")):
        err = await error(call(assertion))
        assert (err.code(), reason(err)) == (grpc.StatusCode.UNAUTHENTICATED, why)
    err = await error(call(_assertion(client_id, private, "k1"), kind="client_secret"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    err = await error(env.stub.AddPartnerKey(pb.AddPartnerKeyRequest(
        name=f"partners/{client_id}", public_jwk="{}"), metadata=env.callers["admin"]))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    await env.stub.RemovePartnerKey(pb.RemovePartnerKeyRequest(
        name=f"partners/{client_id}", kid="k1"), metadata=env.callers["admin"])
    err = await error(call(_assertion(client_id, private, "k1")))
    assert reason(err) == "ASSERTION_UNKNOWN_KEY"
