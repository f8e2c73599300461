"""Certificate rules in plain Python: type schemas, field validation, the signed payload,
its canonical form (RFC 8785), Ed25519 signatures, and offline verification.

Nothing here touches gRPC or the database, so a verifier holding only a certificate's
``signed_payload``, its ``signature`` and the issuer's public key (from ``ListIssuerKeys``)
can run :func:`verify` itself, e.g. after scanning a QR code.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import enum
import functools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from govflow import auth

FIELD_TYPES = ("string", "date", "int", "bool")
HOLDER_KINDS = ("person", "organisation")
HOLDER_PREFIX = {"person": "persons/", "organisation": "organisations/"}
# The platform's own issuer-key agency: its key signs the trust list (foreign.py).
PLATFORM_AGENCY = "govflow"

# Stored states. EXPIRED is never stored: it follows from the clock and valid_until.
ACTIVE = "active"
SUSPENDED = "suspended"
REVOKED = "revoked"
EXPIRED = "expired"

_CODE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_FIELD_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
_ID_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_INT = re.compile(r"-?\d{1,18}")
MAX_FIELD_VALUE = 2000


class Failure(enum.StrEnum):
    """Why a certificate fails verification (mirrors the proto's VerificationFailure)."""

    BAD_SIGNATURE = "BAD_SIGNATURE"
    UNKNOWN_ISSUER = "UNKNOWN_ISSUER"
    UNKNOWN_KEY = "UNKNOWN_KEY"
    NOT_YET_VALID = "NOT_YET_VALID"
    EXPIRED = "EXPIRED"
    SUSPENDED = "SUSPENDED"
    REVOKED = "REVOKED"
    PAYLOAD_MISMATCH = "PAYLOAD_MISMATCH"
    # Foreign certificates only (foreign.py, the trust list).
    ISSUER_NOT_TRUSTED = "ISSUER_NOT_TRUSTED"
    TYPE_NOT_IN_SCOPE = "TYPE_NOT_IN_SCOPE"
    ISSUER_TRUST_EXPIRED = "ISSUER_TRUST_EXPIRED"
    STATUS_UNKNOWN = "STATUS_UNKNOWN"


@dataclasses.dataclass(frozen=True)
class FieldSpec:
    """One field of a certificate type's schema."""

    name: str
    type: str
    required: bool = False


# ---------------------------------------------------------------- certificate types


def type_problems(
    *,
    code: str,
    display_name: str,
    issuing_agency: str,
    holder_kind: str,
    fields: Sequence[FieldSpec],
    default_validity_days: int,
    prefix: str = "certificate_type",
) -> dict[str, str]:
    """Every problem with a certificate type definition, keyed by field path."""
    out: dict[str, str] = {}
    if not _CODE.fullmatch(code):
        out[f"{prefix}.code"] = "required; lower-case letters, digits and dashes (max 63)"
    if not display_name.strip():
        out[f"{prefix}.display_name"] = "required"
    if not agency_code(issuing_agency):
        out[f"{prefix}.issuing_agency"] = "required; agencies/{code}"
    elif agency_code(issuing_agency) == PLATFORM_AGENCY:
        # Its key signs the trust list (foreign.py); it must never sign a certificate too.
        out[f"{prefix}.issuing_agency"] = "agencies/govflow is the platform itself, not an issuer"
    if holder_kind not in HOLDER_KINDS:
        out[f"{prefix}.holder_kind"] = "must be PERSON or ORGANISATION"
    if not fields:
        out[f"{prefix}.fields"] = "at least one field is required"
    seen: set[str] = set()
    for i, spec in enumerate(fields):
        if not _FIELD_NAME.fullmatch(spec.name):
            out[f"{prefix}.fields[{i}].name"] = "lower-case letters, digits and underscores"
        elif spec.name in seen:
            out[f"{prefix}.fields[{i}].name"] = f"duplicate field {spec.name!r}"
        seen.add(spec.name)
        if spec.type not in FIELD_TYPES:
            out[f"{prefix}.fields[{i}].type"] = f"must be one of {', '.join(FIELD_TYPES)}"
    if default_validity_days < 0:
        out[f"{prefix}.default_validity_days"] = "must not be negative"
    return out


def agency_code(name: str) -> str:
    """The code in ``agencies/{code}``, or '' when ``name`` is not such a name."""
    if not name.startswith("agencies/"):
        return ""
    code = name.removeprefix("agencies/")
    return code if _ID_PART.fullmatch(code) else ""


# ---------------------------------------------------------------- certificates


def field_value_problem(spec: FieldSpec, value: str) -> str | None:
    """Why ``value`` does not fit ``spec``, or None."""
    if len(value) > MAX_FIELD_VALUE:
        return f"longer than {MAX_FIELD_VALUE} characters"
    if spec.type == "string":
        return None
    if spec.type == "date":
        if not _DATE.fullmatch(value):
            return "must be a date YYYY-MM-DD"
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            return "is not a real date"
        return None
    if spec.type == "int":
        return None if _INT.fullmatch(value) else "must be a whole number"
    if spec.type == "bool":
        return None if value in ("true", "false") else "must be true or false"
    return f"has an unknown type {spec.type!r}"


def field_problems(
    specs: Sequence[FieldSpec], values: Mapping[str, str], prefix: str = "certificate.fields"
) -> dict[str, str]:
    """Every problem with a certificate's fields against its type's schema: missing required
    fields, values of the wrong type, and fields the schema does not know."""
    out: dict[str, str] = {}
    by_name = {s.name: s for s in specs}
    for spec in specs:
        value = values.get(spec.name)
        if value is None or value == "":
            if spec.required:
                out[f"{prefix}.{spec.name}"] = "required"
            continue
        problem = field_value_problem(spec, value)
        if problem:
            out[f"{prefix}.{spec.name}"] = f"{spec.type} field {problem}"
    for name in values:
        if name not in by_name:
            out[f"{prefix}.{name}"] = "not a field of this certificate type"
    return out


def normalise_fields(specs: Sequence[FieldSpec], values: Mapping[str, str]) -> dict[str, str]:
    """Drops empty optional fields so an absent and an empty value sign the same."""
    return {k: v for k, v in values.items() if v != "" and any(s.name == k for s in specs)}


def holder_problem(holder: str, holder_kind: str) -> str | None:
    """Why ``holder`` cannot hold a certificate of a type with ``holder_kind``, or None."""
    prefix = HOLDER_PREFIX.get(holder_kind, "")
    if not holder:
        return "required"
    if not prefix or not holder.startswith(prefix):
        return f"must be {prefix or 'persons/ or organisations/'}{{id}} for this certificate type"
    if not _ID_PART.fullmatch(holder.removeprefix(prefix)):
        return "malformed resource name"
    return None


def is_holder_name(name: str) -> bool:
    return any(
        name.startswith(p) and bool(_ID_PART.fullmatch(name.removeprefix(p)))
        for p in HOLDER_PREFIX.values()
    )


# ---------------------------------------------------------------- time


def aware(t: dt.datetime) -> dt.datetime:
    """SQLite hands datetimes back naive; all stored times are UTC."""
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def whole_seconds(t: dt.datetime) -> dt.datetime:
    # Signed times carry whole seconds only, so a stored datetime always round-trips to
    # exactly the string that was signed, on every database.
    return aware(t).astimezone(dt.UTC).replace(microsecond=0)


def format_time(t: dt.datetime | None) -> str | None:
    if t is None:
        return None
    return whole_seconds(t).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: object) -> dt.datetime | None:
    if text is None:
        return None
    if not isinstance(text, str):
        raise TypeError("time must be a string")
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


