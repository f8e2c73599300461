"""Certificates' tables (sqlmodel). Only this service reads or writes them, through the
repository modules beside this one."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel, UniqueConstraint

from govflow.audit import AuditEntryBase, AuditHeadBase

metadata = SQLModel.metadata


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class CertificateTypeRow(SQLModel, table=True):
    __tablename__ = "certificate_types"
    code: str = Field(primary_key=True)
    display_name: str
    display_name_en: str = ""  # the English name beside display_name (the Chinese one)
    issuing_agency: str = Field(index=True)  # agency code, without "agencies/"
    holder_kind: str  # person or organisation
    fields_json: str  # [{"name", "type", "required"}, ...]
    default_validity_days: int = 0
    create_time: dt.datetime = Field(default_factory=utcnow)
    update_time: dt.datetime = Field(default_factory=utcnow)


class CertificateRow(SQLModel, table=True):
    __tablename__ = "certificates"
    __table_args__ = (
        # Idempotency: one certificate per caller and request id, whatever the retries.
        UniqueConstraint("requested_by", "request_id", name="uq_certificates_request"),
        # Each issuer's status list has one slot per certificate.
        UniqueConstraint("issuer", "status_list_index", name="uq_certificates_status_slot"),
    )
    id: str = Field(primary_key=True)
    type_code: str = Field(index=True)
    holder: str = Field(index=True)  # persons/{id} or organisations/{id}
    issuer: str = Field(index=True)  # agency code
    fields_json: str
    valid_from: dt.datetime
    valid_until: dt.datetime | None = None
    status: str = "active"  # active, suspended, revoked (expiry follows from the clock)
    status_reason: str = ""
    key_id: str
    signature: str
    signed_payload: str
    status_list_index: int
    issue_time: dt.datetime = Field(default_factory=utcnow)
    requested_by: str  # the caller's subject
    request_id: str
    application: str = ""
    # Set by database triggers (migration 7b3e5f21c8d4): random when the row is written,
    # one more on every update, so a verification made from one version is not reused for
    # another (store/caches.py, Verifications).
    version: int = Field(default=0, sa_type=sa.BigInteger, sa_column_kwargs={"server_default": "0"})


class IssuerKeyRow(SQLModel, table=True):
    __tablename__ = "issuer_keys"
    # kid is "<agency>.<generation>": two processes creating an agency's first key at
    # once collide on the primary key instead of leaving two active keys behind.
    kid: str = Field(primary_key=True)
    agency: str = Field(index=True)  # agency code
    generation: int
    private_pem: str
    public_jwk: str  # JSON, with kid, alg and issuer
    active: bool = True  # signs new certificates; inactive keys still verify old ones
    create_time: dt.datetime = Field(default_factory=utcnow)


class StatusListRow(SQLModel, table=True):
    """One issuer's status list: hands out the next slot to each new certificate."""

    __tablename__ = "status_lists"
    agency: str = Field(primary_key=True)  # agency code
    next_index: int = 0


class AccessLogRow(SQLModel, table=True):
    """Every read of a certificate by someone other than its holder."""

    __tablename__ = "access_log"
    id: int | None = Field(default=None, primary_key=True)
    certificate_id: str = Field(index=True)
    holder: str = Field(index=True)
    accessor: str  # the caller's subject
    action: str  # get, list or verify
    purpose: str = ""
    application: str = ""
    time: dt.datetime = Field(default_factory=utcnow, index=True)
    request_id: str = ""  # the gRPC request id, to join with the logs
    consent_id: str = ""  # the grant the read was made under
    party: str = ""  # that grant's party


class ConsentRow(SQLModel, table=True):
    """A holder's grant: one certificate, one party, one purpose, until a time."""

    __tablename__ = "consents"
    __table_args__ = (
        # At most one live grant per (certificate, party, purpose): ``live_key`` holds that
        # triple while the grant may be live and is cleared when it is revoked or replaced,
        # so concurrent identical grants collide here and the loser returns the winner's.
        UniqueConstraint("live_key", name="uq_consents_live"),
    )
    id: str = Field(primary_key=True)
    certificate_id: str = Field(index=True)
    holder: str = Field(index=True)
    party: str = Field(index=True)  # agencies/x, partners/x or applications/x
    purpose: str
    expire_time: dt.datetime
    granted_by: str  # the caller's subject
    create_time: dt.datetime = Field(default_factory=utcnow, index=True)
    revoke_time: dt.datetime | None = None
    live_key: str | None = None


class AuditEntryRow(AuditEntryBase, table=True):
    """This service's tamper-evident audit chain (govflow/audit.py)."""

    __tablename__ = "certificate_audit_log"


class AuditHeadRow(AuditHeadBase, table=True):
    __tablename__ = "certificate_audit_heads"


class TrustedIssuerRow(SQLModel, table=True):
    """An issuer outside the platform in the trust list (services/certificates/foreign.py).
    A removed issuer's row is deleted: the audit chain keeps its history."""

    __tablename__ = "trusted_issuers"
    issuer: str = Field(primary_key=True)  # issuers/{id}
    display_name: str
    jurisdiction: str
    jwks_json: str  # {"keys": [...]}, public Ed25519 JWKs
    status_list_location: str
    certificate_types_json: str  # ["certificateTypes/x", ...]
    not_after: dt.datetime
    added_by: str
    add_time: dt.datetime = Field(default_factory=utcnow)
    version: int  # the trust-list version that added (or last replaced) it


class TrustListHeadRow(SQLModel, table=True):
    """The trust list's version: one row, bumped first by every change (its row lock orders
    concurrent changes)."""

    __tablename__ = "trust_list_head"
    name: str = Field(primary_key=True)  # "trust-list"
    version: int = 0
    update_time: dt.datetime = Field(default_factory=utcnow)


class IssuerStatusListRow(SQLModel, table=True):
    """A trusted issuer's own signed status list, as published into Govflow (the newest)."""

    __tablename__ = "issuer_status_lists"
    issuer: str = Field(primary_key=True)  # issuers/{id}
    signed_payload: str
    signature: str
    kid: str
    issued_time: dt.datetime
    publish_time: dt.datetime = Field(default_factory=utcnow)
    published_by: str
