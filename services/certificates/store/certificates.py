"""Certificates (table ``certificates``), alone or with the issuer key their record names.

The lookups by id that VerifyCertificate and GrantConsent make on every call are
``Prepared`` Core statements (see govflow/db.py): on a lookup by key, SQLAlchemy's
per-execution bookkeeping costs several times the database's own work.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlmodel import Session

from govflow.db import Prepared
from services.certificates import domain
from services.certificates.domain import Certificate, CertificateHead, IssuerKey
from services.certificates.store.tables import CertificateRow, IssuerKeyRow
from services.certificates.store.transactions import connection

# mypy, next line: sqlmodel sets __table__ at class creation
_CERTIFICATES: sa.Table = CertificateRow.__table__  # type: ignore[attr-defined]
_KEYS: sa.Table = IssuerKeyRow.__table__  # type: ignore[attr-defined]  # sqlmodel sets __table__ at class creation
# Each record's columns in its fields' order, so a row of them is the record's arguments.
_CERTIFICATE_COLUMNS = tuple(_CERTIFICATES.c[f.name] for f in dataclasses.fields(Certificate))
_N_CERTIFICATE = len(_CERTIFICATE_COLUMNS)
# A certificate with the issuer key its record names, in one query.
_WITH_KEY = _CERTIFICATES.outerjoin(_KEYS, _KEYS.c.kid == _CERTIFICATES.c.key_id)
_KEY_COLUMNS = (_KEYS.c.agency.label("key_agency"), _KEYS.c.public_jwk.label("key_public_jwk"))
_CERTIFICATE_AND_KEY = Prepared(sa.select(*_CERTIFICATE_COLUMNS, *_KEY_COLUMNS).select_from(
    _WITH_KEY).where(_CERTIFICATES.c.id == sa.bindparam("id")))
_CERTIFICATE_HEAD = Prepared(sa.select(
    _CERTIFICATES.c.holder, _CERTIFICATES.c.version, *_KEY_COLUMNS).select_from(
    _WITH_KEY).where(_CERTIFICATES.c.id == sa.bindparam("id")))
_BY_REQUEST = sa.select(*_CERTIFICATE_COLUMNS).where(
    _CERTIFICATES.c.requested_by == sa.bindparam("requested_by"),
    _CERTIFICATES.c.request_id == sa.bindparam("request_id"))
_INSERT = sa.insert(_CERTIFICATES)
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


def _certificate(row: Any) -> Certificate:
    return Certificate(*row[:_N_CERTIFICATE])


def get_certificate(tx: Session | Connection, certificate_id: str) -> Certificate | None:
    if not certificate_id:
        return None
    row = _CERTIFICATE_AND_KEY.first(connection(tx), {"id": certificate_id})
    return _certificate(row) if row is not None else None


def find_by_request(s: Session, requested_by: str, request_id: str) -> Certificate | None:
    """The certificate a caller issued under ``request_id`` (idempotency)."""
    row = connection(s).execute(_BY_REQUEST, {"requested_by": requested_by,
                                               "request_id": request_id}).first()
    return _certificate(row) if row is not None else None


def add_certificate(s: Session, c: Certificate) -> Certificate:
    """Inserts ``c`` (a Core INSERT on the session's connection: no unit of work to flush);
    a taken (caller, request id) or status slot raises IntegrityError."""
    values = dataclasses.asdict(c)
    del values["version"]  # the database's (trigger)
    connection(s).execute(_INSERT, values)
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


def find_by_slot(s: Session, issuer: str, index: int) -> Certificate | None:
    """The certificate holding ``index`` of ``issuer``'s status list (an imported foreign
    certificate is found again by its issuer's slot)."""
    row = s.execute(sa.select(*_CERTIFICATE_COLUMNS).where(
        _CERTIFICATES.c.issuer == issuer, _CERTIFICATES.c.status_list_index == index)).first()
    return _certificate(row) if row is not None else None
