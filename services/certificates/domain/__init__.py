"""Certificates' rules in plain Python — no gRPC, no SQL:

- ``fields``   certificate types: the schema of a type's fields, holder kinds, and the
               checks of a type definition, of field values and of a holder's name
- ``status``   the stored states (active, suspended, revoked), the changes an issuer may
               make, and when an active certificate counts as expired
- ``times``    times as stored and signed: UTC, whole seconds, ``YYYY-MM-DDTHH:MM:SSZ``
- ``signing``  the signed payload, its canonical form (RFC 8785), Ed25519 signatures, and
               ``verify``: every reason a signed certificate is not valid now, runnable
               offline with only the payload, its signature and the issuer's public key
- ``policy``   who may do what (issue, pull, rotate keys, manage the trust list, read as
               the holder) and the rules of consent grants (parties, purposes, expiry)
- ``records``  the records the repository (store/) returns: Certificate, Consent, ...
- the offline forms (compact tokens, status lists) are in ``services/certificates/offline.py``,
  the trust list and foreign certificates in ``services/certificates/foreign.py``

The names used across the service are re-exported here (``domain.verify``,
``domain.may_issue``)."""

from services.certificates.domain.fields import (
    HOLDER_KINDS,
    MAX_FIELD_VALUE,
    PLATFORM_AGENCY,
    FieldSpec,
    agency_code,
    field_problems,
    holder_problem,
    is_holder_name,
    normalise_fields,
    type_problems,
)
from services.certificates.domain.policy import (
    CONSENT_ACTIVE,
    CONSENT_EXPIRED,
    CONSENT_REVOKED,
    DEFAULT_CONSENT_DAYS,
    application_problem,
    caller_party,
    consent_live_key,
    consent_state,
    expire_problem,
    is_holder,
    may_issue,
    may_manage_trust,
    may_pull,
    may_rotate_key,
    party_problem,
    purpose_problem,
)
from services.certificates.domain.records import (
    AccessRecord,
    Certificate,
    CertificateHead,
    CertificateType,
    Consent,
    IssuerKey,
    SigningKey,
)
from services.certificates.domain.signing import (
    Failure,
    b64url,
    b64url_decode,
    build_payload,
    canonical,
    sign,
    signature_ok,
    signed_claims,
    verify,
)
from services.certificates.domain.status import (
    ACTIVE,
    EXPIRED,
    REVOKED,
    SUSPENDED,
    effective_status,
    transition_allowed,
)
from services.certificates.domain.times import aware, format_time, parse_time, whole_seconds

__all__ = ["ACTIVE", "CONSENT_ACTIVE", "CONSENT_EXPIRED", "CONSENT_REVOKED",
           "DEFAULT_CONSENT_DAYS", "EXPIRED", "HOLDER_KINDS", "MAX_FIELD_VALUE",
           "PLATFORM_AGENCY", "REVOKED", "SUSPENDED", "AccessRecord", "Certificate",
           "CertificateHead", "CertificateType", "Consent", "Failure", "FieldSpec", "IssuerKey",
           "SigningKey", "agency_code", "application_problem", "aware", "b64url",
           "b64url_decode", "build_payload", "caller_party", "canonical", "consent_live_key",
           "consent_state", "effective_status", "expire_problem", "field_problems",
           "format_time", "holder_problem", "is_holder", "is_holder_name", "may_issue",
           "may_manage_trust", "may_pull", "may_rotate_key", "normalise_fields", "parse_time",
           "party_problem", "purpose_problem", "sign", "signature_ok", "signed_claims",
           "transition_allowed", "type_problems", "verify", "whole_seconds"]
