"""What the repository (store/) returns: plain, frozen values, never database rows.
Frozen and hashable, so a record can key a memo by its whole value (store/caches.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt

from services.certificates.domain.fields import FieldSpec


@dataclasses.dataclass(frozen=True)
class CertificateType:
    """A certificate type as the domain sees it."""

    code: str
    display_name: str
    issuing_agency: str  # agencies/{code}
    holder_kind: str
    fields: tuple[FieldSpec, ...]
    default_validity_days: int
    # The English name beside the primary (Chinese) display_name; "" when none is given.
    display_name_en: str = ""


@dataclasses.dataclass(frozen=True)
class Certificate:
    """A certificate as stored: its signed record, status and bookkeeping."""

    id: str
    type_code: str
    holder: str  # persons/{id} or organisations/{id}
    issuer: str  # agency code
    fields_json: str
    valid_from: dt.datetime
    valid_until: dt.datetime | None
    status: str  # active, suspended, revoked (expiry follows from the clock)
    status_reason: str
    key_id: str
    signature: str
    signed_payload: str
    status_list_index: int
    issue_time: dt.datetime
    requested_by: str
    request_id: str
    application: str
    version: int  # bumped by a database trigger on every write of the row


@dataclasses.dataclass(frozen=True)
class IssuerKey:
    """An issuer's public key: what verification needs of it."""

    agency: str  # agency code
    public_jwk: str


@dataclasses.dataclass(frozen=True)
class SigningKey:
    """An issuer's key pair: what issuing and signing status lists need of it."""

    kid: str
    agency: str
    private_pem: str
    public_jwk: str


@dataclasses.dataclass(frozen=True)
class CertificateHead:
    """What decides whether a verification made before still holds: the holder (who may
    read it that way), the row's version and the key the record names. Flat (no IssuerKey
    inside): it is read on every VerifyCertificate, and each record made costs."""

    holder: str
    version: int
    key_agency: str | None  # None: the key is unknown
    key_public_jwk: str | None


@dataclasses.dataclass(frozen=True)
class Consent:
    """A holder's grant: one certificate, one party, one purpose, until a time."""

    id: str
    certificate_id: str
    holder: str
    party: str
    purpose: str
    expire_time: dt.datetime
    granted_by: str
    create_time: dt.datetime
    revoke_time: dt.datetime | None


@dataclasses.dataclass(frozen=True)
class AccessRecord:
    """One read of a certificate by someone other than its holder."""

    id: int
    certificate_id: str
    holder: str
    accessor: str
    action: str  # get, list, verify or compact
    purpose: str
    application: str
    time: dt.datetime
    request_id: str
    consent_id: str
    party: str