def effective_status(stored: str, valid_until: dt.datetime | None, now: dt.datetime) -> str:
    """The status a holder sees: an active certificate past its end is expired."""
    if stored == ACTIVE and valid_until is not None and aware(valid_until) <= now:
        return EXPIRED
    return stored


# ---------------------------------------------------------------- payload and signature


def build_payload(
    *,
    certificate_id: str,
    type_code: str,
    holder: str,
    issuer_code: str,
    fields: Mapping[str, str],
    valid_from: dt.datetime,
    valid_until: dt.datetime | None,
    status_list_index: int,
    kid: str,
) -> dict[str, Any]:
    """The object an issuer signs; every value is derivable from the stored certificate."""
    return {
        "id": f"certificates/{certificate_id}",
        "type": f"certificateTypes/{type_code}",
        "holder": holder,
        "issuer": f"agencies/{issuer_code}",
        "fields": dict(fields),
        "valid_from": format_time(valid_from),
        "valid_until": format_time(valid_until),
        "status_list_index": status_list_index,
        "kid": kid,
    }


def canonical(payload: Mapping[str, Any]) -> bytes:
    """RFC 8785 (JCS) canonical JSON: sorted keys, no whitespace, fixed number and string
    forms, so any party re-serialising the same object gets the same bytes."""
    return rfc8785.dumps(dict(payload))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def b64url_decode(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(private_key: Ed25519PrivateKey, payload: bytes) -> str:
    """Ed25519 signature over ``payload``, base64url without padding."""
    return b64url(private_key.sign(payload))


def signature_ok(public_key: Ed25519PublicKey, payload: bytes, signature: str) -> bool:
    try:
        public_key.verify(b64url_decode(signature), payload)
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True


@dataclasses.dataclass(frozen=True)
class SignedClaims:
    """What verification reads from a signed payload."""

    issuer: object
    valid_from: dt.datetime | None
    valid_until: dt.datetime | None
    kid: object


@functools.lru_cache(maxsize=8192)
def signed_claims(payload: bytes) -> SignedClaims | None:
    """The claims of ``payload``; None when it is not a JSON object with well-formed times.
    Remembered by the payload's bytes, which alone decide the answer."""
    try:
        claims = json.loads(payload)
        if not isinstance(claims, dict):
            raise TypeError("payload is not an object")
        return SignedClaims(issuer=claims.get("issuer"),
                            valid_from=parse_time(claims.get("valid_from")),
                            valid_until=parse_time(claims.get("valid_until")),
                            kid=claims.get("kid"))
    except (ValueError, TypeError):
        return None


def verify(
    payload: bytes,
    signature: str,
    public_key: Ed25519PublicKey | None,
    *,
    status: str,
    now: dt.datetime,
    key_issuer: str | None = None,
    trusted_issuers: frozenset[str] | None = None,
    expected_payload: bytes | None = None,
    check_signature: Callable[[Ed25519PublicKey, bytes, str], bool] | None = None,
) -> list[Failure]:
    """Every reason the signed ``payload`` is not a valid certificate now; empty when valid.

    ``public_key`` is the key the payload's ``kid`` names (None when unknown);
    ``key_issuer`` is the agency that key belongs to; ``trusted_issuers`` are the agencies a
    verifier accepts (None: any with a known key); ``expected_payload`` is the canonical form
    recomputed from the issuer's records (None offline, where only the payload is at hand);
    ``check_signature`` replaces ``signature_ok`` (a caller that remembers the answers).
    """
    failures: list[Failure] = []
    if expected_payload is not None and expected_payload != payload:
        failures.append(Failure.PAYLOAD_MISMATCH)
    claims = signed_claims(payload)
    if claims is None:
        # Not even a payload we could have signed: nothing else can be trusted.
        return [*failures, Failure.BAD_SIGNATURE]
    issuer, valid_from, valid_until = claims.issuer, claims.valid_from, claims.valid_until
    if public_key is None:
        failures.append(Failure.UNKNOWN_KEY)
    elif not (check_signature or signature_ok)(public_key, payload, signature):
        failures.append(Failure.BAD_SIGNATURE)
    # A valid signature by agency A's key over a payload claiming issuer B proves nothing
    # about B, so a key/issuer mismatch is an unknown issuer, as is an untrusted one.
    if (
        not isinstance(issuer, str)
        or (key_issuer is not None and issuer != key_issuer)
        or (trusted_issuers is not None and issuer not in trusted_issuers)
    ):
        failures.append(Failure.UNKNOWN_ISSUER)
    if valid_from is not None and now < valid_from:
        failures.append(Failure.NOT_YET_VALID)
    if valid_until is not None and now >= valid_until:
        failures.append(Failure.EXPIRED)
    if status == SUSPENDED:
        failures.append(Failure.SUSPENDED)
    elif status == REVOKED:
        failures.append(Failure.REVOKED)
    return failures


# ---------------------------------------------------------------- who may do what


def may_issue(p: auth.Principal, issuing_agency: str) -> bool:
    """The type's own agency issues (its approvers and admins, or its partner systems);
    Govflow's worker issues the result certificates of approved applications of any type."""
    if p.kind == auth.OFFICIAL:
        return p.agency == issuing_agency and bool({"approver", "admin"} & set(p.roles))
    if p.kind == auth.PARTNER:
        return p.has_scope(auth.SCOPE_CERT_ISSUE) and p.agency == issuing_agency
    if p.kind == auth.SERVICE:
        return p.has_scope(auth.SCOPE_CERT_ISSUE)
    return False


def is_holder(p: auth.Principal, holder: str) -> bool:
    """The holder itself, or a person acting for the holding organisation."""
    if p.subject == holder:
        return True
    return p.kind == auth.PERSON and bool(p.acting_for) and p.acting_for == holder


def may_pull(p: auth.Principal) -> bool:
    """Govflow's worker, which reads (under grants to applications) and grants on an
    applicant's behalf for one application."""
    return p.kind == auth.SERVICE and p.has_scope(auth.SCOPE_CERT_PULL)


# Status changes an issuer may make: from -> allowed targets. Revoked is final.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    ACTIVE: (SUSPENDED, REVOKED),
    SUSPENDED: (ACTIVE, REVOKED),
    REVOKED: (),
}


