"""Verification: VerifyCertificate (recompute what was signed; check signature, key,
issuer, window and status) and the compact form for offline checks, which is only signed
for a record that still verifies."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Callable

import segno
from sqlalchemy.engine import Connection
from sqlmodel import Session

from govflow import auth
from govflow.db import Database
from govflow.errors import FailedPrecondition
from services.certificates import access, domain, foreign, keys, offline, trust
from services.certificates.domain import Certificate, IssuerKey
from services.certificates.store import caches, issuer_keys
from services.certificates.store import certificates as certificate_store
from services.certificates.store.caches import Verification

# Failures that mean the record no longer matches what its issuer signed.
_BROKEN = frozenset({domain.Failure.PAYLOAD_MISMATCH, domain.Failure.BAD_SIGNATURE,
                     domain.Failure.UNKNOWN_KEY, domain.Failure.UNKNOWN_ISSUER})


def check(tx: Session | Connection, cert: Certificate, key: IssuerKey | None,
          now: dt.datetime) -> list[domain.Failure]:
    """Every failure of ``cert`` at ``now``; ``key`` is the issuer key its record names
    (None: unknown). A payload naming another key looks that one up. A foreign
    certificate is checked against the trust list as it stands (trust.check_stored)."""
    if foreign.is_foreign(cert.issuer):
        return trust.check_stored(tx, cert, now)
    payload = cert.signed_payload.encode()
    claims = domain.signed_claims(payload)
    # A payload that does not parse fails as BAD_SIGNATURE whatever its key.
    claimed = claims.kid if claims is not None else None
    if not isinstance(claimed, str):
        used = None
    elif claimed == cert.key_id:
        used = key
    else:  # a payload naming another key than the record's
        used = issuer_keys.issuer_key(tx, claimed)
    # The key's own agency has a key, so it is trusted: the list of trusted issuers can
    # change the answer only when the key is unknown.
    trusted = None if used is not None else frozenset(
        f"agencies/{a}" for a in issuer_keys.key_agencies(tx))
    expected = caches.expected_payload(cert.id, cert.type_code, cert.holder, cert.issuer,
                                      cert.fields_json, cert.valid_from, cert.valid_until,
                                      cert.status_list_index, cert.key_id)
    return domain.verify(
        payload, cert.signature, caches.public_key(used.public_jwk) if used is not None else None,
        status=cert.status, now=now,
        key_issuer=f"agencies/{used.agency}" if used is not None else None,
        trusted_issuers=trusted, expected_payload=expected,
        check_signature=None if used is None else
        lambda _public, signed, signature: caches.signature_ok(used.public_jwk, signed, signature))


class Verifying:
    """VerifyCertificate and GetCompactCertificate."""

    def __init__(self, db: Database, clock: Callable[[], dt.datetime]) -> None:
        self.db = db
        self.clock = clock
        self.verified = caches.Verifications()

    async def verify(self, p: auth.Principal, name: str, *, purpose: str,
                     application: str) -> Verification:
        """Recomputes what was signed, checks signature, key, issuer, window and status. A
        holder verifying their own certificate is answered by short reads
        (``Database.read``); every other caller — a read under a grant, which must be
        logged, or a refusal — takes ``verify_under_grant`` (``Database.write``).

        The holder's answer is made again only when something it depends on changed: one
        small query reads the certificate's head (its version, new on every write to its
        row by database triggers, and its key); while both and the clock's span are those of
        the verification made before (caches.Verifications), that one is the answer. The
        database decides, so a row changed by any path, on any replica, is verified again."""
        access.check_reader(p, application)
        cid = access.certificate_id(name)

        def read(conn: Connection) -> Verification | None:
            head = certificate_store.certificate_head(conn, cid)
            if head is None:
                raise access.certificate_not_found(name)
            if not domain.is_holder(p, head.holder):
                return None
            now = self.clock()
            seen = self.verified.get(cid, head, now)
            if seen is not None:
                return seen
            found = certificate_store.certificate_with_key(conn, cid)
            if found is None:  # deleted since the first query
                raise access.certificate_not_found(name)
            cert, key = found
            if not domain.is_holder(p, cert.holder):
                return None
            done = Verification(cert, check(conn, cert, key, now))
            if not foreign.is_foreign(cert.issuer):
                # A foreign certificate's answer also depends on the trust list and its
                # issuer's status list, which the certificate's version does not follow:
                # it is made afresh on every call.
                self.verified.put(done, key, now)
            return done

        done = await self.db.read(read)
        if done is not None:
            return done
        return await self.db.write(lambda conn: self.verify_under_grant(
            conn, p, name, purpose=purpose, application=application))

    def verify_under_grant(self, conn: Connection, p: auth.Principal, name: str, *,
                           purpose: str, application: str) -> Verification:
        """The verification for a caller who is not the holder, in one transaction: the
        certificate with its key, the caller's live grants on it, then the access-log row
        and audit entry of the read."""
        found = certificate_store.certificate_with_key(conn, access.certificate_id(name))
        now = self.clock()
        cert = access.read_certificate(conn, p, name, found[0] if found else None,
                                       purpose=purpose, application=application,
                                       action="verify", now=now)
        return Verification(cert, check(conn, cert, found[1] if found else None, now))

    async def compact(self, p: auth.Principal, name: str, *, purpose: str, application: str,
                      include_qr: bool) -> tuple[str, bytes]:
        """A QR-sized JWS of the certificate, signed by the key that signed the certificate
        (deterministic, so every call gives the same token), and optionally its QR PNG."""
        return await self.db.run(lambda s: self._compact(
            s, p, name, purpose=purpose, application=application, include_qr=include_qr))

    def _compact(self, s: Session, p: auth.Principal, name: str, *, purpose: str,
                 application: str, include_qr: bool) -> tuple[str, bytes]:
        access.check_reader(p, application)
        found = certificate_store.certificate_with_key(s.connection(), access.certificate_id(name))
        cert = access.read_certificate(s, p, name, found[0] if found else None,
                                       purpose=purpose, application=application,
                                       action="compact", now=self.clock())
        assert found is not None
        # Never put the issuer's signature on a record that no longer matches what it signed.
        failures = _BROKEN & set(check(s, cert, found[1], self.clock()))
        if failures:
            raise FailedPrecondition("the certificate's record does not match its signature",
                                     reason="CERTIFICATE_INTEGRITY",
                                     metadata={"failures": ",".join(sorted(failures))})
        if foreign.is_foreign(cert.issuer):
            # Govflow holds no key of a foreign issuer: the token is the one it signed.
            token = trust.token_of(cert)
        else:
            key = issuer_keys.signing_key(s, cert.key_id)
            assert key is not None
            token = offline.make_compact(keys.private(key), key.kid,
                                         offline.compact_claims(json.loads(cert.signed_payload)))
        png = b""
        if include_qr:
            out = io.BytesIO()
            segno.make(token, error="m", micro=False).save(out, kind="png", scale=4, border=4)
            png = out.getvalue()
        return token, png
