"""Identity's use cases over its store: the servicer calls these, nothing else does I/O."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import secrets
import uuid
from collections.abc import Awaitable
from typing import Protocol

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm
from sqlmodel import Session, col, select

from govflow import auth, ratelimit
from govflow.db import Database
from govflow.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)
from services.identity import domain
from services.identity.store import (
    AgencyRow,
    LoginFailureRow,
    OfficialRow,
    OrganisationRow,
    PartnerRow,
    PersonRow,
    LoginRateRow,
    RefreshTokenRow,
    RepresentationRow,
    SigningKeyRow,
    utcnow,
)

MAX_FAILURES = 5
FAILURE_WINDOW = dt.timedelta(minutes=15)
AGENCY_LEVELS = ("province", "city", "county")


def new_id() -> str:
    return uuid.uuid4().hex[:16]


def _aware(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


@dataclasses.dataclass(frozen=True)
class RateLimits:
    """Calls allowed per window (0: no limit), counted across replicas in the database."""

    login: int = 0  # Login attempts per ID number
    partner_auth: int = 0  # AuthenticatePartner calls per client id
    window_seconds: int = 60


class Identity:
    def __init__(self, db: Database, *, token_ttl: int, refresh_ttl: int,
                 rate_limits: RateLimits = RateLimits()) -> None:
        self.db = db
        self.token_ttl = token_ttl
        self.refresh_ttl = refresh_ttl
        self.rate_limits = rate_limits

    def _count_call(self, key: str, limit: int, what: str) -> None:
        """Counts a login call in its own transaction, so it counts whatever follows."""
        if limit <= 0:
            return
        with self.db.session() as s2:
            ratelimit.hit(s2, LoginRateRow, key, limit=limit,
                          window_seconds=self.rate_limits.window_seconds, what=what)
            s2.commit()

    # ------------------------------------------------------------ keys and tokens
    def ensure_signing_key(self, s: Session) -> SigningKeyRow:
        row = s.exec(
            select(SigningKeyRow).where(SigningKeyRow.active).order_by(
                col(SigningKeyRow.create_time).desc())
        ).first()
        return row or self.rotate_key(s)

    def rotate_key(self, s: Session) -> SigningKeyRow:
        """Makes a new active key; older keys keep verifying the tokens they signed."""
        for old in s.exec(select(SigningKeyRow).where(SigningKeyRow.active)).all():
            old.active = False
            s.add(old)
        key = Ed25519PrivateKey.generate()
        kid = "idk-" + secrets.token_hex(6)
        jwk = json.loads(OKPAlgorithm.to_jwk(key.public_key()))
        jwk.update({"kid": kid, "alg": auth.ALGORITHM, "use": "sig"})
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
        row = SigningKeyRow(kid=kid, private_pem=pem, public_jwk=json.dumps(jwk))
        s.add(row)
        s.flush()
        return row

    def retire_key(self, s: Session, name: str) -> None:
        """Stops publishing an inactive key, so the tokens it signed stop verifying."""
        row = s.get(SigningKeyRow, name.removeprefix("signingKeys/")) \
            if name.startswith("signingKeys/") else None
        if row is None:
            raise NotFound(f"{name} not found", reason="SIGNING_KEY_NOT_FOUND")
        if row.active:
            raise FailedPrecondition("the active key cannot be retired; rotate first",
                                     reason="SIGNING_KEY_ACTIVE")
        row.retired = True
        s.add(row)

    def jwks(self, s: Session) -> str:
        rows = s.exec(select(SigningKeyRow).where(~col(SigningKeyRow.retired))).all()
        return json.dumps({"keys": [json.loads(r.public_jwk) for r in rows]})

    def _issue_tokens(self, s: Session, p: auth.Principal) -> tuple[str, str, int]:
        key = self.ensure_signing_key(s)
        private = serialization.load_pem_private_key(key.private_pem.encode(), password=None)
        access = auth.sign_token(p, private_key=private, kid=key.kid, ttl_seconds=self.token_ttl,
                                 token_id=uuid.uuid4().hex)
        refresh = secrets.token_urlsafe(32)
        s.add(RefreshTokenRow(
            token_hash=hashlib.sha256(refresh.encode()).hexdigest(), subject=p.subject,
            claims_json=json.dumps(p.claims()),
            expire_time=utcnow() + dt.timedelta(seconds=self.refresh_ttl)))
        return access, refresh, self.token_ttl

    def _throttle(self, s: Session, key: str) -> None:
        since = utcnow() - FAILURE_WINDOW
        count = s.exec(select(sa.func.count()).select_from(LoginFailureRow).where(
            LoginFailureRow.key == key, LoginFailureRow.time >= since)).one()
        if count >= MAX_FAILURES:
            raise ResourceExhausted("too many failed logins; try again later",
                                    reason="LOGIN_THROTTLED")

    def _fail(self, key: str) -> None:
        # Recorded in its own transaction so the refusal that follows does not roll it back.
        with self.db.session() as s2:
            s2.add(LoginFailureRow(key=key))
            s2.commit()

    def login(self, s: Session, *, id_number: str, password: str, agency: str,
              acting_for: str, one_time_code: str = "") -> tuple[str, str, int]:
        problems = {}
        if not id_number:
            problems["id_number"] = "required"
        if not password:
            problems["password"] = "required"
        if problems:
            raise InvalidArgument(fields=problems)
        key = "person:" + id_number.upper()
        self._count_call("login:" + id_number.upper(), self.rate_limits.login, "login attempts")
        self._throttle(s, key)
        person = s.exec(select(PersonRow).where(PersonRow.id_number == id_number.upper())).first()
        if person is None or not domain.check_secret(password, person.password_hash):
            self._fail(key)
            raise Unauthenticated("ID number or password is wrong", reason="BAD_CREDENTIALS")
        if person.totp_confirmed:
            self._check_totp(s, person, one_time_code, key)
        subject = f"persons/{person.id}"
        kind, roles, agency_name = auth.PERSON, (), ""
        if agency:
            code = agency.removeprefix("agencies/")
            off = s.exec(select(OfficialRow).where(OfficialRow.person_id == person.id,
                                                   OfficialRow.agency_code == code)).first()
            if off is None:
                raise PermissionDenied("not an official of that agency", reason="NOT_AN_OFFICIAL")
            kind, roles, agency_name = auth.OFFICIAL, tuple(off.roles.split(",")), f"agencies/{code}"
        org = ""
        if acting_for:
            org_id = acting_for.removeprefix("organisations/")
            rep = s.exec(select(RepresentationRow).where(
                RepresentationRow.organisation_id == org_id,
                RepresentationRow.person_id == person.id)).first()
            if rep is None or _aware(rep.expire_time) < utcnow():
                raise PermissionDenied("not authorised to act for that organisation",
                                       reason="NOT_A_REPRESENTATIVE")
            org = f"organisations/{org_id}"
        p = auth.Principal(subject=subject, kind=kind, agency=agency_name, roles=roles,
                           acting_for=org)
        return self._issue_tokens(s, p)

    def _check_totp(self, s: Session, person: PersonRow, code: str, key: str) -> None:
        """The second factor of an enrolled person; each time step is accepted once."""
        if not code:
            # The password was right: the client should now ask for the code. Not a failure.
            raise Unauthenticated("a one-time code is required", reason="OTP_REQUIRED")
        assert person.totp_secret is not None
        step = domain.totp_step(person.totp_secret, code, last_step=person.totp_last_step)
        if step is not None:
            # Conditional, so two logins racing with one code cannot both win.
            used = s.execute(sa.update(PersonRow).where(
                col(PersonRow.id) == person.id, col(PersonRow.totp_last_step) < step,
            ).values(totp_last_step=step))
            if used.rowcount == 1:  # type: ignore[attr-defined]
                return
        self._fail(key)
        raise Unauthenticated("the one-time code is wrong or was used already", reason="BAD_OTP")

    def authenticate_partner(self, s: Session, client_id: str, secret: str) -> tuple[str, str, int]:
        if not client_id or not secret:
            raise InvalidArgument(fields={k: "required" for k, v in
                                          (("client_id", client_id), ("client_secret", secret)) if not v})
        key = "partner:" + client_id
        self._count_call(key, self.rate_limits.partner_auth, "partner logins")
        self._throttle(s, key)
        row = s.get(PartnerRow, client_id)
        if row is None or row.disabled or not domain.check_secret(secret, row.secret_hash):
            self._fail(key)
            raise Unauthenticated("client credentials are wrong", reason="BAD_CREDENTIALS")
        p = auth.Principal(subject=f"partners/{client_id}", kind=row.kind,
                           agency=partner_agency(row),
                           scopes=tuple(filter(None, row.scopes.split(","))))
        return self._issue_tokens(s, p)

    def refresh(self, s: Session, token: str) -> tuple[str, str, int]:
        row = s.get(RefreshTokenRow, hashlib.sha256(token.encode()).hexdigest())
        if row is None or row.revoked or _aware(row.expire_time) < utcnow():
            raise Unauthenticated("refresh token is not valid", reason="REFRESH_INVALID")
        row.revoked = True  # one use each: rotation limits a stolen refresh token
        s.add(row)
        claims = json.loads(row.claims_json)
        return self._issue_tokens(s, self._current_principal(s, auth.Principal.from_claims(claims)))

    def _current_principal(self, s: Session, was: auth.Principal) -> auth.Principal:
        """The caller as they stand now: a refresh must not outlive a disabled partner,
        changed official roles or a revoked representation."""
        gone = Unauthenticated("refresh token is no longer valid", reason="REFRESH_INVALID")
        if was.kind in (auth.PARTNER, auth.SERVICE):
            partner = s.get(PartnerRow, was.subject.removeprefix("partners/"))
            if partner is None or partner.disabled:
                raise gone
            return auth.Principal(subject=was.subject, kind=partner.kind,
                                  agency=partner_agency(partner),
                                  scopes=tuple(filter(None, partner.scopes.split(","))))
        person_id = was.subject.removeprefix("persons/")
        if s.get(PersonRow, person_id) is None:
            raise gone
        roles: tuple[str, ...] = ()
        if was.kind == auth.OFFICIAL:
            off = s.exec(select(OfficialRow).where(
                OfficialRow.person_id == person_id,
                OfficialRow.agency_code == was.agency.removeprefix("agencies/"))).first()
            if off is None:
                raise gone
            roles = tuple(filter(None, off.roles.split(",")))
        if was.acting_for and not self.represents(
                s, person_id, was.acting_for.removeprefix("organisations/")):
            raise gone
        return auth.Principal(subject=was.subject, kind=was.kind, agency=was.agency, roles=roles,
                              acting_for=was.acting_for)

    def logout(self, s: Session, token: str) -> None:
        row = s.get(RefreshTokenRow, hashlib.sha256(token.encode()).hexdigest())
        if row is not None:
            row.revoked = True
            s.add(row)

    # ------------------------------------------------------------ persons
    def create_person(self, s: Session, *, id_number: str, display_name: str, assurance: str,
                      password: str, request_id: str) -> PersonRow:
        problems: dict[str, str] = {}
        try:
            id_number = domain.validate_id_number(id_number, "person.id_number")
        except InvalidArgument as e:
            problems.update(e.fields)
        if not display_name.strip():
            problems["person.display_name"] = "required"
        if len(password) < 8:
            problems["password"] = "must be at least 8 characters"
        if problems:
            raise InvalidArgument(fields=problems)
        if request_id:
            existing = s.exec(select(PersonRow).where(PersonRow.request_id == request_id)).first()
            if existing:
                return existing
        if s.exec(select(PersonRow).where(PersonRow.id_number == id_number)).first():
            raise AlreadyExists("a person with this ID number exists", reason="PERSON_EXISTS")
        row = PersonRow(id=new_id(), id_number=id_number, display_name=display_name.strip(),
                        assurance_level=assurance or "account",
                        password_hash=domain.hash_secret(password), request_id=request_id or None)
        s.add(row)
        s.flush()
        return row

    def get_person(self, s: Session, name: str) -> PersonRow:
        pid = name.removeprefix("persons/")
        row = s.get(PersonRow, pid) if name.startswith("persons/") else None
        if row is None:
            raise NotFound(f"{name} not found", reason="PERSON_NOT_FOUND")
        return row

    def list_persons(self, s: Session, *, offset: int, limit: int, id_number: str | None,
                     assurance: str | None = None) -> list[PersonRow]:
        q = select(PersonRow).order_by(PersonRow.id)
        if id_number:
            q = q.where(PersonRow.id_number == id_number.upper())
        if assurance:
            q = q.where(PersonRow.assurance_level == assurance)
        return list(s.exec(q.offset(offset).limit(limit)).all())

    def enroll_totp(self, s: Session, person: PersonRow) -> tuple[str, str]:
        """A new (unconfirmed) TOTP secret for ``person`` and its otpauth URI.

        Enrolling again before confirming replaces the pending secret; once confirmed, the
        factor stays until a platform administrator resets it (ResetTotp).
        """
        if person.totp_confirmed:
            raise FailedPrecondition("a one-time code app is enrolled already",
                                     reason="TOTP_ALREADY_ENROLLED")
        secret = domain.new_totp_secret()
        person.totp_secret = secret
        person.totp_last_step = 0
        s.add(person)
        return secret, domain.totp_uri(secret, domain.mask_id_number(person.id_number))

    def confirm_totp(self, s: Session, person: PersonRow, code: str) -> None:
        if not code:
            raise InvalidArgument(fields={"one_time_code": "required"})
        if person.totp_confirmed:
            raise FailedPrecondition("a one-time code app is enrolled already",
                                     reason="TOTP_ALREADY_ENROLLED")
        if person.totp_secret is None:
            raise FailedPrecondition("call EnrollTotp first", reason="TOTP_NOT_ENROLLED")
        step = domain.totp_step(person.totp_secret, code, last_step=person.totp_last_step)
        if step is None:
            raise InvalidArgument(fields={"one_time_code": "wrong or expired"}, reason="BAD_OTP")
        person.totp_confirmed = True
        person.totp_last_step = step
        s.add(person)

    def reset_totp(self, s: Session, person: PersonRow) -> bool:
        """Removes the person's second factor (confirmed or pending) and revokes their
        refresh tokens; True when there was one."""
        had = person.totp_secret is not None or person.totp_confirmed
        person.totp_secret = None
        person.totp_confirmed = False
        person.totp_last_step = 0
        s.add(person)
        self._revoke_refresh_tokens(s, f"persons/{person.id}")
        return had

    # ------------------------------------------------------------ organisations
    def create_organisation(self, s: Session, *, credit_code: str, display_name: str,
                            legal_rep: str, request_id: str) -> OrganisationRow:
        problems: dict[str, str] = {}
        try:
            credit_code = domain.validate_credit_code(credit_code, "organisation.credit_code")
        except InvalidArgument as e:
            problems.update(e.fields)
        if not display_name.strip():
            problems["organisation.display_name"] = "required"
        rep_id = legal_rep.removeprefix("persons/")
        if not legal_rep.startswith("persons/") or s.get(PersonRow, rep_id) is None:
            problems["organisation.legal_representative"] = "must name an existing person"
        if problems:
            raise InvalidArgument(fields=problems)
        if request_id:
            existing = s.exec(select(OrganisationRow).where(
                OrganisationRow.request_id == request_id)).first()
            if existing:
                return existing
        if s.exec(select(OrganisationRow).where(OrganisationRow.credit_code == credit_code)).first():
            raise AlreadyExists("an organisation with this credit code exists",
                                reason="ORGANISATION_EXISTS")
        row = OrganisationRow(id=new_id(), credit_code=credit_code, display_name=display_name,
                              legal_representative=rep_id, request_id=request_id or None)
        s.add(row)
        # The legal representative may always act for the organisation.
        s.add(RepresentationRow(organisation_id=row.id, person_id=rep_id,
                                expire_time=utcnow() + dt.timedelta(days=365 * 50)))
        s.flush()
        return row

    def get_organisation(self, s: Session, name: str) -> OrganisationRow:
        row = s.get(OrganisationRow, name.removeprefix("organisations/")) \
            if name.startswith("organisations/") else None
        if row is None:
            raise NotFound(f"{name} not found", reason="ORGANISATION_NOT_FOUND")
        return row

    def represents(self, s: Session, person_id: str, org_id: str) -> bool:
        rep = s.exec(select(RepresentationRow).where(
            RepresentationRow.organisation_id == org_id,
            RepresentationRow.person_id == person_id)).first()
        return rep is not None and _aware(rep.expire_time) >= utcnow()

    def grant_representation(self, s: Session, org: str, person: str,
                             expire: dt.datetime | None) -> RepresentationRow:
        o = self.get_organisation(s, org)
        p = self.get_person(s, person)
        if expire is not None and expire <= utcnow():
            raise InvalidArgument(fields={"expire_time": "must be in the future"})
        if p.id == o.legal_representative:
            raise FailedPrecondition("the legal representative always acts for the organisation",
                                     reason="LEGAL_REPRESENTATIVE")
        expire = expire or utcnow() + dt.timedelta(days=365)
        rep = s.exec(select(RepresentationRow).where(
            RepresentationRow.organisation_id == o.id, RepresentationRow.person_id == p.id)).first()
        if rep is None:
            rep = RepresentationRow(organisation_id=o.id, person_id=p.id, expire_time=expire)
        rep.expire_time = expire
        s.add(rep)
        s.flush()
        return rep

    def revoke_representation(self, s: Session, org: OrganisationRow, person: str) -> None:
        p = self.get_person(s, person)
        if p.id == org.legal_representative:
            raise FailedPrecondition("the legal representative always acts for the organisation",
                                     reason="LEGAL_REPRESENTATIVE")
        rep = s.exec(select(RepresentationRow).where(
            RepresentationRow.organisation_id == org.id,
            RepresentationRow.person_id == p.id)).first()
        if rep is None:
            raise NotFound(f"{person} does not act for organisations/{org.id}",
                           reason="REPRESENTATION_NOT_FOUND")
        s.delete(rep)

    def list_representations(
        self, s: Session, *, organisation_id: str | None = None, person_id: str | None = None,
        show_expired: bool, offset: int, limit: int,
    ) -> list[tuple[RepresentationRow, OrganisationRow]]:
        q = select(RepresentationRow, OrganisationRow).join(
            OrganisationRow, col(OrganisationRow.id) == col(RepresentationRow.organisation_id))
        if organisation_id is not None:
            q = q.where(RepresentationRow.organisation_id == organisation_id)
        if person_id is not None:
            q = q.where(RepresentationRow.person_id == person_id)
        if not show_expired:
            q = q.where(col(RepresentationRow.expire_time) >= utcnow())
        q = q.order_by(col(RepresentationRow.id)).offset(offset).limit(limit)
        return [(r, o) for r, o in s.exec(q).all()]

    # ------------------------------------------------------------ agencies and officials
    def create_agency(self, s: Session, *, code: str, display_name: str, division: str,
                      level: str, parent: str) -> AgencyRow:
        problems: dict[str, str] = {}
        if not code or not all(c.isalnum() or c == "-" for c in code):
            problems["agency.code"] = "required; letters, digits and dashes"
        if not display_name:
            problems["agency.display_name"] = "required"
        if len(division) != 6 or not division.isdigit():
            problems["agency.division_code"] = "must be 6 digits (GB/T 2260)"
        if level not in AGENCY_LEVELS:
            problems["agency.level"] = "must be PROVINCE, CITY or COUNTY"
        parent_code = parent.removeprefix("agencies/") if parent else None
        if parent_code and s.get(AgencyRow, parent_code) is None:
            problems["agency.parent"] = "must name an existing agency"
        if problems:
            raise InvalidArgument(fields=problems)
        existing = s.get(AgencyRow, code)
        if existing:
            return existing  # creating the same agency again is harmless (seeding)
        row = AgencyRow(code=code, display_name=display_name, division_code=division,
                        level=level, parent=parent_code)
        s.add(row)
        s.flush()
        return row

    def list_agencies(self, s: Session, *, offset: int, limit: int) -> list[AgencyRow]:
        return list(s.exec(select(AgencyRow).order_by(AgencyRow.code).offset(offset).limit(limit)))

    def set_official_roles(self, s: Session, *, person: str, agency: str,
                           roles: list[str]) -> OfficialRow | None:
        p = self.get_person(s, person)
        code = agency.removeprefix("agencies/")
        if s.get(AgencyRow, code) is None:
            raise InvalidArgument(fields={"official.agency": "must name an existing agency"})
        bad = [r for r in roles if r not in domain.ROLES]
        if bad:
            raise InvalidArgument(fields={"official.roles": f"unknown roles {bad}"})
        row = s.exec(select(OfficialRow).where(OfficialRow.person_id == p.id,
                                               OfficialRow.agency_code == code)).first()
        if not roles:
            if row:
                s.delete(row)
            return None
        if row is None:
            row = OfficialRow(person_id=p.id, agency_code=code, roles="")
        row.roles = ",".join(sorted(set(roles), key=domain.ROLES.index))
        s.add(row)
        s.flush()
        return row

    def list_officials(self, s: Session, agency: str, *, offset: int,
                       limit: int) -> list[OfficialRow]:
        code = agency.removeprefix("agencies/")
        return list(s.exec(select(OfficialRow).where(OfficialRow.agency_code == code)
                           .order_by(OfficialRow.id).offset(offset).limit(limit)))

    # ------------------------------------------------------------ partners
    def create_partner(self, s: Session, *, client_id: str, display_name: str, agency: str,
                       scopes: list[str], kind: str = "partner",
                       secret: str | None = None) -> tuple[PartnerRow, str]:
        problems: dict[str, str] = {}
        if not client_id or not all(c.islower() or c.isdigit() or c == "-" for c in client_id):
            problems["partner.client_id"] = "required; lower-case letters, digits and dashes"
        if not display_name:
            problems["partner.display_name"] = "required"
        if agency and s.get(AgencyRow, agency.removeprefix("agencies/")) is None:
            problems["partner.agency"] = "must name an existing agency"
        if problems:
            raise InvalidArgument(fields=problems)
        if s.get(PartnerRow, client_id) is not None:
            raise AlreadyExists("a partner with this client id exists", reason="PARTNER_EXISTS")
        secret = secret or secrets.token_urlsafe(24)
        row = PartnerRow(client_id=client_id, display_name=display_name,
                         agency=agency.removeprefix("agencies/") or None, kind=kind,
                         scopes=",".join(scopes), secret_hash=domain.hash_secret(secret))
        s.add(row)
        s.flush()
        return row, secret

    def get_partner(self, s: Session, name: str) -> PartnerRow:
        row = s.get(PartnerRow, name.removeprefix("partners/")) \
            if name.startswith("partners/") else None
        if row is None:
            raise NotFound(f"{name} not found", reason="PARTNER_NOT_FOUND")
        return row

    def _managed_by_api(self, row: PartnerRow) -> None:
        if row.kind == auth.SERVICE:
            # Govflow's own identities take their secrets from settings at every start.
            raise FailedPrecondition("Govflow's own service accounts are managed by settings",
                                     reason="SERVICE_ACCOUNT")

    def _revoke_refresh_tokens(self, s: Session, subject: str) -> None:
        s.execute(sa.update(RefreshTokenRow).where(col(RefreshTokenRow.subject) == subject)
                  .values(revoked=True))

    def rotate_partner_secret(self, s: Session, name: str) -> tuple[PartnerRow, str]:
        """A new secret, returned once; the old one and every refresh token stop working."""
        row = self.get_partner(s, name)
        self._managed_by_api(row)
        secret = secrets.token_urlsafe(24)
        row.secret_hash = domain.hash_secret(secret)
        s.add(row)
        self._revoke_refresh_tokens(s, f"partners/{row.client_id}")
        return row, secret

    def disable_partner(self, s: Session, name: str) -> PartnerRow:
        row = self.get_partner(s, name)
        self._managed_by_api(row)
        row.disabled = True
        s.add(row)
        self._revoke_refresh_tokens(s, f"partners/{row.client_id}")
        return row

    def ensure_service_account(self, s: Session, client_id: str, secret: str,
                               scopes: list[str]) -> None:
        """Creates or updates one of Govflow's own service identities (from settings)."""
        row = s.get(PartnerRow, client_id)
        if row is None:
            self.create_partner(s, client_id=client_id, display_name=client_id, agency="",
                                scopes=scopes, kind=auth.SERVICE, secret=secret)
            return
        if not domain.check_secret(secret, row.secret_hash):
            row.secret_hash = domain.hash_secret(secret)
        row.scopes = ",".join(scopes)
        row.kind = auth.SERVICE
        s.add(row)


