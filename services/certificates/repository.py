"""Certificates' repository: the only code that reads or writes this service's tables.

Typed functions per aggregate — certificate types, certificates, consents and the access
log, issuer keys and status lists, the audit chain — that take a transaction (a sqlmodel
``Session`` from ``Database.run``, or a ``Connection`` from ``Database.read``/``write``)
and plain values, and return the records of ``domain`` (never rows). How each one reaches
the database is its own business: the lookups on the hot paths (verification, grants) are
``govflow.db.Prepared`` Core statements compiled once, because SQLAlchemy's per-execution
bookkeeping costs several times the database's own work on a lookup by key
(docs/performance.md); the rest use the ORM.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlmodel import Session, col, select

from govflow import audit, log
from govflow.db import Prepared
from services.certificates import domain
from services.certificates.domain import (
    AccessRecord,
    Certificate,
    CertificateHead,
    CertificateType,
    Consent,
    IssuerKey,
    SigningKey,
)
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

# The certificates service's audit chain (govflow/audit.py): issues, status changes, and
# every read by someone other than the holder.
AUDIT_CHAIN = "certificates"

T = TypeVar("T")
logger = log.get_logger("govflow.certificates")

_CERTIFICATES: sa.Table = CertificateRow.__table__  # type: ignore[attr-defined]
_KEYS: sa.Table = IssuerKeyRow.__table__  # type: ignore[attr-defined]
_CONSENTS: sa.Table = ConsentRow.__table__  # type: ignore[attr-defined]
_ACCESS_LOG: sa.Table = AccessLogRow.__table__  # type: ignore[attr-defined]

# Each record's columns in its fields' order, so a row of them is the record's arguments.
_CERTIFICATE_COLUMNS = tuple(_CERTIFICATES.c[f.name] for f in dataclasses.fields(Certificate))
_CONSENT_COLUMNS = tuple(_CONSENTS.c[f.name] for f in dataclasses.fields(Consent))
_ACCESS_COLUMNS = tuple(_ACCESS_LOG.c[f.name] for f in dataclasses.fields(AccessRecord))
_N_CERTIFICATE = len(_CERTIFICATE_COLUMNS)

# A certificate with the issuer key its record names, in one query.
_WITH_KEY = _CERTIFICATES.outerjoin(_KEYS, _KEYS.c.kid == _CERTIFICATES.c.key_id)
_KEY_COLUMNS = (_KEYS.c.agency.label("key_agency"), _KEYS.c.public_jwk.label("key_public_jwk"))
_CERTIFICATE_AND_KEY = Prepared(sa.select(*_CERTIFICATE_COLUMNS, *_KEY_COLUMNS).select_from(
    _WITH_KEY).where(_CERTIFICATES.c.id == sa.bindparam("id")))
_CERTIFICATE_HEAD = Prepared(sa.select(
    _CERTIFICATES.c.holder, _CERTIFICATES.c.version, *_KEY_COLUMNS).select_from(
    _WITH_KEY).where(_CERTIFICATES.c.id == sa.bindparam("id")))
_CERTIFICATE_HOLDER = Prepared(sa.select(_CERTIFICATES.c.holder).where(
    _CERTIFICATES.c.id == sa.bindparam("id")))
# The holder's newest active certificate of a type (issue times are whole seconds; within
# one, the later slot is the newer).
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

_ISSUER_KEY = Prepared(sa.select(_KEYS.c.agency, _KEYS.c.public_jwk).where(
    _KEYS.c.kid == sa.bindparam("kid")))
_KEY_AGENCIES = Prepared(sa.select(_KEYS.c.agency).distinct())

# A party's live grants on one certificate, oldest first.
_LIVE_GRANTS = Prepared(sa.select(*_CONSENT_COLUMNS).where(
    _CONSENTS.c.party == sa.bindparam("party"),
    _CONSENTS.c.certificate_id == sa.bindparam("certificate_id"),
    _CONSENTS.c.revoke_time.is_(None), _CONSENTS.c.expire_time > sa.bindparam("now")).order_by(
    _CONSENTS.c.create_time, _CONSENTS.c.id))
_LIVE_KEY = Prepared(sa.select(*_CONSENT_COLUMNS).where(
    _CONSENTS.c.live_key == sa.bindparam("live_key")))
_CLEAR_LIVE_KEY = sa.update(_CONSENTS).where(_CONSENTS.c.id == sa.bindparam("consent_id")).values(
    live_key=None)
_CONSENT_INSERT = sa.insert(_CONSENTS)
_RELEASE = sa.update(_CONSENTS).where(
    _CONSENTS.c.party == sa.bindparam("application"), _CONSENTS.c.revoke_time.is_(None)).values(
    revoke_time=sa.bindparam("now"), live_key=None)
_ACCESS_LOG_INSERT = sa.insert(_ACCESS_LOG)


def _conn(tx: Session | Connection) -> Connection:
    return tx if isinstance(tx, Connection) else tx.connection()


def _certificate(row: Any) -> Certificate:
    return Certificate(*row[:_N_CERTIFICATE])


def _consent(row: Any) -> Consent:
    return Consent(*row)


# ---------------------------------------------------------------- certificate types


def _type(row: CertificateTypeRow) -> CertificateType:
    return CertificateType(
        code=row.code, display_name=row.display_name,
        issuing_agency=f"agencies/{row.issuing_agency}", holder_kind=row.holder_kind,
        fields=tuple(domain.FieldSpec(**f) for f in json.loads(row.fields_json)),
        default_validity_days=row.default_validity_days)


def get_type(s: Session, code: str) -> CertificateType | None:
    row = s.get(CertificateTypeRow, code) if code else None
    return _type(row) if row is not None else None


def save_type(s: Session, t: CertificateType) -> CertificateType:
    """Creates the type or replaces its definition."""
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
    return _type(row)


def list_types(s: Session, *, offset: int, limit: int, issuing_agency: str | None,
               holder_kind: str | None) -> list[CertificateType]:
    q = select(CertificateTypeRow).order_by(CertificateTypeRow.code)
    if issuing_agency:
        q = q.where(CertificateTypeRow.issuing_agency == issuing_agency.removeprefix("agencies/"))
    if holder_kind:
        q = q.where(CertificateTypeRow.holder_kind == holder_kind)
    return [_type(r) for r in s.exec(q.offset(offset).limit(limit))]


def agency_defines_types(s: Session, agency: str) -> bool:
    """Whether some certificate type names the agency (by code) as its issuer."""
    return s.exec(select(CertificateTypeRow.code).where(
        CertificateTypeRow.issuing_agency == agency)).first() is not None


# ---------------------------------------------------------------- certificates


def get_certificate(tx: Session | Connection, certificate_id: str) -> Certificate | None:
    if not certificate_id:
        return None
    row = _CERTIFICATE_AND_KEY.first(_conn(tx), {"id": certificate_id})
    return _certificate(row) if row is not None else None


def find_by_request(s: Session, requested_by: str, request_id: str) -> Certificate | None:
    """The certificate a caller issued under ``request_id`` (idempotency)."""
    row = s.execute(sa.select(*_CERTIFICATE_COLUMNS).where(
        _CERTIFICATES.c.requested_by == requested_by,
        _CERTIFICATES.c.request_id == request_id)).first()
    return _certificate(row) if row is not None else None


def take_slot(s: Session, agency: str) -> int:
    """Takes the next slot of the agency's status list. The UPDATE comes first so it takes
    the row lock: concurrent issues queue here instead of colliding later, and a
    rolled-back issue gives its slot back."""
    bumped = s.execute(sa.update(StatusListRow).where(
        col(StatusListRow.agency) == agency).values(
        next_index=col(StatusListRow.next_index) + 1))
    if bumped.rowcount == 0:  # type: ignore[attr-defined]
        # The agency's first certificate; a concurrent first insert fails on the primary
        # key and its caller retries.
        s.add(StatusListRow(agency=agency, next_index=1))
        s.flush()
        return 0
    return int(s.exec(select(StatusListRow.next_index).where(
        StatusListRow.agency == agency)).one()) - 1


def add_certificate(s: Session, c: Certificate) -> Certificate:
    """Inserts ``c``; a taken (caller, request id) or status slot raises IntegrityError."""
    values = dataclasses.asdict(c)
    del values["version"]  # the database's (trigger)
    s.add(CertificateRow(**values))
    s.flush()
    return c


def set_status(s: Session, certificate_id: str, status: str, reason: str) -> Certificate:
    s.execute(sa.update(_CERTIFICATES).where(_CERTIFICATES.c.id == certificate_id).values(
        status=status, status_reason=reason))
    after = get_certificate(s, certificate_id)
    assert after is not None
    return after


def list_wallet(s: Session, holder: str, *, certificate_ids: list[str] | None,
                type_code: str | None, status: str | None, now: dt.datetime, offset: int,
                limit: int) -> list[Certificate]:
    """A holder's certificates (only ``certificate_ids`` if given), newest first; ``status``
    is the effective one (expired: active but past its end)."""
    q = sa.select(*_CERTIFICATE_COLUMNS).where(_CERTIFICATES.c.holder == holder)
    if certificate_ids is not None:
        q = q.where(_CERTIFICATES.c.id.in_(certificate_ids))
    if type_code:
        q = q.where(_CERTIFICATES.c.type_code == type_code)
    if status == domain.EXPIRED:
        q = q.where(_CERTIFICATES.c.status == domain.ACTIVE,
                    _CERTIFICATES.c.valid_until.is_not(None),
                    _CERTIFICATES.c.valid_until <= now)
    elif status == domain.ACTIVE:
        q = q.where(_CERTIFICATES.c.status == domain.ACTIVE,
                    sa.or_(_CERTIFICATES.c.valid_until.is_(None),
                           _CERTIFICATES.c.valid_until > now))
    elif status:
        q = q.where(_CERTIFICATES.c.status == status)
    q = q.order_by(_CERTIFICATES.c.issue_time.desc(), _CERTIFICATES.c.id)
    return [_certificate(r) for r in s.execute(q.offset(offset).limit(limit))]


def certificate_with_key(conn: Connection,
                         certificate_id: str) -> tuple[Certificate, IssuerKey | None] | None:
    """The certificate with the issuer key its record names (None: unknown), one query."""
    row = _CERTIFICATE_AND_KEY.first(conn, {"id": certificate_id}) if certificate_id else None
    if row is None:
        return None
    key = IssuerKey(row.key_agency, row.key_public_jwk) if row.key_agency is not None else None
    return _certificate(row), key


def certificate_head(conn: Connection, certificate_id: str) -> CertificateHead | None:
    """The certificate's holder, version and key (see CertificateHead), one small query."""
    row = _CERTIFICATE_HEAD.first(conn, {"id": certificate_id}) if certificate_id else None
    if row is None:
        return None
    return CertificateHead(row.holder, row.version, row.key_agency, row.key_public_jwk)


