"""RFC 7523 client assertions (services/identity/client_assertion.py), checked with real
keys and real signatures: accepted, and refused with a reason when expired, too
long-lived, for another audience or client, signed by another key or malformed."""

from __future__ import annotations

import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from govflow.errors import Unauthenticated
from services.identity import client_assertion as ca

AUD = "govflow.identity"
CLIENT = "partner-x"


def _keypair(kid: str) -> tuple[ec.EllipticCurvePrivateKey, str]:
    private = ec.generate_private_key(ec.SECP256R1())
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private.public_key()))
    public.update(kid=kid, alg="ES256", use="sig")
    return private, json.dumps(public)


def _assertion(private: ec.EllipticCurvePrivateKey, kid: str, **claims: object) -> str:
    now = int(time.time())
    body: dict[str, object] = {"iss": CLIENT, "sub": CLIENT, "aud": AUD, "exp": now + 60,
                               "iat": now, "jti": uuid.uuid4().hex}
    body.update(claims)
    return jwt.encode({k: v for k, v in body.items() if v is not None}, private,
                      algorithm="ES256", headers={"kid": kid})


def _reason(assertion: str, keys: list[str]) -> str:
    with pytest.raises(Unauthenticated) as exc:
        ca.verify(assertion, client_id=CLIENT, audience=AUD, keys=keys)
    return exc.value.reason


def test_an_assertion_signed_by_a_registered_key_is_accepted_by_kid() -> None:
    old, old_jwk = _keypair("2026-01")
    new, new_jwk = _keypair("2026-06")
    keys = [old_jwk, new_jwk]  # rotation: both registered, either signs
    for private, kid in ((old, "2026-01"), (new, "2026-06")):
        got = ca.verify(_assertion(private, kid, jti=f"j-{kid}"), client_id=CLIENT,
                        audience=AUD, keys=keys)
        assert got.jti == f"j-{kid}" and got.kid == kid and got.expires > time.time()


def test_refusals_have_reasons() -> None:
    private, public = _keypair("k1")
    stranger, _ = _keypair("k1")
    keys = [public]
    now = int(time.time())
    assert _reason(_assertion(private, "k1", exp=now - 120), keys) == "ASSERTION_EXPIRED"
    assert _reason(_assertion(private, "k1", exp=now + 3600), keys) == "ASSERTION_TOO_LONG_LIVED"
    assert _reason(_assertion(private, "k1", aud="elsewhere"), keys) == "ASSERTION_WRONG_AUDIENCE"
    assert _reason(_assertion(private, "k1", iss="other"), keys) == "ASSERTION_WRONG_ISSUER"
    assert _reason(_assertion(private, "k1", sub="other"), keys) == "ASSERTION_WRONG_ISSUER"
    assert _reason(_assertion(stranger, "k1"), keys) == "ASSERTION_BAD_SIGNATURE"
    assert _reason(_assertion(private, "k2"), keys) == "ASSERTION_UNKNOWN_KEY"
    assert _reason(_assertion(private, "k1", jti=None), keys) == "ASSERTION_INVALID"
    assert _reason("not-a-jwt", keys) == "ASSERTION_INVALID"
    # A shared-secret (HMAC) assertion is refused even if it names a registered kid.
    hmac_token = jwt.encode({"iss": CLIENT, "sub": CLIENT, "aud": AUD, "exp": now + 60,
                             "jti": "x"}, "s" * 32, algorithm="HS256", headers={"kid": "k1"})
    assert _reason(hmac_token, keys) == "ASSERTION_INVALID"


def test_only_public_asymmetric_keys_can_be_registered() -> None:
    private, public = _keypair("k1")
    assert ca.public_jwk(public)["kid"] == "k1"
    private_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private))
    private_jwk["kid"] = "k1"
    for bad in ("nope", json.dumps({"kty": "EC"}), json.dumps(private_jwk),
                json.dumps({"kty": "oct", "k": "c2VjcmV0", "kid": "h"})):
        with pytest.raises(ValueError):
            ca.public_jwk(bad)