def transition_allowed(current: str, target: str) -> bool:
    return target in TRANSITIONS.get(current, ())


# ---------------------------------------------------------------- consent

PARTY_PREFIXES = ("agencies/", "partners/", "applications/")
DEFAULT_CONSENT_DAYS = 30
MAX_CONSENT_DAYS = 366
MAX_PURPOSE = 200

# Where a grant stands (computed: only the revoke time is stored).
CONSENT_ACTIVE = "active"
CONSENT_EXPIRED = "expired"
CONSENT_REVOKED = "revoked"


def party_problem(party: str) -> str | None:
    """Why ``party`` cannot receive a grant, or None."""
    if not party:
        return "required"
    for prefix in PARTY_PREFIXES:
        if party.startswith(prefix) and _ID_PART.fullmatch(party.removeprefix(prefix)):
            return None
    return "must be agencies/{code}, partners/{client_id} or applications/{id}"


def application_problem(application: str) -> str | None:
    if application.startswith("applications/") and _ID_PART.fullmatch(
            application.removeprefix("applications/")):
        return None
    return "must be applications/{id}"


def purpose_problem(purpose: str) -> str | None:
    if not purpose.strip():
        return "required"
    if len(purpose) > MAX_PURPOSE:
        return f"longer than {MAX_PURPOSE} characters"
    return None