def certificate_holder(conn: Connection, certificate_id: str) -> str | None:
    row = _CERTIFICATE_HOLDER.first(conn, {"id": certificate_id}) if certificate_id else None
    return row.holder if row is not None else None


def newest_active(conn: Connection, holder: str, type_code: str,
                  now: dt.datetime) -> str | None:
    """The id of the holder's newest active certificate of a type."""
    row = _NEWEST_ACTIVE.first(conn, {"holder": holder, "active": domain.ACTIVE,
                                      "type_code": type_code, "now": now})
    return row.id if row is not None else None


def newest_of_type(conn: Connection, holder: str,
                   type_code: str) -> tuple[str, str, dt.datetime | None] | None:
    """The id, stored status and end of the holder's newest certificate of a type."""
    row = _NEWEST_ANY.first(conn, {"holder": holder, "type_code": type_code})
    return (row.id, row.status, row.valid_until) if row is not None else None


def status_marks(s: Session, agency: str) -> list[tuple[int, str]]:
    """(slot, status) of the agency's suspended and revoked certificates."""
    return [(int(i), str(st)) for i, st in s.exec(
        select(CertificateRow.status_list_index, CertificateRow.status).where(
            CertificateRow.issuer == agency,
            col(CertificateRow.status).in_([domain.REVOKED, domain.SUSPENDED]))).all()]


