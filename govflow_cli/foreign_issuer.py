"""A stand-in for an issuer outside the platform (e.g. Hong Kong's Immigration Department):
a key pair made at run time (never stored, never committed), the compact certificates it
signs and its own signed status list, in the formats services/certificates/foreign.py
accepts. The demo seeding and the tests use it; a real issuer signs the same shapes with its
own keys."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from collections.abc import Iterable, Mapping

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from services.certificates import domain, offline


@dataclasses.dataclass
class ForeignIssuer:
    """One issuer with one fresh Ed25519 key."""

    issuer: str  # issuers/{id}
    kid: str = ""
    key: Ed25519PrivateKey = dataclasses.field(default_factory=Ed25519PrivateKey.generate)
    next_index: int = 0

    def __post_init__(self) -> None:
        if not self.kid:
            self.kid = f"{self.issuer.removeprefix('issuers/')}.{uuid.uuid4().hex[:8]}"

    def jwks_json(self) -> str:
        """The public key as a JWK set, as an administrator registers it."""
        jwk = json.loads(OKPAlgorithm.to_jwk(self.key.public_key()))
        jwk.update({"kid": self.kid, "alg": "EdDSA", "use": "sig"})
        return json.dumps({"keys": [jwk]})

    def certificate(self, *, type_code: str, holder: str, fields: Mapping[str, str],
                    valid_from: dt.datetime | None = None,
                    valid_until: dt.datetime | None = None, index: int | None = None,
                    issuer: str | None = None) -> tuple[str, int]:
        """(compact token, its status-list index) of a certificate this issuer signs."""
        if index is None:
            index, self.next_index = self.next_index, self.next_index + 1
        now = dt.datetime.now(dt.UTC)
        claims = {
            "id": f"{self.issuer}/certificates/{uuid.uuid4().hex}",
            "type": f"certificateTypes/{type_code}", "holder": holder,
            "issuer": issuer or self.issuer, "fields": dict(fields),
            "valid_from": domain.format_time(valid_from or now - dt.timedelta(days=1)),
            "valid_until": domain.format_time(valid_until or now + dt.timedelta(days=3650)),
            "status_list_index": index}
        return offline.make_compact(self.key, self.kid, claims), index

    def status_list(self, *, revoked: Iterable[int] = (), suspended: Iterable[int] = (),
                    issued: dt.datetime | None = None,
                    ttl: dt.timedelta = dt.timedelta(days=30)) -> tuple[str, str]:
        """(signed payload, signature) of this issuer's status list."""
        payload = domain.canonical(offline.status_list_payload(
            issuer=self.issuer, revoked=list(revoked), suspended=list(suspended),
            slots_used=self.next_index, issued=issued or dt.datetime.now(dt.UTC),
            kid=self.kid, ttl=ttl))
        return payload.decode(), domain.sign(self.key, payload)