def expire_problem(expire: dt.datetime, now: dt.datetime) -> str | None:
    if expire <= now:
        return "must be in the future"
    if expire > now + dt.timedelta(days=MAX_CONSENT_DAYS):
        return f"at most {MAX_CONSENT_DAYS} days ahead"
    return None


def caller_party(p: auth.Principal, application: str) -> str | None:
    """The party a non-holder caller reads as: an official's agency, a partner itself, or,
    for Govflow's worker, the application it names. None: the caller can hold no grant."""
    if p.kind == auth.OFFICIAL:
        return p.agency or None
    if p.kind == auth.PARTNER:
        return p.subject if p.subject.startswith("partners/") else None
    if may_pull(p):
        return application or None
    return None


def consent_state(revoke_time: dt.datetime | None, expire_time: dt.datetime,
                  now: dt.datetime) -> str:
    if revoke_time is not None:
        return CONSENT_REVOKED
    return CONSENT_EXPIRED if aware(expire_time) <= now else CONSENT_ACTIVE


def consent_live_key(certificate_id: str, party: str, purpose: str) -> str:
    """One string naming (certificate, party, purpose): unique among live grants."""
    return json.dumps([certificate_id, party, purpose], ensure_ascii=False, separators=(",", ":"))


def may_manage_trust(p: auth.Principal) -> bool:
    """Platform administrators only: the trust list decides what every verifier accepts, so
    no agency's admin changes it."""
    return p.kind in (auth.SERVICE, auth.PARTNER) and auth.SCOPE_ADMIN in p.scopes


def may_rotate_key(p: auth.Principal, agency: str) -> bool:
    """Govflow's administrators, or an admin official of the agency itself."""
    if p.kind in (auth.SERVICE, auth.PARTNER):
        return auth.SCOPE_ADMIN in p.scopes
    return p.kind == auth.OFFICIAL and "admin" in p.roles and p.agency == agency


# ---------------------------------------------------------------- records
# What the repository (store/) returns: plain, frozen values, never database rows.
# Frozen and hashable, so a record can key a memo by its whole value (store/caches.py).


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
