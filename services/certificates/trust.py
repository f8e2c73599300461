"""Cross-border recognition (issue 27): the trust list's use cases — AddTrustedIssuer,
RemoveTrustedIssuer, ListTrustedIssuers, GetTrustList, PublishIssuerStatusList — and
ImportCertificate, plus the check VerifyCertificate makes of a foreign certificate.

The rules are in foreign.py; who may change the list is a platform administrator
(``domain.may_manage_trust``). Every change bumps the list's version and is appended to the
certificates audit chain with the administrator, in the change's own transaction.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Callable

from sqlalchemy.engine import Connection
from sqlmodel import Session

from govflow import auth
from govflow.db import Database
from govflow.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    collect,
)
from services.certificates import domain, foreign, keys, offline
from services.certificates.domain import Certificate
from services.certificates.foreign import TrustedIssuer
from services.certificates.keys import SignedStatusList
from services.certificates.offline import OfflineFailure
from services.certificates.store import audit as audit_chain
from services.certificates.store import certificates as certificate_store
from services.certificates.store import transactions, trust_list


@dataclasses.dataclass(frozen=True)
class SignedTrustList:
    version: int
    signed_payload: str  # canonical JSON, see foreign.trust_list_payload
    signature: str
    kid: str


# A foreign check's failures as VerifyCertificate names them.
_ONLINE = {
    OfflineFailure.BAD_SIGNATURE: domain.Failure.BAD_SIGNATURE,
    OfflineFailure.UNKNOWN_ISSUER: domain.Failure.UNKNOWN_ISSUER,
    OfflineFailure.UNKNOWN_KEY: domain.Failure.UNKNOWN_KEY,
    OfflineFailure.NOT_YET_VALID: domain.Failure.NOT_YET_VALID,
    OfflineFailure.EXPIRED: domain.Failure.EXPIRED,
    OfflineFailure.SUSPENDED: domain.Failure.SUSPENDED,
    OfflineFailure.REVOKED: domain.Failure.REVOKED,
    OfflineFailure.STATUS_UNKNOWN: domain.Failure.STATUS_UNKNOWN,
    OfflineFailure.STATUS_LIST_EXPIRED: domain.Failure.STATUS_UNKNOWN,
    OfflineFailure.HOLDER_MISMATCH: domain.Failure.PAYLOAD_MISMATCH,
    OfflineFailure.ISSUER_NOT_TRUSTED: domain.Failure.ISSUER_NOT_TRUSTED,
    OfflineFailure.TYPE_NOT_IN_SCOPE: domain.Failure.TYPE_NOT_IN_SCOPE,
    OfflineFailure.ISSUER_TRUST_EXPIRED: domain.Failure.ISSUER_TRUST_EXPIRED,
    OfflineFailure.TRUST_LIST_EXPIRED: domain.Failure.STATUS_UNKNOWN,
}


def _held_status_list(tx: Session | Connection,
                      entry: TrustedIssuer | None) -> offline.StatusList | None:
    if entry is None:
        return None
    held = trust_list.status_list(tx, entry.issuer)
    if held is None:
        return None
    try:
        return foreign.read_issuer_status_list(held[0], held[1], entry)
    except ValueError:  # signed by a key since removed from the entry: no status known
        return None


def token_of(cert: Certificate) -> str:
    """The issuer's compact token of an imported certificate, as the holder presented it."""
    return f"{cert.signed_payload}.{cert.signature}"


def check_stored(tx: Session | Connection, cert: Certificate,
                 now: dt.datetime) -> list[domain.Failure]:
    """Every failure of an imported foreign certificate at ``now``, against the trust list
    as it stands (a removed issuer: ISSUER_NOT_TRUSTED) and the issuer's status list held;
    a record that no longer matches the token it came from is PAYLOAD_MISMATCH."""
    entry = trust_list.get_issuer(tx, cert.issuer)
    failures, claims = foreign.check_token(token_of(cert), entry, _held_status_list(tx, entry),
                                           now=now)
    out = [_ONLINE[f] for f in foreign.ordered(failures)]
    try:
        fields = json.loads(cert.fields_json)
    except ValueError:
        fields = None
    if claims and (claims.get("holder") != cert.holder or claims.get("issuer") != cert.issuer
                   or claims.get("type") != f"certificateTypes/{cert.type_code}"
                   or claims.get("fields") != fields
                   or claims.get("status_list_index") != cert.status_list_index):
        out.insert(0, domain.Failure.PAYLOAD_MISMATCH)
    return out


def as_its_issuer_says(tx: Session | Connection, cert: Certificate,
                       now: dt.datetime) -> Certificate:
    """An imported foreign certificate as a holder's wallet shows it: revoked or suspended
    when its issuer's status list held here says so (Govflow stores it active: only the
    issuer changes its status); any other certificate as it is. Why it may still fail
    verification (an issuer off the trust list, a type out of its scope) is
    VerifyCertificate's answer."""
    if not foreign.is_foreign(cert.issuer) or cert.status != domain.ACTIVE:
        return cert
    failures = check_stored(tx, cert, now)
    for failure, status in ((domain.Failure.REVOKED, domain.REVOKED),
                            (domain.Failure.SUSPENDED, domain.SUSPENDED)):
        if failure in failures:
            return dataclasses.replace(cert, status=status,
                                       status_reason=f"{status} by its issuer")
    return cert