def slots_used(s: Session, agency: str) -> int | None:
    """How many slots the agency's status list has handed out; None: it has none."""
    row = s.get(StatusListRow, agency)
    return row.next_index if row is not None else None


# ---------------------------------------------------------------- consents and access log


def live_grants(conn: Connection, *, party: str, certificate_id: str,
                now: dt.datetime) -> list[Consent]:
    """The party's live grants on one certificate, oldest first."""
    return [_consent(r) for r in _LIVE_GRANTS.all(
        conn, {"party": party, "certificate_id": certificate_id, "now": now})]


def live_grants_of_holder(s: Session, *, party: str, holder: str,
                          now: dt.datetime) -> list[Consent]:
    """The party's live grants on any of the holder's certificates, oldest first."""
    return [_consent(r) for r in s.execute(sa.select(*_CONSENT_COLUMNS).where(
        _CONSENTS.c.party == party, _CONSENTS.c.holder == holder,
        _CONSENTS.c.revoke_time.is_(None), _CONSENTS.c.expire_time > now).order_by(
        _CONSENTS.c.create_time, _CONSENTS.c.id))]


def grant_by_live_key(conn: Connection, live_key: str) -> Consent | None:
    """The grant holding a (certificate, party, purpose) triple (domain.consent_live_key)."""
    row = _LIVE_KEY.first(conn, {"live_key": live_key})
    return _consent(row) if row is not None else None


