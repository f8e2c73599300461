"""Consents (table ``consents``) and the access log (table ``access_log``): a holder's
grants and every read made under one."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlmodel import Session

from govflow import log
from govflow.db import Prepared
from services.certificates import domain
from services.certificates.domain import AccessRecord, Certificate, Consent
from services.certificates.store.tables import AccessLogRow, ConsentRow, utcnow
from services.certificates.store.transactions import connection

_CONSENTS: sa.Table = ConsentRow.__table__  # type: ignore[attr-defined]  # sqlmodel sets __table__ at class creation
# mypy, next line: sqlmodel sets __table__ at class creation
_ACCESS_LOG: sa.Table = AccessLogRow.__table__  # type: ignore[attr-defined]
_CONSENT_COLUMNS = tuple(_CONSENTS.c[f.name] for f in dataclasses.fields(Consent))
_ACCESS_COLUMNS = tuple(_ACCESS_LOG.c[f.name] for f in dataclasses.fields(AccessRecord))
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


def _consent(row: Any) -> Consent:
    return Consent(*row)


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
    connection(tx).execute(_ACCESS_LOG_INSERT, {
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
