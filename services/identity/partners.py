"""Partner systems: CreatePartner, RotatePartnerSecret, DisablePartner, and Govflow's own
service accounts, kept as the settings say at every start."""

from __future__ import annotations

import secrets

from sqlmodel import Session

from govflow import auth
from govflow.db import Database
from govflow.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from services.identity import client_assertion, domain
from services.identity.access import require_platform_admin
from services.identity.domain import Partner
from services.identity.store import agencies as agency_store
from services.identity.store import partner_keys as key_store
from services.identity.store import partners as partner_store
from services.identity.store import tokens as token_store


def create_partner(s: Session, *, client_id: str, display_name: str, agency: str,
                   scopes: list[str], kind: str = "partner",
                   secret: str | None = None) -> tuple[Partner, str]:
    problems: dict[str, str] = {}
    if not client_id or not all(c.islower() or c.isdigit() or c == "-" for c in client_id):
        problems["partner.client_id"] = "required; lower-case letters, digits and dashes"
    if not display_name:
        problems["partner.display_name"] = "required"
    if agency and agency_store.get(s, agency.removeprefix("agencies/")) is None:
        problems["partner.agency"] = "must name an existing agency"
    if problems:
        raise InvalidArgument(fields=problems)
    if partner_store.get(s, client_id) is not None:
        raise AlreadyExists("a partner with this client id exists", reason="PARTNER_EXISTS")
    secret = secret or secrets.token_urlsafe(24)
    partner = partner_store.add(s, client_id=client_id, display_name=display_name,
                                agency=agency.removeprefix("agencies/") or None, kind=kind,
                                scopes=scopes, secret_hash=domain.hash_secret(secret))
    return partner, secret


def ensure_service_account(s: Session, client_id: str, secret: str, scopes: list[str]) -> None:
    """Creates or updates one of Govflow's own service identities (from settings)."""
    partner = partner_store.get(s, client_id)
    if partner is None:
        create_partner(s, client_id=client_id, display_name=client_id, agency="",
                       scopes=scopes, kind=auth.SERVICE, secret=secret)
        return
    partner_store.update(
        s, client_id, scopes=scopes, kind=auth.SERVICE,
        secret_hash=None if domain.check_secret(secret, partner.secret_hash)
        else domain.hash_secret(secret))


def _managed(s: Session, name: str) -> Partner:
    """The partner ``partners/{client_id}``, if its secret and state are the API's to change."""
    partner = partner_store.get(s, name.removeprefix("partners/")) \
        if name.startswith("partners/") else None
    if partner is None:
        raise NotFound(f"{name} not found", reason="PARTNER_NOT_FOUND")
    if partner.kind == auth.SERVICE:
        # Govflow's own identities take their secrets from settings at every start.
        raise FailedPrecondition("Govflow's own service accounts are managed by settings",
                                 reason="SERVICE_ACCOUNT")
    return partner


class Partners:
    """CreatePartner, RotatePartnerSecret, DisablePartner (platform admins only)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, p: auth.Principal, *, client_id: str, display_name: str,
                     agency: str, scopes: list[str]) -> tuple[Partner, str]:
        """A new partner and its secret, returned once."""
        require_platform_admin(p)
        return await self.db.run(lambda s: create_partner(
            s, client_id=client_id, display_name=display_name, agency=agency, scopes=scopes))

    async def rotate_secret(self, p: auth.Principal, name: str) -> tuple[Partner, str]:
        """A new secret, returned once; the old one and every refresh token stop working."""
        require_platform_admin(p)

        def work(s: Session) -> tuple[Partner, str]:
            partner = _managed(s, name)
            secret = secrets.token_urlsafe(24)
            changed = partner_store.update(s, partner.client_id,
                                           secret_hash=domain.hash_secret(secret))
            token_store.revoke_refresh_of(s, f"partners/{partner.client_id}")
            return changed, secret

        return await self.db.run(work)

    async def disable(self, p: auth.Principal, name: str) -> Partner:
        """No new tokens, no refreshes."""
        require_platform_admin(p)

        def work(s: Session) -> Partner:
            partner = _managed(s, name)
            changed = partner_store.update(s, partner.client_id, disabled=True)
            token_store.revoke_refresh_of(s, f"partners/{partner.client_id}")
            return changed

        return await self.db.run(work)

    async def add_key(self, p: auth.Principal, name: str, public_jwk: str) -> str:
        """Registers a public JWK for the partner's client assertions (private_key_jwt);
        returns its kid. Several may be registered at once, so a partner rotates by adding
        the new key, signing with it, then removing the old one."""
        require_platform_admin(p)
        try:
            jwk = client_assertion.public_jwk(public_jwk)
        except ValueError as e:
            raise InvalidArgument(str(e), fields={"public_jwk": str(e)}) from e
        kid = str(jwk["kid"])

        def work(s: Session) -> str:
            partner = _managed(s, name)
            if not key_store.add_key(s, client_id=partner.client_id, kid=kid,
                                     public_jwk=public_jwk):
                raise AlreadyExists(f"{name} has a key {kid}", reason="PARTNER_KEY_EXISTS")
            return kid

        return await self.db.run(work)

    async def remove_key(self, p: auth.Principal, name: str, kid: str) -> None:
        """Removes a key: assertions it signs are refused from now on."""
        require_platform_admin(p)

        def work(s: Session) -> None:
            partner = _managed(s, name)
            if not key_store.remove_key(s, client_id=partner.client_id, kid=kid):
                raise NotFound(f"{name} has no key {kid}", reason="PARTNER_KEY_NOT_FOUND")

        await self.db.run(work)