def release_live_key(conn: Connection, consent_id: str) -> None:
    """An expired grant no longer stands in the way of a new one for its triple."""
    conn.execute(_CLEAR_LIVE_KEY, {"consent_id": consent_id})


def add_grant(conn: Connection, c: Consent) -> Consent:
    """Inserts ``c`` holding its live key; a live identical grant raises IntegrityError."""
    conn.execute(_CONSENT_INSERT, {
        **dataclasses.asdict(c),
        "live_key": domain.consent_live_key(c.certificate_id, c.party, c.purpose)})
    return c


def get_consent(s: Session, consent_id: str) -> Consent | None:
    row = s.get(ConsentRow, consent_id) if consent_id else None
    return _consent(tuple(getattr(row, c.name) for c in _CONSENT_COLUMNS)) if row else None


def revoke_consent(s: Session, consent_id: str, now: dt.datetime) -> Consent:
    """Ends the grant at ``now`` unless it already ended; returns it as it stands."""
    row = s.get(ConsentRow, consent_id)
    assert row is not None
    if row.revoke_time is None:
        row.revoke_time = now
        row.live_key = None
        s.add(row)
        s.flush()
    return _consent(tuple(getattr(row, c.name) for c in _CONSENT_COLUMNS))


def list_consents(s: Session, holder: str, *, certificate_id: str | None, party: str | None,
                  state: str | None, now: dt.datetime, offset: int,
                  limit: int) -> list[Consent]:
    """The holder's grants, newest first."""
    q = sa.select(*_CONSENT_COLUMNS).where(_CONSENTS.c.holder == holder)
    if certificate_id is not None:
        q = q.where(_CONSENTS.c.certificate_id == certificate_id)
    if party:
        q = q.where(_CONSENTS.c.party == party)
    if state == domain.CONSENT_REVOKED:
        q = q.where(_CONSENTS.c.revoke_time.is_not(None))
    elif state == domain.CONSENT_ACTIVE:
        q = q.where(_CONSENTS.c.revoke_time.is_(None), _CONSENTS.c.expire_time > now)
    elif state == domain.CONSENT_EXPIRED:
        q = q.where(_CONSENTS.c.revoke_time.is_(None), _CONSENTS.c.expire_time <= now)
    q = q.order_by(_CONSENTS.c.create_time.desc(), _CONSENTS.c.id.desc())
    return [_consent(r) for r in s.execute(q.offset(offset).limit(limit))]


def release_application(conn: Connection, application: str, now: dt.datetime) -> int:
    """Ends every live grant made to ``application``; returns how many. One Core statement:
    no ORM object of these rows is loaded, so a session's bulk-update bookkeeping would
    have nothing to do but cost."""
    return int(conn.execute(_RELEASE, {"application": application, "now": now}).rowcount)


def log_access(tx: Session | Connection, *, certificate: Certificate, accessor: str,
               action: str, purpose: str, application: str, grant: Consent) -> None:
    """One access-log row (a Core insert: it is never read back in the transaction)."""
    _conn(tx).execute(_ACCESS_LOG_INSERT, {
        "certificate_id": certificate.id, "holder": certificate.holder, "accessor": accessor,
        "action": action, "purpose": purpose, "application": application, "time": utcnow(),
        "request_id": log.request_id_var.get(), "consent_id": grant.id, "party": grant.party})


