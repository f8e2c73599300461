"""The signed certificate: the payload an issuer signs, its canonical form (RFC 8785),
Ed25519 signatures, and verification.

A verifier holding only a certificate's ``signed_payload``, its ``signature`` and the
issuer's public key (from ``ListIssuerKeys``) can run :func:`verify` itself, e.g. after
scanning a QR code.
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
from collections.abc import Callable, Mapping
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from services.certificates.domain.status import REVOKED, SUSPENDED
from services.certificates.domain.times import format_time, parse_time


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


# ---------------------------------------------------------------- verification


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
