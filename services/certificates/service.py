"""Certificates' use cases over its store: the servicer calls these, nothing else does I/O."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import io
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import segno
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt.algorithms import OKPAlgorithm
from jwt.exceptions import InvalidKeyError
from sqlalchemy.engine import Connection
from sqlmodel import Session, col, select

from govflow import audit, auth, faults, log
from govflow.db import Database, Prepared
from govflow.lru import Lru
from govflow.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    collect,
)
from services.certificates import domain, offline
from services.certificates.store import (
    AccessLogRow,
    AuditEntryRow,
    AuditHeadRow,
    CertificateRow,
    CertificateTypeRow,
    ConsentRow,
    IssuerKeyRow,
    StatusListRow,
    utcnow,
)

T = TypeVar("T")
logger = log.get_logger("govflow.certificates")

# The certificates service's audit chain (govflow/audit.py): issues, status changes, and
# every read by someone other than the holder.
AUDIT_CHAIN = "certificates"
_STATUS_ACTIONS = {domain.SUSPENDED: "certificate.suspended", domain.REVOKED: "certificate.revoked",
                   domain.ACTIVE: "certificate.reinstated"}

# Conflicting inserts (a concurrent retry, a status-list slot or a first key taken by
# another transaction) are retried this many times before giving up.
MAX_ATTEMPTS = 8


def new_id() -> str:
    return uuid.uuid4().hex


@dataclasses.dataclass(frozen=True)
class CertificateType:
    """A certificate type as the domain sees it."""

    code: str
    display_name: str
    issuing_agency: str  # agencies/{code}
    holder_kind: str
    fields: tuple[domain.FieldSpec, ...]
    default_validity_days: int

    @classmethod
    def from_row(cls, row: CertificateTypeRow) -> CertificateType:
        return cls(
            code=row.code,
            display_name=row.display_name,
            issuing_agency=f"agencies/{row.issuing_agency}",
            holder_kind=row.holder_kind,
            fields=tuple(domain.FieldSpec(**f) for f in json.loads(row.fields_json)),
            default_validity_days=row.default_validity_days,
        )


@dataclasses.dataclass(frozen=True)
class IssueRequest:
    type: str  # certificateTypes/{code}
    holder: str
    fields: Mapping[str, str]
    valid_from: dt.datetime | None
    valid_until: dt.datetime | None
    request_id: str
    application: str


@dataclasses.dataclass(frozen=True)
class GrantRequest:
    certificate: str  # certificates/{id}, or '' with holder and certificate_type
    holder: str
    certificate_type: str  # certificateTypes/{code}
    party: str
    purpose: str
    expire_time: dt.datetime | None


@dataclasses.dataclass(frozen=True)
class SignedStatusList:
    signed_payload: str  # canonical JSON, see offline.status_list_payload
    signature: str
    kid: str


@dataclasses.dataclass(frozen=True)
class Verification:
    certificate: CertificateRow | Any  # an ORM object, or a Core row of its columns
    failures: list[domain.Failure]
    # What the API made of this verification (its response), kept with it while
    # verify_read serves it again.
    memo: dict[str, Any] = dataclasses.field(default_factory=dict, compare=False, repr=False)


@dataclasses.dataclass(frozen=True)
class _Verified:
    """A verification verify_read may serve again: while the certificate's version and its
    key are those it was made from, and the clock is in [since, until), the span in which
    none of its time checks (not yet valid, expired) changes its answer."""

    version: int
    key: tuple[str, str]  # the key's agency and public JWK
    since: dt.datetime
    until: dt.datetime
    verification: Verification


_EARLIEST = dt.datetime.min.replace(tzinfo=dt.UTC)
_LATEST = dt.datetime.max.replace(tzinfo=dt.UTC)


def _time_span(now: dt.datetime, bounds: Sequence[dt.datetime | None]) -> tuple[dt.datetime, dt.datetime]:
    """The span [since, until) around ``now`` that no time in ``bounds`` falls inside: every
    time check of a verification has the form ``now >= bound``."""
    times = [domain.aware(b) for b in bounds if b is not None]
    return (max((t for t in times if t <= now), default=_EARLIEST),
            min((t for t in times if t > now), default=_LATEST))


def _type_code(name: str) -> str:
    return name.removeprefix("certificateTypes/") if name.startswith("certificateTypes/") else ""


def _cert_id(name: str) -> str:
    return name.removeprefix("certificates/") if name.startswith("certificates/") else ""


_CERTIFICATES: sa.Table = CertificateRow.__table__  # type: ignore[attr-defined]
_KEYS: sa.Table = IssuerKeyRow.__table__  # type: ignore[attr-defined]
# A certificate with the issuer key its record names, in one query.
_WITH_KEY = _CERTIFICATES.outerjoin(_KEYS, _KEYS.c.kid == _CERTIFICATES.c.key_id)
_KEY_COLUMNS = (_KEYS.c.agency.label("key_agency"), _KEYS.c.public_jwk.label("key_public_jwk"))
_CERTIFICATE_AND_KEY = Prepared(sa.select(_CERTIFICATES, *_KEY_COLUMNS).select_from(
    _WITH_KEY).where(_CERTIFICATES.c.id == sa.bindparam("id")))
# What decides whether a verification made before still holds: the certificate's holder
# (who may read it this way), its version, and the key it names.
_CERTIFICATE_HEAD = Prepared(sa.select(
    _CERTIFICATES.c.holder, _CERTIFICATES.c.version, *_KEY_COLUMNS).select_from(
    _WITH_KEY).where(_CERTIFICATES.c.id == sa.bindparam("id")))
_ISSUER_KEY = Prepared(sa.select(_KEYS.c.agency, _KEYS.c.public_jwk).where(
    _KEYS.c.kid == sa.bindparam("kid")))
_KEY_AGENCIES = Prepared(sa.select(_KEYS.c.agency).distinct())
_CONSENTS: sa.Table = ConsentRow.__table__  # type: ignore[attr-defined]
# The writes of a read under a grant and of an application's end, as Core statements.
_ACCESS_LOG_INSERT = sa.insert(AccessLogRow.__table__)  # type: ignore[attr-defined]
# A caller's live grants on one certificate, oldest first (as _live_grants).
_LIVE_GRANTS = Prepared(sa.select(_CONSENTS).where(
    _CONSENTS.c.party == sa.bindparam("party"),
    _CONSENTS.c.certificate_id == sa.bindparam("certificate_id"),
    _CONSENTS.c.revoke_time.is_(None), _CONSENTS.c.expire_time > sa.bindparam("now")).order_by(
    _CONSENTS.c.create_time, _CONSENTS.c.id))
# GrantConsent's statements: the holder's newest active certificate of a type (issue
# times are whole seconds; within one, the later slot is the newer), a grant by its live
# key, clearing an expired grant's key, and the insert.
_NEWEST_ACTIVE = Prepared(sa.select(_CERTIFICATES.c.id, _CERTIFICATES.c.holder).where(
    _CERTIFICATES.c.holder == sa.bindparam("holder"),
    _CERTIFICATES.c.type_code == sa.bindparam("type_code"),
    _CERTIFICATES.c.status == sa.bindparam("active"),
    sa.or_(_CERTIFICATES.c.valid_until.is_(None),
           _CERTIFICATES.c.valid_until > sa.bindparam("now"))).order_by(
    _CERTIFICATES.c.issue_time.desc(), _CERTIFICATES.c.status_list_index.desc()).limit(1))
# The holder's newest certificate of a type in any state: what to name when none is active.
_NEWEST_ANY = Prepared(sa.select(_CERTIFICATES.c.id, _CERTIFICATES.c.status,
                                 _CERTIFICATES.c.valid_until).where(
    _CERTIFICATES.c.holder == sa.bindparam("holder"),
    _CERTIFICATES.c.type_code == sa.bindparam("type_code")).order_by(
    _CERTIFICATES.c.issue_time.desc(), _CERTIFICATES.c.status_list_index.desc()).limit(1))
_CERTIFICATE_HOLDER = Prepared(sa.select(_CERTIFICATES.c.id, _CERTIFICATES.c.holder).where(
    _CERTIFICATES.c.id == sa.bindparam("id")))
_LIVE_KEY = Prepared(sa.select(_CONSENTS).where(_CONSENTS.c.live_key == sa.bindparam("live_key")))
_CLEAR_LIVE_KEY = sa.update(_CONSENTS).where(_CONSENTS.c.id == sa.bindparam("consent_id")).values(
    live_key=None)
_CONSENT_INSERT = sa.insert(_CONSENTS)
_RELEASE = sa.update(_CONSENTS).where(
    _CONSENTS.c.party == sa.bindparam("application"), _CONSENTS.c.revoke_time.is_(None)).values(
    revoke_time=sa.bindparam("now"), live_key=None)


@dataclasses.dataclass(frozen=True)
class _IssuerKey:
    agency: str
    public_jwk: str


# What a verification recomputes that depends only on its inputs, remembered by them: the
# parsed public key by its JWK, Ed25519's answer by (key, payload, signature) — the same
# three always get the same answer — and the canonical payload by the stored fields it is
# built from. Status, validity window, issuer and the stored payload are still compared on
# every call.
@functools.lru_cache(maxsize=1024)
def _public_key(public_jwk: str) -> Ed25519PublicKey | None:
    """The Ed25519 key of a JWK; None when the stored text is not one (a damaged or
    altered key row verifies nothing, rather than failing the call)."""
    try:
        loaded = OKPAlgorithm.from_jwk(public_jwk)
    except (InvalidKeyError, ValueError):
        return None
    return loaded if isinstance(loaded, Ed25519PublicKey) else None


@functools.lru_cache(maxsize=8192)
def _signature_ok(public_jwk: str, payload: bytes, signature: str) -> bool:
    public = _public_key(public_jwk)
    return public is not None and domain.signature_ok(public, payload, signature)


@functools.lru_cache(maxsize=8192)
def _expected_payload(certificate_id: str, type_code: str, holder: str, issuer: str,
                      fields_json: str, valid_from: dt.datetime, valid_until: dt.datetime | None,
                      status_list_index: int, kid: str) -> bytes:
    return domain.canonical(domain.build_payload(
        certificate_id=certificate_id, type_code=type_code, holder=holder,
        issuer_code=issuer, fields=json.loads(fields_json), valid_from=valid_from,
        valid_until=valid_until, status_list_index=status_list_index, kid=kid))


def _not_found(name: str) -> NotFound:
    # One message for "absent" and "not yours", so the answer reveals nothing.
    return NotFound(f"{name or 'certificate'} not found", reason="CERTIFICATE_NOT_FOUND")


class Certificates:
    def __init__(self, db: Database, *, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock
        # verify_read's verifications by certificate id (see _Verified).
        self._verified: Lru[str, _Verified] = Lru(4096)

    # ------------------------------------------------------------ certificate types
    def put_type(self, s: Session, p: auth.Principal, t: CertificateType) -> CertificateType:
        """Creates the type, or replaces its definition; existing certificates keep theirs."""
        if not p.is_admin:
            raise PermissionDenied("only administrators define certificate types",
                                   reason="ADMIN_ONLY")
        if p.kind == auth.OFFICIAL:
            # An agency's admin defines its own agency's types only: neither a type another
            # agency issues, nor one that would make their agency issue another's type.
            existing = s.get(CertificateTypeRow, t.code)
            theirs = [f"agencies/{existing.issuing_agency}"] if existing else []
            if any(a != p.agency for a in [t.issuing_agency, *theirs]):
                raise PermissionDenied("an agency's admin defines its own agency's types only",
                                       reason="OTHER_AGENCY")
        collect(domain.type_problems(
            code=t.code, display_name=t.display_name, issuing_agency=t.issuing_agency,
            holder_kind=t.holder_kind, fields=t.fields,
            default_validity_days=t.default_validity_days))
        row = s.get(CertificateTypeRow, t.code) or CertificateTypeRow(
            code=t.code, display_name="", issuing_agency="", holder_kind="", fields_json="[]")
        row.display_name = t.display_name.strip()
        row.issuing_agency = domain.agency_code(t.issuing_agency)
        row.holder_kind = t.holder_kind
        row.fields_json = json.dumps([dataclasses.asdict(f) for f in t.fields])
        row.default_validity_days = t.default_validity_days
        row.update_time = utcnow()
        s.add(row)
        s.flush()
        return CertificateType.from_row(row)

    def list_types(self, s: Session, *, offset: int, limit: int,
                   issuing_agency: str | None, holder_kind: str | None) -> list[CertificateType]:
        q = select(CertificateTypeRow).order_by(CertificateTypeRow.code)
        if issuing_agency:
            q = q.where(CertificateTypeRow.issuing_agency == issuing_agency.removeprefix("agencies/"))
        if holder_kind:
            q = q.where(CertificateTypeRow.holder_kind == holder_kind)
        return [CertificateType.from_row(r) for r in s.exec(q.offset(offset).limit(limit))]

    # ------------------------------------------------------------ issuer keys
    def _active_key(self, s: Session, agency: str) -> IssuerKeyRow:
        """The agency's signing key, made on its first certificate."""
        row = s.exec(select(IssuerKeyRow).where(
            IssuerKeyRow.agency == agency, col(IssuerKeyRow.active)).order_by(
            col(IssuerKeyRow.generation).desc())).first()
        return row or self.rotate_key(s, agency)

    def rotate_key(self, s: Session, agency: str) -> IssuerKeyRow:
        """A new active key for ``agency``; older keys keep verifying what they signed."""
        last = s.exec(select(sa.func.max(IssuerKeyRow.generation)).where(
            IssuerKeyRow.agency == agency)).one()
        for old in s.exec(select(IssuerKeyRow).where(IssuerKeyRow.agency == agency,
                                                     col(IssuerKeyRow.active))).all():
            old.active = False
            s.add(old)
        generation = (last or 0) + 1
        kid = f"{agency}.{generation}"
        key = Ed25519PrivateKey.generate()
        jwk = json.loads(OKPAlgorithm.to_jwk(key.public_key()))
        jwk.update({"kid": kid, "alg": "EdDSA", "use": "sig", "issuer": f"agencies/{agency}"})
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
        row = IssuerKeyRow(kid=kid, agency=agency, generation=generation, private_pem=pem,
                           public_jwk=json.dumps(jwk))
        s.add(row)
        s.flush()
        return row

    def jwks(self, s: Session) -> str:
        rows = s.exec(select(IssuerKeyRow).order_by(col(IssuerKeyRow.agency),
                                                    col(IssuerKeyRow.generation))).all()
        return json.dumps({"keys": [json.loads(r.public_jwk) for r in rows]})

    # ------------------------------------------------------------ issuing
    def _existing(self, s: Session, p: auth.Principal, request_id: str) -> CertificateRow | None:
        return s.exec(select(CertificateRow).where(
            CertificateRow.requested_by == p.subject,
            CertificateRow.request_id == request_id)).first()

    def _issue_once(self, s: Session, p: auth.Principal, req: IssueRequest) -> CertificateRow:
        existing = self._existing(s, p, req.request_id)
        if existing is not None:
            return existing
        problems: dict[str, str] = {}
        if not req.request_id.strip():
            problems["request_id"] = "required: a retry with the same id returns the same certificate"
        elif len(req.request_id) > 200:
            problems["request_id"] = "longer than 200 characters"
        code = _type_code(req.type)
        type_row = s.get(CertificateTypeRow, code) if code else None
        if type_row is None:
            problems["certificate.type"] = "must name an existing certificate type"
            collect(problems)
        assert type_row is not None
        ctype = CertificateType.from_row(type_row)
        # Authority before content: a caller who may not issue this type learns nothing more.
        if not domain.may_issue(p, ctype.issuing_agency):
            raise PermissionDenied(f"only {ctype.issuing_agency} issues {req.type}",
                                   reason="NOT_THE_ISSUER",
                                   metadata={"issuing_agency": ctype.issuing_agency})
        bad_holder = domain.holder_problem(req.holder, ctype.holder_kind)
        if bad_holder:
            problems["certificate.holder"] = bad_holder
        problems.update(domain.field_problems(ctype.fields, req.fields))
        now = domain.whole_seconds(self.clock())
        valid_from = domain.whole_seconds(req.valid_from) if req.valid_from else now
        if req.valid_until is not None:
            valid_until: dt.datetime | None = domain.whole_seconds(req.valid_until)
            if valid_until is not None and valid_until <= valid_from:
                problems["certificate.valid_until"] = "must be after valid_from"
        elif ctype.default_validity_days:
            valid_until = valid_from + dt.timedelta(days=ctype.default_validity_days)
        else:
            valid_until = None
        if req.application and not req.application.startswith("applications/"):
            problems["application"] = "must be applications/{id}"
        collect(problems)

        issuer = type_row.issuing_agency
        index = self._next_slot(s, issuer)  # first: it takes the issuer's lock
        key = self._active_key(s, issuer)
        cert_id = new_id()
        fields = domain.normalise_fields(ctype.fields, req.fields)
        payload = domain.canonical(domain.build_payload(
            certificate_id=cert_id, type_code=ctype.code, holder=req.holder, issuer_code=issuer,
            fields=fields, valid_from=valid_from, valid_until=valid_until,
            status_list_index=index, kid=key.kid))
        private = serialization.load_pem_private_key(key.private_pem.encode(), password=None)
        assert isinstance(private, Ed25519PrivateKey)
        row = CertificateRow(
            id=cert_id, type_code=ctype.code, holder=req.holder, issuer=issuer,
            fields_json=json.dumps(fields, sort_keys=True), valid_from=valid_from,
            valid_until=valid_until, key_id=key.kid, signature=domain.sign(private, payload),
            signed_payload=payload.decode(), status_list_index=index, issue_time=now,
            requested_by=p.subject, request_id=req.request_id, application=req.application)
        s.add(row)
        s.flush()
        _audit(s, p, "certificate.issued", row, {
            "type": f"certificateTypes/{row.type_code}", "holder": row.holder,
            "issuer": f"agencies/{issuer}", "application": row.application,
            "request_id": row.request_id, "key_id": row.key_id,
            "status_list_index": row.status_list_index,
            "signed_payload_sha256": hashlib.sha256(payload).hexdigest()})
        return row

    @staticmethod
    def _next_slot(s: Session, agency: str) -> int:
        """Takes the next slot of the agency's status list. The UPDATE comes first so it
        takes the row lock: concurrent issues queue here instead of colliding later, and a
        rolled-back issue gives its slot back."""
        bumped = s.execute(sa.update(StatusListRow).where(
            col(StatusListRow.agency) == agency).values(
            next_index=col(StatusListRow.next_index) + 1))
        if bumped.rowcount == 0:  # type: ignore[attr-defined]
            # The agency's first certificate; a concurrent first insert fails on the
            # primary key and its caller retries.
            s.add(StatusListRow(agency=agency, next_index=1))
            s.flush()
            return 0
        return int(s.exec(select(StatusListRow.next_index).where(
            StatusListRow.agency == agency)).one()) - 1

    async def issue(self, p: auth.Principal, req: IssueRequest) -> CertificateRow:
        """Issues once per (caller, request id). A concurrent duplicate loses the insert race
        on the unique constraint; it then finds and returns the winner's certificate."""
        row = await self._with_retries(lambda s: self._issue_once(s, p, req))
        faults.crash_point("certificates.issue.after_commit")  # test-only; inert by default
        return row

    async def _with_retries(self, fn: Callable[[Any], T],
                            run: Callable[[Callable[[Any], T]], Awaitable[T]] | None = None) -> T:
        """``fn`` in a transaction (``run``: Database.run with a session by default, or
        Database.write with a connection), tried again on a lost race."""
        last: Exception | None = None
        for _ in range(MAX_ATTEMPTS):
            try:
                return await (run or self.db.run)(fn)
            except (sa.exc.IntegrityError, sa.exc.OperationalError) as exc:
                # IntegrityError: someone took our slot, key or request id first; the next
                # attempt sees their row. OperationalError: SQLite was locked past its timeout.
                last = exc
                logger.info("certificates.write_conflict", error=type(exc).__name__)
        assert last is not None
        raise last

    # ------------------------------------------------------------ reading
    def _get_row(self, s: Session, name: str) -> CertificateRow:
        cid = _cert_id(name)
        row = s.get(CertificateRow, cid) if cid else None
        if row is None:
            raise _not_found(name)
        return row

    def _log(self, s: Session | Connection, p: auth.Principal, row: CertificateRow | Any,
             action: str, purpose: str, application: str, consent: ConsentRow | Any) -> None:
        # Core statements (on the session's connection): a log row is never read back.
        (s if isinstance(s, Connection) else s.connection()).execute(_ACCESS_LOG_INSERT, {
            "certificate_id": row.id, "holder": row.holder, "accessor": p.subject,
            "action": action, "purpose": purpose, "application": application,
            "time": utcnow(), "request_id": log.request_id_var.get(),
            "consent_id": consent.id, "party": consent.party})
        _audit(s, p, "certificate.read", row, {
            "holder": row.holder, "read": action, "purpose": purpose,
            "application": application, "consent": f"consents/{consent.id}",
            "party": consent.party})

    @staticmethod
    def _check_reader(p: auth.Principal, application: str) -> None:
        """Input checks that depend only on the caller, made before any lookup so that
        their answer reveals nothing about which certificates exist."""
        if application:
            bad = domain.application_problem(application)
            if bad:
                raise InvalidArgument(fields={"application": bad})
        elif domain.may_pull(p) and p.kind == auth.SERVICE:
            raise InvalidArgument(fields={
                "application": "required: Govflow's worker reads for one application"})

    def _live_grants(self, s: Session, *, party: str, certificate_ids: list[str] | None = None,
                     holder: str | None = None) -> list[ConsentRow]:
        q = select(ConsentRow).where(ConsentRow.party == party,
                                     col(ConsentRow.revoke_time).is_(None),
                                     col(ConsentRow.expire_time) > self.clock())
        if certificate_ids is not None:
            q = q.where(col(ConsentRow.certificate_id).in_(certificate_ids))
        if holder is not None:
            q = q.where(ConsentRow.holder == holder)
        return list(s.exec(q.order_by(col(ConsentRow.create_time), col(ConsentRow.id))))

    @staticmethod
    def _matching(grants: list[ConsentRow], purpose: str, not_found: NotFound) -> list[ConsentRow]:
        """The grants for ``purpose``. No grant at all: NOT_FOUND (the object is not the
        caller's); grants for other purposes only: the caller knows the object exists, so it
        is told its purpose is wrong."""
        if not grants:
            raise not_found
        if not purpose.strip():
            raise InvalidArgument(fields={"purpose": "required when reading someone else's certificate"})
        matching = [g for g in grants if g.purpose == purpose]
        if not matching:
            raise PermissionDenied("no grant covers this purpose", reason="WRONG_PURPOSE",
                                   metadata={"purpose": purpose})
        return matching

    def _read(self, s: Session, p: auth.Principal, name: str, *, purpose: str,
              application: str, action: str) -> CertificateRow:
        """The certificate if the caller is its holder or reads it under a live grant for
        ``purpose``; every read under a grant is logged."""
        self._check_reader(p, application)
        row = self._get_row(s, name)
        if domain.is_holder(p, row.holder):
            return row
        party = domain.caller_party(p, application)
        if party is None:
            raise _not_found(name)
        grant = self._matching(self._live_grants(s, party=party, certificate_ids=[row.id]),
                               purpose, _not_found(name))[0]
        self._log(s, p, row, action, purpose, application, grant)
        return row

    def get(self, s: Session, p: auth.Principal, name: str, *, purpose: str,
            application: str) -> CertificateRow:
        """The holder reads their own; anyone else under a live grant, logged."""
        return self._read(s, p, name, purpose=purpose, application=application, action="get")

    def list_wallet(self, s: Session, p: auth.Principal, parent: str, *, offset: int, limit: int,
             type_code: str | None, status: str | None, purpose: str,
             application: str) -> list[CertificateRow]:
        """A holder's wallet, newest first; others see only what they hold grants on."""
        if not domain.is_holder_name(parent):
            raise InvalidArgument(fields={"parent": "must be persons/{id} or organisations/{id}"})
        self._check_reader(p, application)
        holder = domain.is_holder(p, parent)
        q = select(CertificateRow).where(CertificateRow.holder == parent)
        by_cert: dict[str, ConsentRow] = {}
        if not holder:
            party = domain.caller_party(p, application)
            not_found = NotFound(f"{parent} not found", reason="HOLDER_NOT_FOUND")
            if party is None:
                raise not_found
            for g in self._matching(self._live_grants(s, party=party, holder=parent),
                                    purpose, not_found):
                by_cert.setdefault(g.certificate_id, g)
            q = q.where(col(CertificateRow.id).in_(list(by_cert)))
        if type_code:
            q = q.where(CertificateRow.type_code == type_code)
        now = self.clock()
        if status == domain.EXPIRED:
            q = q.where(CertificateRow.status == domain.ACTIVE,
                        col(CertificateRow.valid_until).is_not(None),
                        col(CertificateRow.valid_until) <= now)
        elif status == domain.ACTIVE:
            q = q.where(CertificateRow.status == domain.ACTIVE,
                        sa.or_(col(CertificateRow.valid_until).is_(None),
                               col(CertificateRow.valid_until) > now))
        elif status:
            q = q.where(CertificateRow.status == status)
        q = q.order_by(col(CertificateRow.issue_time).desc(), col(CertificateRow.id))
        rows = list(s.exec(q.offset(offset).limit(limit)))
        if not holder:
            for row in rows:
                self._log(s, p, row, "list", purpose, application, by_cert[row.id])
        return rows

    def access_records(self, s: Session, p: auth.Principal, parent: str, *, offset: int,
                       limit: int, certificate: str | None) -> list[AccessLogRow]:
        """The usage log of a holder's certificates: theirs alone to read."""
        if not domain.is_holder_name(parent):
            raise InvalidArgument(fields={"parent": "must be persons/{id} or organisations/{id}"})
        if not domain.is_holder(p, parent):
            raise NotFound(f"{parent} not found", reason="HOLDER_NOT_FOUND")
        q = select(AccessLogRow).where(AccessLogRow.holder == parent)
        if certificate:
            q = q.where(AccessLogRow.certificate_id == _cert_id(certificate))
        q = q.order_by(col(AccessLogRow.time).desc(), col(AccessLogRow.id).desc())
        return list(s.exec(q.offset(offset).limit(limit)))

    # ------------------------------------------------------------ verifying
    async def verify_read(self, p: auth.Principal, name: str, *, purpose: str,
                          application: str) -> Verification:
        """VerifyCertificate: recomputes what was signed, checks signature, key, issuer,
        window and status. A holder verifying their own certificate is answered by short
        reads (``Database.read``); every other caller — a read under a grant, which must be
        logged, or a refusal — takes ``_verify_under_grant``.

        The holder's answer is made again only when something it depends on changed: one
        small query reads the certificate's version (a new one on every write to its row,
        by database triggers) and its key; while both and the clock's span (``_Verified``)
        are those of the verification made before, that one is the answer. The database
        decides, so a row changed by any path, on any replica, is verified again."""
        self._check_reader(p, application)
        cid = _cert_id(name)

        def read(conn: Connection) -> Verification | None:
            head = _CERTIFICATE_HEAD.first(conn, {"id": cid}) if cid else None
            if head is None:
                raise _not_found(name)
            if not domain.is_holder(p, head.holder):
                return None
            now = self.clock()
            seen = self._verified.get(cid)
            if (seen is not None and seen.version == head.version
                    and seen.key == (head.key_agency, head.key_public_jwk)
                    and seen.since <= now < seen.until):
                return seen.verification
            row = _CERTIFICATE_AND_KEY.first(conn, {"id": cid})
            if row is None:  # deleted since the first query
                raise _not_found(name)
            if not domain.is_holder(p, row.holder):
                return None

            done = Verification(row, self._check_core(conn, row, now))
            claims = domain.signed_claims(row.signed_payload.encode())
            if claims is not None and claims.kid == row.key_id and row.key_agency is not None:
                # Only the record's own, known key was consulted: the answer depends on
                # the row, that key and the clock alone.
                since, until = _time_span(now, (claims.valid_from, claims.valid_until,
                                                row.valid_until))
                self._verified.put(cid, _Verified(row.version, (row.key_agency,
                                                                row.key_public_jwk),
                                                  since, until, done))
            return done

        done = await self.db.read(read)
        if done is not None:
            return done
        return await self.db.write(lambda conn: self._verify_under_grant(
            conn, p, name, purpose=purpose, application=application))

    def _verify_under_grant(self, conn: Connection, p: auth.Principal, name: str, *,
                            purpose: str, application: str) -> Verification:
        """The verification for a caller who is not the holder, in Core statements (one
        transaction, Database.write): the certificate with its key, the caller's live
        grants on it, then the access-log row and audit entry of the read."""
        cid = _cert_id(name)
        row = _CERTIFICATE_AND_KEY.first(conn, {"id": cid}) if cid else None
        if row is None:
            raise _not_found(name)
        now = self.clock()
        if not domain.is_holder(p, row.holder):
            party = domain.caller_party(p, application)
            if party is None:
                raise _not_found(name)
            grants = _LIVE_GRANTS.all(conn, {"party": party, "certificate_id": row.id,
                                             "now": now})
            grant = self._matching(grants, purpose, _not_found(name))[0]
            self._log(conn, p, row, "verify", purpose, application, grant)
        return Verification(row, self._check_core(conn, row, now))

    def _check_core(self, conn: Connection, row: Any, now: dt.datetime) -> list[domain.Failure]:
        """``_check`` of a Core row of _CERTIFICATE_AND_KEY (the certificate with the key its
        record names)."""

        def key(kid: str) -> Any:
            if kid != row.key_id:  # a payload naming another key than the record's
                return _ISSUER_KEY.first(conn, {"kid": kid})
            if row.key_agency is None:
                return None
            return _IssuerKey(row.key_agency, row.key_public_jwk)

        return self._check(row, key, lambda: [r.agency for r in _KEY_AGENCIES.all(conn, {})],
                           now=now)

    def check(self, s: Session, row: CertificateRow) -> list[domain.Failure]:
        return self._check(row, lambda kid: s.get(IssuerKeyRow, kid),
                           lambda: s.exec(select(IssuerKeyRow.agency).distinct()).all())

    def _check(self, row: CertificateRow | Any, key_row: Callable[[str], Any],
               key_agencies: Callable[[], Sequence[str]], *,
               now: dt.datetime | None = None) -> list[domain.Failure]:
        """Every failure of ``row`` (an ORM object or a Core row of its columns) now.
        ``key_row(kid)`` finds an issuer key (``agency`` and ``public_jwk``) or None;
        ``key_agencies()`` lists the agencies with keys, the trusted issuers."""
        payload = row.signed_payload.encode()
        claims = domain.signed_claims(payload)
        # A payload that does not parse fails as BAD_SIGNATURE whatever its key.
        claimed_kid = claims.kid if claims is not None else None
        key = key_row(claimed_kid) if isinstance(claimed_kid, str) else None
        public = _public_key(key.public_jwk) if key is not None else None
        # The key's own agency has a key, so it is trusted: the list of trusted issuers
        # can change the answer only when the key is unknown.
        trusted = None if key is not None else frozenset(
            f"agencies/{a}" for a in key_agencies())
        expected = _expected_payload(row.id, row.type_code, row.holder, row.issuer,
                                     row.fields_json, row.valid_from, row.valid_until,
                                     row.status_list_index, row.key_id)
        return domain.verify(
            payload, row.signature, public, status=row.status,
            now=self.clock() if now is None else now,
            key_issuer=f"agencies/{key.agency}" if key is not None else None,
            trusted_issuers=trusted, expected_payload=expected,
            check_signature=None if key is None else
            lambda _public, signed, signature: _signature_ok(key.public_jwk, signed, signature))

    # ------------------------------------------------------------ status changes
    def change_status(self, s: Session, p: auth.Principal, name: str, target: str,
                      reason: str) -> CertificateRow:
        """Suspend, reinstate or revoke, by the certificate's issuer only."""
        row = self._get_row(s, name)
        if not domain.may_issue(p, f"agencies/{row.issuer}"):
            if domain.is_holder(p, row.holder) or domain.may_pull(p):
                raise PermissionDenied("only the issuer changes a certificate's status",
                                       reason="NOT_THE_ISSUER")
            raise _not_found(name)
        if not reason.strip():
            raise InvalidArgument(fields={"reason": "required"})
        if len(reason) > 1000:
            raise InvalidArgument(fields={"reason": "longer than 1000 characters"})
        if row.status == target:
            # Repeating the same change (a retried call) is harmless.
            return row
        if not domain.transition_allowed(row.status, target):
            raise FailedPrecondition(
                f"a {row.status} certificate cannot become {target}",
                reason="CERTIFICATE_REVOKED" if row.status == domain.REVOKED
                else "STATUS_CHANGE_NOT_ALLOWED",
                metadata={"status": row.status, "target": target})
        previous = row.status
        row.status = target
        row.status_reason = reason.strip()
        s.add(row)
        s.flush()
        _audit(s, p, _STATUS_ACTIONS.get(target, f"certificate.{target}"), row,
               {"from": previous, "to": target, "reason": row.status_reason})
        return row

    # ------------------------------------------------------------ consent
    def _grant_once(self, conn: Connection, p: auth.Principal, req: GrantRequest) -> ConsentRow:
        """One attempt at ``grant``, in Core statements (Database.write)."""
        now = domain.whole_seconds(self.clock())
        worker = domain.may_pull(p) and p.kind == auth.SERVICE
        problems: dict[str, str] = {}
        by_type = not req.certificate
        if by_type:
            if not req.holder or not req.certificate_type:
                problems["certificate"] = "required, or holder and certificate_type"
            elif not domain.is_holder_name(req.holder):
                problems["holder"] = "must be persons/{id} or organisations/{id}"
            elif not _type_code(req.certificate_type):
                problems["certificate_type"] = "must be certificateTypes/{code}"
        elif not _cert_id(req.certificate):
            problems["certificate"] = "must be certificates/{id}"
        bad = domain.party_problem(req.party)
        if bad:
            problems["party"] = bad
        bad = domain.purpose_problem(req.purpose)
        if bad:
            problems["purpose"] = bad
        expire = (domain.whole_seconds(req.expire_time) if req.expire_time
                  else now + dt.timedelta(days=domain.DEFAULT_CONSENT_DAYS))
        bad = domain.expire_problem(expire, now)
        if bad:
            problems["expire_time"] = bad
        collect(problems)
        if worker and not req.party.startswith("applications/"):
            raise PermissionDenied("Govflow's worker grants to one application only",
                                   reason="WORKER_GRANTS_TO_APPLICATIONS_ONLY")

        if by_type:
            if not (worker or domain.is_holder(p, req.holder)):
                raise NotFound(f"{req.holder} not found", reason="HOLDER_NOT_FOUND")
            row = _NEWEST_ACTIVE.first(conn, {"holder": req.holder, "active": domain.ACTIVE,
                                              "type_code": _type_code(req.certificate_type),
                                              "now": now})
            if row is None:
                # Holder and worker may learn which certificate there is and why it does
                # not serve (the holder's own; the worker acts on the holder's submission).
                newest = _NEWEST_ANY.first(conn, {"holder": req.holder,
                                                  "type_code": _type_code(req.certificate_type)})
                if newest is not None:
                    state = domain.effective_status(newest.status, newest.valid_until, now)
                    raise NotFound(f"{req.holder} holds no active {req.certificate_type}: "
                                   f"certificates/{newest.id} is {state}",
                                   reason="CERTIFICATE_NOT_ACTIVE",
                                   metadata={"certificate": f"certificates/{newest.id}",
                                             "state": state.upper()})
                raise NotFound(f"{req.holder} holds no active {req.certificate_type}",
                               reason="CERTIFICATE_NOT_FOUND")
        else:
            cid = _cert_id(req.certificate)
            row = _CERTIFICATE_HOLDER.first(conn, {"id": cid})
            if row is None or not (worker or domain.is_holder(p, row.holder)):
                raise _not_found(req.certificate)

        key = domain.consent_live_key(row.id, req.party, req.purpose)
        existing = _LIVE_KEY.first(conn, {"live_key": key})
        if existing is not None:
            if domain.consent_state(existing.revoke_time, existing.expire_time,
                                    now) == domain.CONSENT_ACTIVE:
                return ConsentRow(**existing._asdict())
            # Expired: it no longer stands in the way of a new one.
            conn.execute(_CLEAR_LIVE_KEY, {"consent_id": existing.id})
        grant = ConsentRow(id=new_id(), certificate_id=row.id, holder=row.holder,
                           party=req.party, purpose=req.purpose, expire_time=expire,
                           granted_by=p.subject, create_time=now, live_key=key)
        conn.execute(_CONSENT_INSERT, grant.model_dump())
        return grant

    async def grant(self, p: auth.Principal, req: GrantRequest) -> ConsentRow:
        """Grants once per live (certificate, party, purpose): a concurrent duplicate loses
        the insert on the live key and, on retry, returns the winner's grant."""
        return await self._with_retries(lambda conn: self._grant_once(conn, p, req),
                                        run=self.db.write)

    def revoke_consent(self, s: Session, p: auth.Principal, name: str) -> ConsentRow:
        """The holder ends a grant at once; repeating it is harmless."""
        cid = name.removeprefix("consents/") if name.startswith("consents/") else ""
        row = s.get(ConsentRow, cid) if cid else None
        if row is None or not domain.is_holder(p, row.holder):
            raise NotFound(f"{name or 'consent'} not found", reason="CONSENT_NOT_FOUND")
        if row.revoke_time is None:
            row.revoke_time = self.clock()
            row.live_key = None
            s.add(row)
            s.flush()
        return row

    def list_consents(self, s: Session, p: auth.Principal, parent: str, *, offset: int,
                      limit: int, certificate: str | None, party: str | None,
                      state: str | None) -> list[ConsentRow]:
        """The holder's grants, newest first: theirs alone to read."""
        if not domain.is_holder_name(parent):
            raise InvalidArgument(fields={"parent": "must be persons/{id} or organisations/{id}"})
        if not domain.is_holder(p, parent):
            raise NotFound(f"{parent} not found", reason="HOLDER_NOT_FOUND")
        q = select(ConsentRow).where(ConsentRow.holder == parent)
        if certificate:
            q = q.where(ConsentRow.certificate_id == _cert_id(certificate))
        if party:
            q = q.where(ConsentRow.party == party)
        now = self.clock()
        if state == domain.CONSENT_REVOKED:
            q = q.where(col(ConsentRow.revoke_time).is_not(None))
        elif state == domain.CONSENT_ACTIVE:
            q = q.where(col(ConsentRow.revoke_time).is_(None), col(ConsentRow.expire_time) > now)
        elif state == domain.CONSENT_EXPIRED:
            q = q.where(col(ConsentRow.revoke_time).is_(None), col(ConsentRow.expire_time) <= now)
        q = q.order_by(col(ConsentRow.create_time).desc(), col(ConsentRow.id).desc())
        return list(s.exec(q.offset(offset).limit(limit)))

    def release_application(self, conn: Connection, p: auth.Principal, application: str) -> int:
        """Ends every grant made to ``application``: its grants end when it ends."""
        if not (domain.may_pull(p) and p.kind == auth.SERVICE):
            raise PermissionDenied("only Govflow's worker releases application grants",
                                   reason="WORKER_ONLY")
        bad = domain.application_problem(application)
        if bad:
            raise InvalidArgument(fields={"application": bad})
        # One Core statement (Database.write): no ORM object of these rows is loaded, so
        # a session's bulk-update bookkeeping would have nothing to do but cost.
        result = conn.execute(_RELEASE, {"application": application, "now": self.clock()})
        return int(result.rowcount)

    # ------------------------------------------------------------ status lists
    def status_list(self, s: Session, issuer: str) -> SignedStatusList:
        """The issuer's revocation and suspension lists, freshly computed and signed."""
        code = domain.agency_code(issuer)
        if not code:
            raise InvalidArgument(fields={"issuer": "must be agencies/{code}"})
        slots = s.get(StatusListRow, code)
        has_key = s.exec(select(IssuerKeyRow.kid).where(IssuerKeyRow.agency == code)).first()
        if slots is None and has_key is None:
            raise NotFound(f"{issuer} has issued nothing", reason="ISSUER_NOT_FOUND")
        marked = s.exec(select(CertificateRow.status_list_index, CertificateRow.status).where(
            CertificateRow.issuer == code,
            col(CertificateRow.status).in_([domain.REVOKED, domain.SUSPENDED]))).all()
        key = self._active_key(s, code)
        payload = domain.canonical(offline.status_list_payload(
            issuer=f"agencies/{code}",
            revoked=[i for i, st in marked if st == domain.REVOKED],
            suspended=[i for i, st in marked if st == domain.SUSPENDED],
            slots_used=slots.next_index if slots else 0, issued=self.clock(), kid=key.kid))
        return SignedStatusList(payload.decode(), domain.sign(_private(key), payload), key.kid)

    # ------------------------------------------------------------ compact form
    def compact(self, s: Session, p: auth.Principal, name: str, *, purpose: str,
                application: str, include_qr: bool) -> tuple[str, bytes]:
        """A QR-sized JWS of the certificate, signed by the key that signed the certificate
        (deterministic, so every call gives the same token), and optionally its QR PNG."""
        row = self._read(s, p, name, purpose=purpose, application=application,
                         action="compact")
        # Never put the issuer's signature on a record that no longer matches what it signed.
        broken = {domain.Failure.PAYLOAD_MISMATCH, domain.Failure.BAD_SIGNATURE,
                  domain.Failure.UNKNOWN_KEY, domain.Failure.UNKNOWN_ISSUER}
        failures = broken & set(self.check(s, row))
        if failures:
            raise FailedPrecondition("the certificate's record does not match its signature",
                                     reason="CERTIFICATE_INTEGRITY",
                                     metadata={"failures": ",".join(sorted(failures))})
        key = s.get(IssuerKeyRow, row.key_id)
        assert key is not None
        token = offline.make_compact(_private(key), key.kid,
                                     offline.compact_claims(json.loads(row.signed_payload)))
        png = b""
        if include_qr:
            out = io.BytesIO()
            segno.make(token, error="m", micro=False).save(out, kind="png", scale=4, border=4)
            png = out.getvalue()
        return token, png

    # ------------------------------------------------------------ key rotation
    def _rotate_once(self, s: Session, p: auth.Principal, agency: str) -> IssuerKeyRow:
        code = domain.agency_code(agency)
        if not code:
            raise InvalidArgument(fields={"agency": "must be agencies/{code}"})
        if not domain.may_rotate_key(p, agency):
            raise PermissionDenied("only administrators or the agency's admins rotate its key",
                                   reason="ADMIN_ONLY")
        issues = s.exec(select(CertificateTypeRow.code).where(
            CertificateTypeRow.issuing_agency == code)).first()
        keyed = s.exec(select(IssuerKeyRow.kid).where(IssuerKeyRow.agency == code)).first()
        if issues is None and keyed is None:
            raise NotFound(f"{agency} issues no certificate type", reason="ISSUER_NOT_FOUND")
        return self.rotate_key(s, code)

    async def rotate(self, p: auth.Principal, agency: str) -> IssuerKeyRow:
        """A new active key; two concurrent rotations collide on the key id and retry."""
        return await self._with_retries(lambda s: self._rotate_once(s, p, agency))


def _audit(s: Session | Connection, p: auth.Principal, action: str, row: CertificateRow | Any,
           details: dict[str, object]) -> None:
    """Appends to the audit chain in the caller's transaction (see govflow/audit.py)."""
    audit.append(s, AuditEntryRow, AuditHeadRow, chain=AUDIT_CHAIN, action=action,
                 actor=p.subject, subject=f"certificates/{row.id}", details=details,
                 request_id=log.request_id_var.get())


def _private(key: IssuerKeyRow) -> Ed25519PrivateKey:
    private = serialization.load_pem_private_key(key.private_pem.encode(), password=None)
    assert isinstance(private, Ed25519PrivateKey)
    return private
