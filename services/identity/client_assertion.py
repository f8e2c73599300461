"""Partner client authentication by signed assertion: OAuth 2.0 ``private_key_jwt``
(RFC 7523 section 3, as profiled by OpenID Connect Core 9). The partner signs a short JWT
with its own private key; Govflow holds only the public JWKs it registered, several at a
time (by ``kid``), so a partner rotates by registering the new key, switching, then
removing the old one, with no downtime and no shared secret on the wire.

This module is the rule only: it checks an assertion against the partner's keys and
returns what the caller must still enforce, the ``jti`` to be accepted once until ``exp``.
PyJWT does the JOSE work; nothing here is hand-rolled cryptography.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterable

import jwt

from govflow.errors import Unauthenticated

# Asymmetric algorithms only: "none" and HMAC (a shared secret again) are never accepted.
ALGORITHMS = ("RS256", "PS256", "ES256", "EdDSA")
# The longest an assertion may live (exp - now), so the used-jti record stays small.
MAX_LIFETIME_SECONDS = 300
LEEWAY_SECONDS = 30


@dataclasses.dataclass(frozen=True)
class Accepted:
    """A valid assertion: its single-use id, when it expires (Unix s), the key that signed it."""

    jti: str
    expires: int
    kid: str


def _refuse(message: str, reason: str) -> Unauthenticated:
    return Unauthenticated(message, reason=reason)


def public_jwk(text: str) -> dict[str, object]:
    """A registered public JWK, checked: JSON, a ``kid``, a supported asymmetric key and no
    private part. ValueError says what is wrong."""
    try:
        data = json.loads(text)
    except ValueError as e:
        raise ValueError("not JSON") from e
    if not isinstance(data, dict) or not isinstance(data.get("kid"), str) or not data["kid"]:
        raise ValueError("a JWK object with a kid is required")
    if any(k in data for k in ("d", "p", "q", "dp", "dq", "qi", "k")):
        raise ValueError("this is a private or symmetric key; register the public key only")
    try:
        key = jwt.PyJWK(data)
    except jwt.PyJWKError as e:
        raise ValueError(f"unsupported key: {e}") from e
    if key.algorithm_name not in ALGORITHMS:
        raise ValueError(f"algorithm {key.algorithm_name} is not accepted")
    return data


def verify(assertion: str, *, client_id: str, audience: str, keys: Iterable[str],
           now: float | None = None) -> Accepted:
    """Checks a client assertion of ``client_id`` for ``audience`` (the token endpoint's
    identifier) against the partner's registered public JWKs (JSON texts). UNAUTHENTICATED
    with a reason when it is malformed (ASSERTION_INVALID), signed by no registered key
    (ASSERTION_UNKNOWN_KEY, ASSERTION_BAD_SIGNATURE), expired or too long-lived
    (ASSERTION_EXPIRED, ASSERTION_TOO_LONG_LIVED), for another audience
    (ASSERTION_WRONG_AUDIENCE) or another client (ASSERTION_WRONG_ISSUER)."""
    now = time.time() if now is None else now
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.DecodeError as e:
        raise _refuse("the client assertion is not a JWT", "ASSERTION_INVALID") from e
    kid = header.get("kid")
    registered = {str(k["kid"]): k for k in (json.loads(t) for t in keys)}
    if not isinstance(kid, str) or kid not in registered:
        raise _refuse("the client assertion's kid is not a registered key of this client",
                      "ASSERTION_UNKNOWN_KEY")
    key = jwt.PyJWK(registered[kid])
    if header.get("alg") != key.algorithm_name:
        raise _refuse("the client assertion's alg does not match its key", "ASSERTION_INVALID")
    try:
        claims = jwt.decode(
            assertion, key, algorithms=[key.algorithm_name], audience=audience,
            issuer=client_id, leeway=LEEWAY_SECONDS,
            options={"require": ["iss", "sub", "aud", "exp", "jti"], "verify_iat": False,
                     "verify_nbf": False, "verify_exp": False})
    except jwt.InvalidSignatureError as e:
        raise _refuse("the client assertion's signature is wrong",
                      "ASSERTION_BAD_SIGNATURE") from e
    except jwt.InvalidAudienceError as e:
        raise _refuse(f"the client assertion is not for {audience}",
                      "ASSERTION_WRONG_AUDIENCE") from e
    except jwt.InvalidIssuerError as e:
        raise _refuse("the client assertion's iss is not the client id",
                      "ASSERTION_WRONG_ISSUER") from e
    except jwt.InvalidTokenError as e:
        raise _refuse(f"the client assertion is not valid: {e}", "ASSERTION_INVALID") from e
    if claims.get("sub") != client_id:
        raise _refuse("the client assertion's sub is not the client id", "ASSERTION_WRONG_ISSUER")
    exp, jti = claims["exp"], claims["jti"]
    if not isinstance(exp, int) or not isinstance(jti, str) or not jti or len(jti) > 200:
        raise _refuse("the client assertion's exp or jti is malformed", "ASSERTION_INVALID")
    if exp + LEEWAY_SECONDS < now:
        raise _refuse("the client assertion has expired", "ASSERTION_EXPIRED")
    if exp > now + MAX_LIFETIME_SECONDS + LEEWAY_SECONDS:
        raise _refuse(f"the client assertion may live at most {MAX_LIFETIME_SECONDS} s",
                      "ASSERTION_TOO_LONG_LIVED")
    return Accepted(jti=jti, expires=exp, kid=kid)
