"""Issuer keys and status lists: signing keys made on first use, rotation, the published
JWK set, and each issuer's signed revocation and suspension lists."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm
from sqlmodel import Session

from govflow import auth
from govflow.db import Database
from govflow.errors import InvalidArgument, NotFound, PermissionDenied
from services.certificates import domain, offline
from services.certificates.domain import SigningKey
from services.certificates.store import certificate_types, issuer_keys, status_lists, transactions


@dataclasses.dataclass(frozen=True)
class SignedStatusList:
    signed_payload: str  # canonical JSON, see offline.status_list_payload
    signature: str
    kid: str


def private(key: SigningKey) -> Ed25519PrivateKey:
    loaded = serialization.load_pem_private_key(key.private_pem.encode(), password=None)
    assert isinstance(loaded, Ed25519PrivateKey)
    return loaded


def _new_key(agency: str, generation: int) -> SigningKey:
    kid = f"{agency}.{generation}"
    key = Ed25519PrivateKey.generate()
    jwk = json.loads(OKPAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": kid, "alg": "EdDSA", "use": "sig", "issuer": f"agencies/{agency}"})
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return SigningKey(kid, agency, pem, json.dumps(jwk))


def active_key(s: Session, agency: str) -> SigningKey:
    """The agency's signing key, made on its first certificate."""
    return issuer_keys.active_key(s, agency) or rotate_key(s, agency)


def rotate_key(s: Session, agency: str) -> SigningKey:
    """A new active key for ``agency`` (a code); older keys keep verifying what they signed."""
    return issuer_keys.add_active_key(s, agency, lambda generation: _new_key(agency, generation))


class Keys:
    """RotateIssuerKey, ListIssuerKeys and GetStatusList."""

    def __init__(self, db: Database, clock: Callable[[], dt.datetime]) -> None:
        self.db = db
        self.clock = clock

    async def rotate(self, p: auth.Principal, agency: str) -> SigningKey:
        """A new active key; two concurrent rotations collide on the key id and retry."""
        return await transactions.with_retries(self.db.run,
                                               lambda s: self._rotate_once(s, p, agency))

    @staticmethod
    def _rotate_once(s: Session, p: auth.Principal, agency: str) -> SigningKey:
        code = domain.agency_code(agency)
        if not code:
            raise InvalidArgument(fields={"agency": "must be agencies/{code}"})
        if not domain.may_rotate_key(p, agency):
            raise PermissionDenied("only administrators or the agency's admins rotate its key",
                                   reason="ADMIN_ONLY")
        if not (certificate_types.agency_defines_types(s, code)
                or issuer_keys.agency_has_key(s, code)):
            raise NotFound(f"{agency} issues no certificate type", reason="ISSUER_NOT_FOUND")
        return rotate_key(s, code)

    async def jwks(self) -> str:
        """Every issuer's public keys as one JWK set."""
        keys = await self.db.run(issuer_keys.public_jwks)
        return json.dumps({"keys": [json.loads(k) for k in keys]})

    async def status_list(self, issuer: str) -> SignedStatusList:
        """The issuer's revocation and suspension lists, freshly computed and signed."""
        return await self.db.run(lambda s: self._status_list(s, issuer))

    def _status_list(self, s: Session, issuer: str) -> SignedStatusList:
        code = domain.agency_code(issuer)
        if not code:
            raise InvalidArgument(fields={"issuer": "must be agencies/{code}"})
        slots = status_lists.slots_used(s, code)
        if slots is None and not issuer_keys.agency_has_key(s, code):
            raise NotFound(f"{issuer} has issued nothing", reason="ISSUER_NOT_FOUND")
        marked = status_lists.status_marks(s, code)
        key = active_key(s, code)
        payload = domain.canonical(offline.status_list_payload(
            issuer=f"agencies/{code}",
            revoked=[i for i, st in marked if st == domain.REVOKED],
            suspended=[i for i, st in marked if st == domain.SUSPENDED],
            slots_used=slots or 0, issued=self.clock(), kid=key.kid))
        return SignedStatusList(payload.decode(), domain.sign(private(key), payload), key.kid)
