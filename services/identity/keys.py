"""Identity's token signing keys: made on first start, rotated and retired by platform
admins, published as a JWK set every service verifies tokens with."""

from __future__ import annotations

import json
import secrets

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm
from sqlmodel import Session

from govflow import auth
from govflow.db import Database
from govflow.errors import FailedPrecondition, NotFound
from services.identity.access import require_platform_admin
from services.identity.domain import SigningKey
from services.identity.store import tokens as token_store


def ensure_signing_key(s: Session) -> SigningKey:
    """The active signing key, made if there is none."""
    return token_store.active_key(s) or rotate_key(s)


def rotate_key(s: Session) -> SigningKey:
    """Makes a new active key; older keys keep verifying the tokens they signed."""
    key = Ed25519PrivateKey.generate()
    kid = "idk-" + secrets.token_hex(6)
    jwk = json.loads(OKPAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": kid, "alg": auth.ALGORITHM, "use": "sig"})
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return token_store.add_active_key(s, kid=kid, private_pem=pem, public_jwk=json.dumps(jwk))


def jwks(s: Session) -> str:
    """Every published (not retired) public key as one JWK set."""
    return json.dumps({"keys": [json.loads(k) for k in token_store.published_jwks(s)]})


class Keys:
    """ListPublicKeys, RotateSigningKey, RetireSigningKey."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def jwks(self) -> str:
        return await self.db.run(jwks)

    async def rotate(self, p: auth.Principal) -> SigningKey:
        require_platform_admin(p)
        return await self.db.run(rotate_key)

    async def retire(self, p: auth.Principal, name: str) -> None:
        """Stops publishing an inactive key, so the tokens it signed stop verifying."""
        require_platform_admin(p)
        await self.db.run(lambda s: self._retire(s, name))

    @staticmethod
    def _retire(s: Session, name: str) -> None:
        key = token_store.get_key(s, name.removeprefix("signingKeys/")) \
            if name.startswith("signingKeys/") else None
        if key is None:
            raise NotFound(f"{name} not found", reason="SIGNING_KEY_NOT_FOUND")
        if key.active:
            raise FailedPrecondition("the active key cannot be retired; rotate first",
                                     reason="SIGNING_KEY_ACTIVE")
        token_store.retire_key(s, key.kid)
