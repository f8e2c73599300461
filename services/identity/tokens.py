"""Logins and tokens: Login (password, then the TOTP code of an enrolled person),
AuthenticatePartner, RefreshToken and Logout; failed-login throttling and rate limits."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import secrets
import time
import uuid
from collections.abc import Awaitable
from typing import Protocol

import jwt
from cryptography.hazmat.primitives import serialization
from sqlmodel import Session

from govflow import auth
from govflow.db import Database
from govflow.errors import InvalidArgument, PermissionDenied, ResourceExhausted, Unauthenticated
from services.identity import client_assertion, domain
from services.identity.access import aware, represents
from services.identity.domain import Partner, Person
from services.identity.keys import ensure_signing_key
from services.identity.store import agencies as agency_store
from services.identity.store import organisations as organisation_store
from services.identity.store import partner_keys as key_store
from services.identity.store import partners as partner_store
from services.identity.store import persons as person_store
from services.identity.store import tokens as token_store
from services.identity.store.tables import utcnow

# A token set: the access token, the refresh token, the access token's lifetime in seconds.
TokenSet = tuple[str, str, int]


@dataclasses.dataclass(frozen=True)
class RateLimits:
    """Calls allowed per window (0: no limit), counted across replicas in the database."""

    login: int = 0  # Login attempts per ID number
    partner_auth: int = 0  # AuthenticatePartner calls per client id
    window_seconds: int = 60


@dataclasses.dataclass(frozen=True)
class FailureLimits:
    """Failed logins allowed in a sliding window before further attempts are refused
    (RESOURCE_EXHAUSTED, LOGIN_THROTTLED). Counted per account and client address, so a
    stranger's failures from one address cannot lock the account's owner out elsewhere,
    and per account across all addresses, a looser ceiling that still stops a guessing
    attack spread over many addresses. 0 turns one off."""

    per_address: int = 5
    per_account: int = 50
    window_seconds: int = 900


def partner_agency(partner: Partner) -> str:
    """``agencies/{code}`` of a partner, or "" (older rows stored the prefix too)."""
    code = (partner.agency or "").removeprefix("agencies/")
    return f"agencies/{code}" if code else ""


def partner_principal(partner: Partner, subject: str) -> auth.Principal:
    return auth.Principal(subject=subject, kind=partner.kind, agency=partner_agency(partner),
                          scopes=partner.scopes)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Tokens:
    """Login, AuthenticatePartner, RefreshToken, Logout."""

    def __init__(self, db: Database, *, token_ttl: int, refresh_ttl: int,
                 rate_limits: RateLimits = RateLimits(),
                 failure_limits: FailureLimits = FailureLimits()) -> None:
        self.db = db
        self.token_ttl = token_ttl
        self.refresh_ttl = refresh_ttl
        self.rate_limits = rate_limits
        self.failure_limits = failure_limits

    # ------------------------------------------------------------ issuing
    def _issue(self, s: Session, p: auth.Principal) -> TokenSet:
        key = ensure_signing_key(s)
        private = serialization.load_pem_private_key(key.private_pem.encode(), password=None)
        access = auth.sign_token(p, private_key=private, kid=key.kid, ttl_seconds=self.token_ttl,
                                 token_id=uuid.uuid4().hex)
        refresh = secrets.token_urlsafe(32)
        token_store.add_refresh(s, token_hash=_token_hash(refresh), subject=p.subject,
                                claims_json=json.dumps(p.claims()),
                                expire_time=utcnow() + dt.timedelta(seconds=self.refresh_ttl))
        return access, refresh, self.token_ttl

    # ------------------------------------------------------------ throttling
    def _count_call(self, key: str, limit: int, what: str) -> None:
        """Counts a login call in its own transaction, so it counts whatever follows."""
        if limit <= 0:
            return
        with self.db.session() as s2:
            token_store.count_call(s2, key, limit=limit,
                                   window_seconds=self.rate_limits.window_seconds, what=what)
            s2.commit()

    @staticmethod
    def _keys(account: str, address: str) -> tuple[str, str]:
        """The failure keys of an account: from this address, and from anywhere."""
        return f"{account}@{address or 'unknown'}", account

    def _throttle(self, s: Session, account: str, address: str) -> None:
        since = utcnow() - dt.timedelta(seconds=self.failure_limits.window_seconds)
        here, anywhere = self._keys(account, address)
        for key, limit in ((here, self.failure_limits.per_address),
                           (anywhere, self.failure_limits.per_account)):
            if limit > 0 and token_store.failures_since(s, key, since) >= limit:
                raise ResourceExhausted("too many failed logins; try again later",
                                        reason="LOGIN_THROTTLED")

    def _fail(self, account: str, address: str) -> None:
        # Recorded in its own transaction so the refusal that follows does not roll it back.
        with self.db.session() as s2:
            for key in self._keys(account, address):
                token_store.add_failure(s2, key)
            s2.commit()

    # ------------------------------------------------------------ logins
    async def login(self, *, id_number: str, password: str, agency: str, acting_for: str,
                    one_time_code: str = "", client_address: str = "") -> TokenSet:
        """Logs a person in; ``client_address`` is where the attempt comes from
        (services/identity/client_address.py), what failures are counted against."""
        return await self.db.run(lambda s: self._login(
            s, id_number=id_number, password=password, agency=agency, acting_for=acting_for,
            one_time_code=one_time_code, address=client_address))

    def _login(self, s: Session, *, id_number: str, password: str, agency: str,
               acting_for: str, one_time_code: str, address: str) -> TokenSet:
        problems = {}
        if not id_number:
            problems["id_number"] = "required"
        if not password:
            problems["password"] = "required"
        if problems:
            raise InvalidArgument(fields=problems)
        account = "person:" + id_number.upper()
        # Per address too, so one caller's flood cannot use up the account's allowance.
        self._count_call(f"login:{id_number.upper()}@{address or 'unknown'}",
                         self.rate_limits.login, "login attempts")
        self._throttle(s, account, address)
        person = person_store.by_id_number(s, id_number.upper())
        if person is None or not domain.check_secret(password, person.password_hash):
            self._fail(account, address)
            raise Unauthenticated("ID number or password is wrong", reason="BAD_CREDENTIALS")
        if person.totp_confirmed:
            self._check_totp(s, person, one_time_code, account, address)
        subject = f"persons/{person.id}"
        roles: tuple[str, ...] = ()
        kind, agency_name = auth.PERSON, ""
        if agency:
            code = agency.removeprefix("agencies/")
            off = agency_store.official(s, person.id, code)
            if off is None:
                raise PermissionDenied("not an official of that agency", reason="NOT_AN_OFFICIAL")
            kind, roles, agency_name = auth.OFFICIAL, off.roles, f"agencies/{code}"
        org = ""
        if acting_for:
            org_id = acting_for.removeprefix("organisations/")
            rep = organisation_store.representation(s, org_id, person.id)
            if rep is None or aware(rep.expire_time) < utcnow():
                raise PermissionDenied("not authorised to act for that organisation",
                                       reason="NOT_A_REPRESENTATIVE")
            org = f"organisations/{org_id}"
        p = auth.Principal(subject=subject, kind=kind, agency=agency_name, roles=roles,
                           acting_for=org)
        if domain.needs_rehash(person.password_hash):
            # The one moment the password is known: move an old hash to argon2id.
            person_store.set_password_hash(s, person.id, domain.hash_secret(password))
        return self._issue(s, p)

    def _check_totp(self, s: Session, person: Person, code: str, account: str,
                    address: str) -> None:
        """The second factor of an enrolled person; each time step is accepted once."""
        if not code:
            # The password was right: the client should now ask for the code. Not a failure.
            raise Unauthenticated("a one-time code is required", reason="OTP_REQUIRED")
        assert person.totp_secret is not None
        step = domain.totp_step(person.totp_secret, code, last_step=person.totp_last_step)
        if step is not None and person_store.use_totp_step(s, person.id, step):
            return
        self._fail(account, address)
        raise Unauthenticated("the one-time code is wrong or was used already", reason="BAD_OTP")

    async def authenticate_partner(self, client_id: str, secret: str,
                                   client_address: str = "") -> TokenSet:
        """The deprecated shared-secret path for partners; throttled like logins."""
        return await self.db.run(lambda s: self._authenticate_partner(
            s, client_id, secret, client_address))

    def _authenticate_partner(self, s: Session, client_id: str, secret: str,
                              address: str) -> TokenSet:
        if not client_id or not secret:
            raise InvalidArgument(fields={k: "required" for k, v in
                                          (("client_id", client_id), ("client_secret", secret)) if not v})
        account = "partner:" + client_id
        self._count_call(f"{account}@{address or 'unknown'}", self.rate_limits.partner_auth,
                         "partner logins")
        self._throttle(s, account, address)
        partner = partner_store.get(s, client_id)
        if partner is None or partner.disabled or not domain.check_secret(secret,
                                                                           partner.secret_hash):
            self._fail(account, address)
            raise Unauthenticated("client credentials are wrong", reason="BAD_CREDENTIALS")
        if domain.needs_rehash(partner.secret_hash):
            partner_store.update(s, client_id, secret_hash=domain.hash_secret(secret))
        return self._issue(s, partner_principal(partner, f"partners/{client_id}"))

    async def authenticate_partner_by_assertion(self, assertion: str,
                                                client_address: str = "") -> TokenSet:
        """OAuth 2.0 client credentials with private_key_jwt (RFC 7523): the partner's
        signed assertion, checked against its registered keys, each jti accepted once."""
        return await self.db.run(lambda s: self._by_assertion(s, assertion, client_address))

    def _by_assertion(self, s: Session, assertion: str, address: str) -> TokenSet:
        if not assertion:
            raise InvalidArgument(fields={"client_assertion": "required"})
        try:  # whose keys to check against; nothing is trusted before the signature is
            claimed = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.InvalidTokenError as e:
            raise Unauthenticated("the client assertion is not a JWT",
                                  reason="ASSERTION_INVALID") from e
        client_id = claimed.get("iss")
        if not isinstance(client_id, str) or not client_id:
            raise Unauthenticated("the client assertion has no iss", reason="ASSERTION_INVALID")
        self._count_call(f"partner:{client_id}@{address or 'unknown'}",
                         self.rate_limits.partner_auth, "partner logins")
        partner = partner_store.get(s, client_id)
        if partner is None or partner.disabled:
            raise Unauthenticated("no such client, or it is disabled", reason="BAD_CREDENTIALS")
        now = time.time()
        accepted = client_assertion.verify(assertion, client_id=client_id, audience=auth.ISSUER,
                                           keys=key_store.keys_of(s, client_id), now=now)
        if not key_store.use_assertion(s, client_id=client_id, jti=accepted.jti,
                                       expires=accepted.expires, now=int(now)):
            raise Unauthenticated("this client assertion was used already",
                                  reason="ASSERTION_REPLAYED")
        return self._issue(s, partner_principal(partner, f"partners/{client_id}"))

    # ------------------------------------------------------------ refresh and logout
    async def refresh(self, token: str) -> TokenSet:
        return await self.db.run(lambda s: self._refresh(s, token))

    def _refresh(self, s: Session, token: str) -> TokenSet:
        found = token_store.get_refresh(s, _token_hash(token))
        if found is None or found.revoked or aware(found.expire_time) < utcnow():
            raise Unauthenticated("refresh token is not valid", reason="REFRESH_INVALID")
        # One use each: rotation limits a stolen refresh token.
        token_store.revoke_refresh(s, _token_hash(token))
        was = auth.Principal.from_claims(json.loads(found.claims_json))
        return self._issue(s, self._current_principal(s, was))

    @staticmethod
    def _current_principal(s: Session, was: auth.Principal) -> auth.Principal:
        """The caller as they stand now: a refresh must not outlive a disabled partner,
        changed official roles or a revoked representation."""
        gone = Unauthenticated("refresh token is no longer valid", reason="REFRESH_INVALID")
        if was.kind in (auth.PARTNER, auth.SERVICE):
            partner = partner_store.get(s, was.subject.removeprefix("partners/"))
            if partner is None or partner.disabled:
                raise gone
            return partner_principal(partner, was.subject)
        person_id = was.subject.removeprefix("persons/")
        if person_store.get(s, person_id) is None:
            raise gone
        roles: tuple[str, ...] = ()
        if was.kind == auth.OFFICIAL:
            off = agency_store.official(s, person_id, was.agency.removeprefix("agencies/"))
            if off is None:
                raise gone
            roles = off.roles
        if was.acting_for and not represents(
                s, person_id, was.acting_for.removeprefix("organisations/")):
            raise gone
        return auth.Principal(subject=was.subject, kind=was.kind, agency=was.agency, roles=roles,
                              acting_for=was.acting_for)

    async def logout(self, token: str) -> None:
        await self.db.run(lambda s: token_store.revoke_refresh(s, _token_hash(token)))


class ExternalIdentityProvider(Protocol):
    """Where an external identity provider (a national or provincial OIDC/SAML IdP doing
    real-name and face checks) plugs in. Login would then accept the IdP's assertion in
    place of password and one-time code, map its subject to a person by ID number, take
    the assurance level from it, and issue our own tokens as today; nothing downstream
    changes, since every service trusts only Govflow's tokens. Not wired in yet."""

    def verify_assertion(self, assertion: str) -> Awaitable[tuple[str, str]]:
        """Checks an assertion; returns (resident ID number, assurance level)."""
        ...