def partner_agency(row: PartnerRow) -> str:
    """``agencies/{code}`` of a partner, or "" (older rows stored the prefix too)."""
    code = (row.agency or "").removeprefix("agencies/")
    return f"agencies/{code}" if code else ""


def require_admin(p: auth.Principal) -> None:
    if not p.is_admin:
        raise PermissionDenied("only administrators may do this", reason="ADMIN_ONLY")


def is_platform_admin(p: auth.Principal) -> bool:
    """An administrator of Govflow itself (a service account with the admin scope), as
    opposed to an official who administers one agency."""
    return p.kind in (auth.SERVICE, auth.PARTNER) and auth.SCOPE_ADMIN in p.scopes


def require_platform_admin(p: auth.Principal) -> None:
    if not is_platform_admin(p):
        raise PermissionDenied("only platform administrators may do this",
                               reason="PLATFORM_ADMIN_ONLY")


class ExternalIdentityProvider(Protocol):
    """Where an external identity provider (a national or provincial OIDC/SAML IdP doing
    real-name and face checks) plugs in. Login would then accept the IdP's assertion in
    place of password and one-time code, map its subject to a person by ID number, take
    the assurance level from it, and issue our own tokens as today; nothing downstream
    changes, since every service trusts only Govflow's tokens. Not wired in yet."""

    def verify_assertion(self, assertion: str) -> Awaitable[tuple[str, str]]:
        """Checks an assertion; returns (resident ID number, assurance level)."""
        ...


def must_be_found(cond: bool, what: str) -> None:
    if not cond:
        raise NotFound(f"{what} not found")


__all__ = ["Identity", "require_admin", "require_platform_admin", "is_platform_admin",
           "must_be_found", "FailedPrecondition", "ExternalIdentityProvider"]
