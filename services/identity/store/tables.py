"""Identity's tables (sqlmodel). Only this service reads or writes them."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel, UniqueConstraint

from govflow.audit import AuditEntryBase, AuditHeadBase

metadata = SQLModel.metadata


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class PersonRow(SQLModel, table=True):
    __tablename__ = "persons"
    id: str = Field(primary_key=True)
    id_number: str = Field(unique=True, index=True)
    display_name: str
    assurance_level: str = "account"
    password_hash: str
    request_id: str | None = Field(default=None, unique=True)
    create_time: dt.datetime = Field(default_factory=utcnow)
    # TOTP second factor: the base32 secret (set at enrolment), whether the person has
    # confirmed it (only then does Login ask for codes), and the last time step used, so
    # a code is accepted once.
    totp_secret: str | None = None
    totp_confirmed: bool = Field(default=False, sa_column_kwargs={"server_default": "0"})
    totp_last_step: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class OrganisationRow(SQLModel, table=True):
    __tablename__ = "organisations"
    id: str = Field(primary_key=True)
    credit_code: str = Field(unique=True, index=True)
    display_name: str
    legal_representative: str  # person id
    request_id: str | None = Field(default=None, unique=True)
    create_time: dt.datetime = Field(default_factory=utcnow)


class RepresentationRow(SQLModel, table=True):
    __tablename__ = "representations"
    __table_args__ = (UniqueConstraint("organisation_id", "person_id"),)
    id: int | None = Field(default=None, primary_key=True)
    organisation_id: str = Field(index=True)
    person_id: str = Field(index=True)
    expire_time: dt.datetime


class AgencyRow(SQLModel, table=True):
    __tablename__ = "agencies"
    code: str = Field(primary_key=True)
    display_name: str
    division_code: str
    level: str
    parent: str | None = None
    display_name_en: str = Field(default="", sa_column_kwargs={"server_default": ""})


class OfficialRow(SQLModel, table=True):
    __tablename__ = "officials"
    __table_args__ = (UniqueConstraint("person_id", "agency_code"),)
    id: int | None = Field(default=None, primary_key=True)
    person_id: str = Field(index=True)
    agency_code: str = Field(index=True)
    roles: str  # comma-separated role names


class PartnerRow(SQLModel, table=True):
    __tablename__ = "partners"
    client_id: str = Field(primary_key=True)
    display_name: str
    agency: str | None = None
    kind: str = "partner"  # partner, or service for Govflow's own processes
    scopes: str = ""  # comma-separated
    secret_hash: str
    disabled: bool = False
    create_time: dt.datetime = Field(default_factory=utcnow)


class SigningKeyRow(SQLModel, table=True):
    __tablename__ = "signing_keys"
    kid: str = Field(primary_key=True)
    private_pem: str
    public_jwk: str
    create_time: dt.datetime = Field(default_factory=utcnow)
    active: bool = True  # signs new tokens; inactive keys still verify until retired
    retired: bool = False


class RefreshTokenRow(SQLModel, table=True):
    __tablename__ = "refresh_tokens"
    token_hash: str = Field(primary_key=True)
    subject: str = Field(index=True)
    claims_json: str
    expire_time: dt.datetime
    revoked: bool = False


class LoginFailureRow(SQLModel, table=True):
    __tablename__ = "login_failures"
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(index=True)  # id number or client id
    time: dt.datetime = Field(default_factory=utcnow, index=True)


class LoginRateRow(SQLModel, table=True):
    """Calls per key in one fixed window (govflow/ratelimit.py), shared by all replicas."""

    __tablename__ = "login_rate_limits"
    key: str = Field(primary_key=True)  # e.g. login:{id number}, partner:{client id}
    window_start: int = Field(primary_key=True, index=True, sa_type=sa.BigInteger)  # Unix s
    count: int = 0


class PartnerKeyRow(SQLModel, table=True):
    """A partner's registered public JWK for private_key_jwt (several per partner: rotation)."""

    __tablename__ = "partner_keys"
    client_id: str = Field(primary_key=True)
    kid: str = Field(primary_key=True)
    public_jwk: str
    create_time: dt.datetime = Field(default_factory=utcnow)


class UsedAssertionRow(SQLModel, table=True):
    """The jti of each accepted client assertion, kept until it expires: each is used once."""

    __tablename__ = "used_client_assertions"
    key: str = Field(primary_key=True)  # {client id}:{jti}
    expire_time: int = Field(index=True, sa_type=sa.BigInteger)  # Unix s


class DelegationRow(SQLModel, table=True):
    """A person's or organisation's permission for a partner to act for them."""

    __tablename__ = "delegations"
    id: str = Field(primary_key=True)
    grantor: str = Field(index=True)  # persons/{id} or organisations/{id}
    delegate: str = Field(index=True)  # partners/{client_id}
    matters: str = ""  # ,code,code, (commas around each, so LIKE finds one exactly)
    purposes: str = ""  # JSON list
    expire_time: dt.datetime
    create_time: dt.datetime = Field(default_factory=utcnow)
    revoke_time: dt.datetime | None = None
    granted_by: str  # persons/{id}
    request_id: str | None = Field(default=None, unique=True)  # {granted_by}:{request_id}


class DelegationUseRow(SQLModel, table=True):
    """One action a partner took under a delegation: the grantor's access record."""

    __tablename__ = "delegation_uses"
    id: int | None = Field(default=None, primary_key=True)
    delegation_id: str = Field(index=True)
    grantor: str = Field(index=True)
    partner: str
    action: str
    matter: str = ""
    purpose: str = ""
    target: str = ""
    time: dt.datetime = Field(default_factory=utcnow)
    request_id: str = ""


class AuditEntryRow(AuditEntryBase, table=True):
    """This service's tamper-evident audit chain (govflow/audit.py): delegations granted,
    revoked and used."""

    __tablename__ = "identity_audit_log"


class AuditHeadRow(AuditHeadBase, table=True):
    __tablename__ = "identity_audit_heads"