class Trust:
    """The trust list and imports of foreign certificates."""

    def __init__(self, db: Database, clock: Callable[[], dt.datetime]) -> None:
        self.db = db
        self.clock = clock

    # ------------------------------------------------------------ the list
    async def add(self, p: auth.Principal, entry: TrustedIssuer) -> tuple[TrustedIssuer, int]:
        """Adds the issuer or replaces its entry; returns it and the list's new version."""
        return await transactions.with_retries(self.db.run, lambda s: self._add(s, p, entry))

    def _add(self, s: Session, p: auth.Principal,
             entry: TrustedIssuer) -> tuple[TrustedIssuer, int]:
        _admin_only(p)
        now = domain.whole_seconds(self.clock())
        collect(foreign.entry_problems(entry, now))
        jwks, _ = foreign.normalise_jwks(entry.jwks_json)
        before = trust_list.get_issuer(s, entry.issuer)
        version = trust_list.next_version(s, now)
        saved = dataclasses.replace(
            entry, display_name=entry.display_name.strip(), jwks_json=jwks,
            status_list_location=entry.status_list_location.strip(),
            not_after=domain.whole_seconds(entry.not_after), added_by=p.subject, add_time=now,
            version=version)
        trust_list.put_issuer(s, saved)
        audit_chain.append_about(s, actor=p.subject, action="trust_list.issuer_added",
                                 subject=saved.issuer, details={
            "trust_list_version": version, "replaced": before is not None,
            "display_name": saved.display_name, "jurisdiction": saved.jurisdiction,
            "key_ids": sorted(foreign.public_keys(saved)),
            "certificate_types": sorted(saved.certificate_types),
            "not_after": domain.format_time(saved.not_after),
            "status_list_location": saved.status_list_location})
        return saved, version

    async def remove(self, p: auth.Principal, name: str, reason: str) -> int:
        """Removes the issuer; returns the list's new version."""
        return await transactions.with_retries(self.db.run,
                                               lambda s: self._remove(s, p, name, reason))

    def _remove(self, s: Session, p: auth.Principal, name: str, reason: str) -> int:
        _admin_only(p)
        problems: dict[str, str] = {}
        bad = foreign.issuer_problem(name)
        if bad:
            problems["name"] = bad
        if not reason.strip():
            problems["reason"] = "required"
        collect(problems)
        now = domain.whole_seconds(self.clock())
        if not trust_list.delete_issuer(s, name):
            raise NotFound(f"{name} is not in the trust list", reason="ISSUER_NOT_FOUND")
        version = trust_list.next_version(s, now)
        audit_chain.append_about(s, actor=p.subject, action="trust_list.issuer_removed",
                                 subject=name, details={"trust_list_version": version,
                                                        "reason": reason.strip()})
        return version

    async def list(self, *, offset: int, limit: int) -> tuple[list[TrustedIssuer], int]:
        def read(s: Session) -> tuple[list[TrustedIssuer], int]:
            return trust_list.list_issuers(s, offset=offset, limit=limit), trust_list.version(s)

        return await self.db.run(read)

    async def signed(self) -> SignedTrustList:
        """The current list, freshly signed by the platform's key (made on first use)."""
        return await transactions.with_retries(self.db.run, self._signed)

    def _signed(self, s: Session) -> SignedTrustList:
        key = keys.active_key(s, foreign.PLATFORM_AGENCY)
        version = trust_list.version(s)
        payload = domain.canonical(foreign.trust_list_payload(
            version=version, issuers=trust_list.list_issuers(s), issued=self.clock(),
            kid=key.kid))
        return SignedTrustList(version, payload.decode(), domain.sign(keys.private(key), payload),
                               key.kid)

    # ------------------------------------------------------------ issuers' status lists
    async def publish_status_list(self, p: auth.Principal, signed_payload: str,
                                  signature: str) -> SignedStatusList:
        """Keeps a trusted issuer's own signed status list (newer than the one held)."""
        return await transactions.with_retries(self.db.run, lambda s: self._publish(
            s, p, signed_payload, signature))

    def _publish(self, s: Session, p: auth.Principal, signed_payload: str,
                 signature: str) -> SignedStatusList:
        _admin_only(p)
        try:
            issuer = json.loads(signed_payload).get("issuer")
        except (ValueError, AttributeError, RecursionError):  # not JSON, not an object, too deep
            issuer = None
        if not foreign.is_foreign(issuer):
            raise InvalidArgument(fields={
                "status_list.signed_payload": "must be a status list of issuers/{id}"})
        assert isinstance(issuer, str)
        entry = trust_list.get_issuer(s, issuer)
        if entry is None:
            raise NotFound(f"{issuer} is not in the trust list", reason="ISSUER_NOT_FOUND")
        try:
            sl = foreign.read_issuer_status_list(signed_payload, signature, entry)
        except (ValueError, RecursionError) as exc:
            raise FailedPrecondition(f"status list refused: {exc}",
                                     reason="STATUS_LIST_INVALID") from exc
        held = trust_list.status_list_issued(s, issuer)
        if held is not None and held >= sl.issued_time:
            raise FailedPrecondition("a status list of this issuer as new or newer is held",
                                     reason="STATUS_LIST_NOT_NEWER",
                                     metadata={"held_issued_time": domain.format_time(held) or ""})
        now = self.clock()
        trust_list.put_status_list(s, issuer=issuer, signed_payload=signed_payload,
                                   signature=signature, kid=sl.kid, issued_time=sl.issued_time,
                                   now=now, published_by=p.subject)
        audit_chain.append_about(s, actor=p.subject, action="trust_list.status_list_published",
                                 subject=issuer, details={
            "kid": sl.kid, "issued_time": domain.format_time(sl.issued_time),
            "valid_until": domain.format_time(sl.valid_until),
            "signed_payload_sha256": hashlib.sha256(signed_payload.encode()).hexdigest()})
        return SignedStatusList(signed_payload, signature, sl.kid)

    async def issuer_status_list(self, issuer: str) -> SignedStatusList:
        """A trusted issuer's published status list, as it signed it (GetStatusList)."""
        def read(s: Session) -> SignedStatusList:
            held = trust_list.status_list(s, issuer) \
                if trust_list.get_issuer(s, issuer) is not None else None
            if held is None:
                raise NotFound(f"no status list of {issuer} is held", reason="ISSUER_NOT_FOUND")
            return SignedStatusList(*held)

        return await self.db.run(read)

    # ------------------------------------------------------------ imports
    async def import_certificate(self, p: auth.Principal, token: str) -> Certificate:
        """Verifies the holder's foreign token against the trust list and keeps it in their
        wallet; the same token again returns the same certificate."""
        return await transactions.with_retries(self.db.run,
                                               lambda s: self._import(s, p, token))

    def _import(self, s: Session, p: auth.Principal, token: str) -> Certificate:
        if p.kind != auth.PERSON:
            raise PermissionDenied("a holder imports into their own wallet",
                                   reason="HOLDERS_ONLY")
        try:
            parsed = offline.parse_compact(token)
        except (ValueError, RecursionError) as exc:  # RecursionError: JSON nested too deep
            raise InvalidArgument(fields={"token": f"not a compact certificate token: {exc}"}) \
                from exc
        issuer = parsed.claims.get("issuer")
        if not foreign.is_foreign(issuer):
            raise InvalidArgument(fields={"token": "the issuer must be issuers/{id}: Govflow's "
                                                   "own certificates are in the wallet already"})
        assert isinstance(issuer, str)
        request_id = "import/" + hashlib.sha256(token.strip().encode()).hexdigest()
        existing = certificate_store.find_by_request(s, p.subject, request_id)
        if existing is not None:
            return existing
        now = domain.whole_seconds(self.clock())
        entry = trust_list.get_issuer(s, issuer)
        failures, claims = foreign.check_token(token.strip(), entry,
                                               _held_status_list(s, entry), now=now)
        if not domain.is_holder(p, claims.get("holder", "")):
            failures.append(OfflineFailure.HOLDER_MISMATCH)
        if failures:
            first = foreign.ordered(failures)
            raise FailedPrecondition(
                f"{issuer}'s certificate is not accepted: "
                + ", ".join(f.value for f in first), reason=first[0].value,
                metadata={"failures": ",".join(f.value for f in first), "issuer": issuer})
        collect(foreign.claims_problems(claims))
        index = int(claims["status_list_index"])
        taken = certificate_store.find_by_slot(s, issuer, index)
        if taken is not None:
            raise AlreadyExists("this certificate is held already",
                                reason="CERTIFICATE_ALREADY_IMPORTED")
        valid_from = domain.parse_time(claims.get("valid_from")) or now
        cert = certificate_store.add_certificate(s, Certificate(
            id=uuid.uuid4().hex, type_code=str(claims["type"]).removeprefix("certificateTypes/"),
            holder=str(claims["holder"]), issuer=issuer,
            fields_json=json.dumps(claims["fields"], sort_keys=True), valid_from=valid_from,
            valid_until=domain.parse_time(claims.get("valid_until")), status=domain.ACTIVE,
            status_reason="", key_id=parsed.kid, signature=parsed.signature,
            signed_payload=parsed.signing_input.decode(), status_list_index=index,
            issue_time=now, requested_by=p.subject, request_id=request_id, application="",
            version=0))
        audit_chain.append(s, actor=p.subject, action="certificate.imported",
                           certificate_id=cert.id, details={
            "issuer": issuer, "type": claims["type"], "holder": cert.holder,
            "foreign_id": claims["id"], "key_id": parsed.kid,
            "status_list_index": index, "trust_list_version": trust_list.version(s),
            "token_sha256": hashlib.sha256(token.strip().encode()).hexdigest()})
        return cert


def _admin_only(p: auth.Principal) -> None:
    if not domain.may_manage_trust(p):
        raise PermissionDenied("only platform administrators change the trust list",
                               reason="ADMIN_ONLY")