def list_access(s: Session, holder: str, *, certificate_id: str | None, offset: int,
                limit: int) -> list[AccessRecord]:
    """The access log of a holder's certificates, newest first."""
    q = sa.select(*_ACCESS_COLUMNS).where(_ACCESS_LOG.c.holder == holder)
    if certificate_id is not None:
        q = q.where(_ACCESS_LOG.c.certificate_id == certificate_id)
    q = q.order_by(_ACCESS_LOG.c.time.desc(), _ACCESS_LOG.c.id.desc())
    return [AccessRecord(*r) for r in s.execute(q.offset(offset).limit(limit))]


# ---------------------------------------------------------------- issuer keys


def _signing(row: IssuerKeyRow) -> SigningKey:
    return SigningKey(row.kid, row.agency, row.private_pem, row.public_jwk)


def active_key(s: Session, agency: str) -> SigningKey | None:
    """The agency's active signing key (the newest generation), if it has one."""
    row = s.exec(select(IssuerKeyRow).where(
        IssuerKeyRow.agency == agency, col(IssuerKeyRow.active)).order_by(
        col(IssuerKeyRow.generation).desc())).first()
    return _signing(row) if row is not None else None


def signing_key(s: Session, kid: str) -> SigningKey | None:
    row = s.get(IssuerKeyRow, kid)
    return _signing(row) if row is not None else None


def add_active_key(s: Session, agency: str, make: Callable[[int], SigningKey]) -> SigningKey:
    """Deactivates the agency's keys and inserts ``make(generation)`` (a SigningKey) as the
    next generation. Two concurrent callers collide on the key id (IntegrityError)."""
    last = s.exec(select(sa.func.max(IssuerKeyRow.generation)).where(
        IssuerKeyRow.agency == agency)).one()
    for old in s.exec(select(IssuerKeyRow).where(IssuerKeyRow.agency == agency,
                                                 col(IssuerKeyRow.active))).all():
        old.active = False
        s.add(old)
    generation = (last or 0) + 1
    key = make(generation)
    s.add(IssuerKeyRow(kid=key.kid, agency=agency, generation=generation,
                       private_pem=key.private_pem, public_jwk=key.public_jwk))
    s.flush()
    return key


def agency_has_key(s: Session, agency: str) -> bool:
    return s.exec(select(IssuerKeyRow.kid).where(IssuerKeyRow.agency == agency)).first() is not None


def public_jwks(s: Session) -> list[str]:
    """Every issuer key's public JWK, by agency and generation."""
    return list(s.exec(select(IssuerKeyRow.public_jwk).order_by(
        col(IssuerKeyRow.agency), col(IssuerKeyRow.generation))).all())


def issuer_key(tx: Session | Connection, kid: str) -> IssuerKey | None:
    row = _ISSUER_KEY.first(_conn(tx), {"kid": kid})
    return IssuerKey(row.agency, row.public_jwk) if row is not None else None


def key_agencies(tx: Session | Connection) -> list[str]:
    """The agencies with a key: the issuers a verification trusts."""
    return [r.agency for r in _KEY_AGENCIES.all(_conn(tx), {})]


# ---------------------------------------------------------------- audit chain


def audit_append(tx: Session | Connection, *, actor: str, action: str, certificate_id: str,
                 details: dict[str, object]) -> None:
    """Appends to the audit chain in the caller's transaction (see govflow/audit.py)."""
    audit.append(tx, AuditEntryRow, AuditHeadRow, chain=AUDIT_CHAIN, action=action,
                 actor=actor, subject=f"certificates/{certificate_id}", details=details,
                 request_id=log.request_id_var.get())


# ---------------------------------------------------------------- retried writes

# Conflicting inserts (a concurrent retry, a status-list slot or a first key taken by
# another transaction) are retried this many times before giving up.
MAX_ATTEMPTS = 8


async def with_retries(run: Callable[[Callable[[Any], T]], Awaitable[T]],
                       fn: Callable[[Any], T]) -> T:
    """``fn`` in a transaction of ``run`` (``Database.run`` with a session, or
    ``Database.write`` with a connection), tried again on a lost race."""
    last: Exception | None = None
    for _ in range(MAX_ATTEMPTS):
        try:
            return await run(fn)
        except (sa.exc.IntegrityError, sa.exc.OperationalError) as exc:
            # IntegrityError: someone took our slot, key or request id first; the next
            # attempt sees their row. OperationalError: SQLite was locked past its timeout.
            last = exc
            logger.info("certificates.write_conflict", error=type(exc).__name__)
    assert last is not None
    raise last
