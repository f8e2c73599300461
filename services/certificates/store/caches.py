"""Every cache of the certificates service, each with its one invalidation rule.

- ``Verifications``: a holder's verification by certificate id. Served again only while the
  certificate's version (bumped by a database trigger on every write to its row, so by any
  process or replica), its key and the clock's span are those it was made from; every read
  checks them first.
- ``public_key``, ``signature_ok``, ``expected_payload``: pure functions of their arguments,
  remembered by them; nothing to invalidate (a changed record is different arguments).
- ``Verification.memo``: the response the API made of a verification, kept on it; it lives
  and goes with that verification's ``Verifications`` entry, so the same rule covers it.
- ``by_value``: proto messages built from a frozen record, remembered by the record's whole
  value (and the effective status); nothing to invalidate, for the same reason.

(``domain.signed_claims`` remembers the claims of a payload by its bytes, by the same rule;
it stays in ``domain`` because offline verifiers use it too.)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from jwt.algorithms import OKPAlgorithm
from jwt.exceptions import InvalidKeyError

from govflow.lru import Lru
from services.certificates import domain
from services.certificates.domain import CertificateHead, IssuerKey

F = TypeVar("F", bound=Callable[..., Any])

_EARLIEST = dt.datetime.min.replace(tzinfo=dt.UTC)
_LATEST = dt.datetime.max.replace(tzinfo=dt.UTC)


@dataclasses.dataclass(frozen=True)
class Verification:
    """A certificate and every failure of it at one moment."""

    certificate: domain.Certificate
    failures: list[domain.Failure]
    # What the API made of this verification (its response), kept with it while
    # Verifications serves it again, so the same response is not rebuilt.
    memo: dict[str, Any] = dataclasses.field(default_factory=dict, compare=False, repr=False)


@dataclasses.dataclass(frozen=True)
class _Verified:
    """A verification that may be served again: while the certificate's version and its key
    are those it was made from, and the clock is in [since, until), the span in which none
    of its time checks (not yet valid, expired) changes its answer."""

    version: int
    key: IssuerKey
    since: dt.datetime
    until: dt.datetime
    verification: Verification


def time_span(now: dt.datetime,
              bounds: Sequence[dt.datetime | None]) -> tuple[dt.datetime, dt.datetime]:
    """The span [since, until) around ``now`` that no time in ``bounds`` falls inside: every
    time check of a verification has the form ``now >= bound``."""
    times = [domain.aware(b) for b in bounds if b is not None]
    return (max((t for t in times if t <= now), default=_EARLIEST),
            min((t for t in times if t > now), default=_LATEST))


class Verifications:
    """Holders' verifications by certificate id. Rule: an entry is served only while the
    certificate's head (version and key, read from the database on every call) and the
    clock's span match those it was made from."""

    def __init__(self, size: int = 4096) -> None:
        self._items: Lru[str, _Verified] = Lru(size)

    def get(self, certificate_id: str, head: CertificateHead,
            now: dt.datetime) -> Verification | None:
        seen = self._items.get(certificate_id)
        if (seen is not None and seen.version == head.version
                and seen.key.agency == head.key_agency
                and seen.key.public_jwk == head.key_public_jwk
                and seen.since <= now < seen.until):
            return seen.verification
        return None

    def put(self, done: Verification, key: IssuerKey | None, now: dt.datetime) -> None:
        """Keeps ``done`` if its answer depends on the row, its own known key and the clock
        alone (the payload names the record's key, and that key is known)."""
        row = done.certificate
        claims = domain.signed_claims(row.signed_payload.encode())
        if claims is None or claims.kid != row.key_id or key is None:
            return
        since, until = time_span(now, (claims.valid_from, claims.valid_until, row.valid_until))
        self._items.put(row.id, _Verified(row.version, key, since, until, done))


@functools.lru_cache(maxsize=1024)
def public_key(public_jwk: str) -> Ed25519PublicKey | None:
    """The Ed25519 key of a JWK; None when the stored text is not one (a damaged or altered
    key row verifies nothing, rather than failing the call)."""
    try:
        loaded = OKPAlgorithm.from_jwk(public_jwk)
    except (InvalidKeyError, ValueError):
        return None
    return loaded if isinstance(loaded, Ed25519PublicKey) else None


@functools.lru_cache(maxsize=8192)
def signature_ok(public_jwk: str, payload: bytes, signature: str) -> bool:
    """Ed25519's answer for (key, payload, signature): the same three always get it."""
    public = public_key(public_jwk)
    return public is not None and domain.signature_ok(public, payload, signature)


@functools.lru_cache(maxsize=8192)
def expected_payload(certificate_id: str, type_code: str, holder: str, issuer: str,
                     fields_json: str, valid_from: dt.datetime, valid_until: dt.datetime | None,
                     status_list_index: int, kid: str) -> bytes:
    """The canonical payload the stored fields of a certificate sign."""
    return domain.canonical(domain.build_payload(
        certificate_id=certificate_id, type_code=type_code, holder=holder,
        issuer_code=issuer, fields=json.loads(fields_json), valid_from=valid_from,
        valid_until=valid_until, status_list_index=status_list_index, kid=kid))


def by_value(maxsize: int) -> Callable[[F], F]:
    """Remembers a builder's result by its (hashable, frozen) arguments. The caller copies
    the result before changing it."""
    # mypy, next line: lru_cache keeps the wrapped function's signature
    return functools.lru_cache(maxsize=maxsize)  # type: ignore[return-value]
