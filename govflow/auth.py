"""Who is calling: tokens, principals, and the local verification every service does.

Identity signs short-lived EdDSA (Ed25519) JWTs; every service verifies them locally with
the public keys identity publishes (``ListPublicKeys``), refreshing its key cache only when
it meets an unknown key id. PyJWT does the JOSE work (a maintained library, not our code).
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import json
import time
from collections.abc import Awaitable, Callable, Iterable

import jwt
from jwt.algorithms import OKPAlgorithm

from govflow.errors import PermissionDenied, Unauthenticated

ISSUER = "govflow-identity"
AUDIENCES = ("govflow.identity", "govflow.certificates", "govflow.matters")
ALGORITHM = "EdDSA"

# Kinds of caller.
PERSON = "person"
OFFICIAL = "official"
PARTNER = "partner"
SERVICE = "service"  # Govflow's own processes (the worker, the seeder)

# Scopes of partners and services.
SCOPE_ADMIN = "admin"
SCOPE_PERSONS_READ = "persons.read"
SCOPE_CERT_ISSUE = "certificates.issue"
SCOPE_CERT_PULL = "certificates.pull"
SCOPE_CERT_VERIFY = "certificates.verify"
SCOPE_APP_SUBMIT = "applications.submit"
SCOPE_APP_RECORD = "applications.record"


@dataclasses.dataclass(frozen=True)
class Principal:
    """The verified caller of one request."""

    subject: str  # persons/{id} or partners/{client_id}
    kind: str
    agency: str = ""  # agencies/{code} for officials and agency partners
    roles: tuple[str, ...] = ()
    acting_for: str = ""  # organisations/{id} when a person acts for one
    scopes: tuple[str, ...] = ()
    token_id: str = ""

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes or (SCOPE_ADMIN in self.scopes and self.kind == SERVICE)

    def has_role(self, role: str, agency: str | None = None) -> bool:
        if self.kind != OFFICIAL or role not in self.roles:
            return False
        return agency is None or agency == self.agency

    def require_scope(self, scope: str) -> None:
        if not self.has_scope(scope):
            raise PermissionDenied(f"the caller lacks the {scope} scope", reason="MISSING_SCOPE",
                                   metadata={"scope": scope})

    @property
    def is_admin(self) -> bool:
        return (self.kind in (SERVICE, PARTNER) and SCOPE_ADMIN in self.scopes) or (
            self.kind == OFFICIAL and "admin" in self.roles
        )

    def claims(self) -> dict[str, object]:
        return {
            "sub": self.subject,
            "kind": self.kind,
            "agency": self.agency,
            "roles": list(self.roles),
            "acting_for": self.acting_for,
            "scopes": list(self.scopes),
        }

    @classmethod
    def from_claims(cls, claims: dict[str, object]) -> Principal:
        return cls(
            subject=str(claims["sub"]),
            kind=str(claims.get("kind", "")),
            agency=str(claims.get("agency") or ""),
            # mypy, next line: JWT claims are untyped JSON
            roles=tuple(str(r) for r in claims.get("roles") or ()),  # type: ignore[attr-defined]
            acting_for=str(claims.get("acting_for") or ""),
            # mypy, next line: JWT claims are untyped JSON
            scopes=tuple(str(s) for s in claims.get("scopes") or ()),  # type: ignore[attr-defined]
            token_id=str(claims.get("jti") or ""),
        )


current_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "principal", default=None
)


def principal() -> Principal:
    """The caller of the current request; UNAUTHENTICATED if there is none."""
    p = current_principal.get()
    if p is None:
        raise Unauthenticated("this call needs a bearer token", reason="TOKEN_MISSING")
    return p


def sign_token(
    p: Principal,
    *,
    private_key: object,
    kid: str,
    ttl_seconds: int,
    token_id: str,
    audiences: Iterable[str] = AUDIENCES,
    now: float | None = None,
) -> str:
    """Signs an access token for ``p`` (used by the identity service only)."""
    issued = int(now if now is not None else time.time())
    payload = {
        **p.claims(),
        "iss": ISSUER,
        "aud": list(audiences),
        "iat": issued,
        "nbf": issued - 5,
        "exp": issued + ttl_seconds,
        "jti": token_id,
    }
    # mypy, next line: PyJWT's stubs do not list the Ed25519 key types
    return jwt.encode(payload, private_key, algorithm=ALGORITHM, headers={"kid": kid})  # type: ignore[arg-type]


JwksFetcher = Callable[[], Awaitable[str]]


class TokenVerifier:
    """Verifies access tokens locally against a cached JWK set.

    The cache is refreshed through ``fetch_jwks`` when a token names an unknown key id, at
    most once every ``min_refresh_seconds``: a token with an unknown key id that arrives
    sooner waits for the next allowed refresh instead of being refused, so a token signed
    with a key rotated in a moment ago is accepted while a flood of forged key ids still
    costs identity at most one fetch per interval. The cache is also refreshed when it is
    older than ``max_age_seconds``, so a retired key stops verifying without a restart.
    """

    def __init__(
        self,
        audience: str,
        fetch_jwks: JwksFetcher,
        *,
        min_refresh_seconds: float = 5.0,
        max_age_seconds: float = 300.0,
    ) -> None:
        self.audience = audience
        self._fetch = fetch_jwks
        self._keys: dict[str, object] = {}
        self._last_refresh = 0.0
        self._min_refresh = min_refresh_seconds
        self._max_age = max_age_seconds
        self._lock = asyncio.Lock()
        # token -> (principal, expiry, key id): a token seen before skips the signature
        # check (the dominant cost of a read) while its key is still published.
        self._verified: dict[str, tuple[Principal, float, str]] = {}

    def load_jwks(self, jwks_json: str) -> None:
        keys: dict[str, object] = {}
        for jwk in json.loads(jwks_json).get("keys", []):
            keys[jwk["kid"]] = OKPAlgorithm.from_jwk(json.dumps(jwk))
        self._keys = keys

    async def _refresh(self, *, wait: bool = True) -> None:
        asked = time.monotonic()
        async with self._lock:
            if self._last_refresh > asked:
                return  # another request refreshed while this one waited for the lock
            since = time.monotonic() - self._last_refresh
            if self._keys and since < self._min_refresh:
                if not wait:
                    return
                await asyncio.sleep(self._min_refresh - since)
            try:
                self.load_jwks(await self._fetch())
            except Exception as exc:  # identity unreachable: keep the keys we have
                if not self._keys:
                    raise Unauthenticated(
                        "token keys are not available yet", reason="KEYS_UNAVAILABLE"
                    ) from exc
            finally:
                self._last_refresh = time.monotonic()

    async def verify(self, token: str) -> Principal:
        # A token seen before, whose key is still published in a key set that is not
        # stale, needs neither its header parsed nor its signature checked again.
        seen = self._verified.get(token)
        if (seen is not None and time.time() < seen[1] and seen[2] in self._keys
                and time.monotonic() - self._last_refresh <= self._max_age):
            return seen[0]
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthenticated("malformed token", reason="TOKEN_MALFORMED") from exc
        kid = header.get("kid")
        if header.get("alg") != ALGORITHM or not isinstance(kid, str):
            raise Unauthenticated("token algorithm or key id not accepted", reason="TOKEN_INVALID")
        if kid not in self._keys:
            await self._refresh()
        elif time.monotonic() - self._last_refresh > self._max_age:
            await self._refresh(wait=False)
        key = self._keys.get(kid)
        if key is None:
            raise Unauthenticated("token signed by an unknown key", reason="TOKEN_UNKNOWN_KEY")
        seen = self._verified.get(token)
        if seen is not None and seen[2] == kid and time.time() < seen[1]:
            return seen[0]
        try:
            claims = jwt.decode(
                token,
                key,  # type: ignore[arg-type]  # PyJWT's stubs do not list the Ed25519 key types
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("token expired", reason="TOKEN_EXPIRED") from exc
        except jwt.InvalidAudienceError as exc:
            raise Unauthenticated("token not meant for this service", reason="TOKEN_AUDIENCE") from exc
        except jwt.PyJWTError as exc:
            raise Unauthenticated("token rejected", reason="TOKEN_INVALID") from exc
        principal = Principal.from_claims(claims)
        if len(self._verified) >= 10_000:
            self._verified.clear()
        self._verified[token] = (principal, float(claims["exp"]), kid)
        return principal
