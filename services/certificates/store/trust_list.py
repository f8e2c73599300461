"""The trust list (tables ``trusted_issuers`` and ``trust_list_head``) and the trusted
issuers' own status lists (``issuer_status_lists``).

Core statements on the transaction's connection, so the reads work in a session
(``Database.run``) and in a connection (``Database.read``, the verification path) alike.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlmodel import Session

from services.certificates import domain
from services.certificates.foreign import TrustedIssuer
from services.certificates.store.tables import (
    IssuerStatusListRow,
    TrustedIssuerRow,
    TrustListHeadRow,
)
from services.certificates.store.transactions import connection

# mypy, next three lines: sqlmodel sets __table__ at class creation
_ISSUERS: sa.Table = TrustedIssuerRow.__table__  # type: ignore[attr-defined]
_HEAD: sa.Table = TrustListHeadRow.__table__  # type: ignore[attr-defined]
_LISTS: sa.Table = IssuerStatusListRow.__table__  # type: ignore[attr-defined]
HEAD = "trust-list"


def _entry(row: Any) -> TrustedIssuer:
    return TrustedIssuer(
        issuer=row.issuer, display_name=row.display_name, jurisdiction=row.jurisdiction,
        jwks_json=row.jwks_json, status_list_location=row.status_list_location,
        certificate_types=tuple(json.loads(row.certificate_types_json)),
        not_after=domain.aware(row.not_after), added_by=row.added_by,
        add_time=domain.aware(row.add_time), version=int(row.version))


def get_issuer(tx: Session | Connection, issuer: str) -> TrustedIssuer | None:
    row = connection(tx).execute(sa.select(_ISSUERS).where(_ISSUERS.c.issuer == issuer)).first()
    return _entry(row) if row is not None else None


def list_issuers(tx: Session | Connection, *, offset: int = 0,
                 limit: int | None = None) -> list[TrustedIssuer]:
    q = sa.select(_ISSUERS).order_by(_ISSUERS.c.issuer).offset(offset)
    if limit is not None:
        q = q.limit(limit)
    return [_entry(r) for r in connection(tx).execute(q).all()]


def version(tx: Session | Connection) -> int:
    """The trust list's current version (0 before its first change)."""
    v = connection(tx).execute(sa.select(_HEAD.c.version).where(_HEAD.c.name == HEAD)).scalar()
    return int(v or 0)


def next_version(tx: Session | Connection, now: dt.datetime) -> int:
    """Bumps the version and returns it. The UPDATE comes first, so concurrent changes
    queue on the head row (row lock / SQLite write lock) and get distinct versions; the
    first change's concurrent twin fails on the primary key and is retried."""
    conn = connection(tx)
    bumped = conn.execute(sa.update(_HEAD).where(_HEAD.c.name == HEAD).values(
        version=_HEAD.c.version + 1, update_time=now))
    if bumped.rowcount == 0:
        conn.execute(sa.insert(_HEAD).values(name=HEAD, version=1, update_time=now))
        return 1
    return version(conn)


def put_issuer(tx: Session | Connection, entry: TrustedIssuer) -> None:
    """Inserts the entry, or replaces the one of the same issuer."""
    conn = connection(tx)
    assert entry.add_time is not None
    values = {"display_name": entry.display_name, "jurisdiction": entry.jurisdiction,
              "jwks_json": entry.jwks_json, "status_list_location": entry.status_list_location,
              "certificate_types_json": json.dumps(list(entry.certificate_types)),
              "not_after": entry.not_after, "added_by": entry.added_by,
              "add_time": entry.add_time, "version": entry.version}
    done = conn.execute(sa.update(_ISSUERS).where(_ISSUERS.c.issuer == entry.issuer).values(**values))
    if done.rowcount == 0:
        conn.execute(sa.insert(_ISSUERS).values(issuer=entry.issuer, **values))


def delete_issuer(tx: Session | Connection, issuer: str) -> bool:
    """Removes the issuer and the status list published for it; False when not listed."""
    conn = connection(tx)
    gone = conn.execute(sa.delete(_ISSUERS).where(_ISSUERS.c.issuer == issuer)).rowcount
    conn.execute(sa.delete(_LISTS).where(_LISTS.c.issuer == issuer))
    return bool(gone)


def status_list(tx: Session | Connection, issuer: str) -> tuple[str, str, str] | None:
    """(signed payload, signature, kid) of the issuer's published status list, if any."""
    row = connection(tx).execute(sa.select(_LISTS.c.signed_payload, _LISTS.c.signature,
                                           _LISTS.c.kid).where(_LISTS.c.issuer == issuer)).first()
    return (row.signed_payload, row.signature, row.kid) if row is not None else None


def status_list_issued(tx: Session | Connection, issuer: str) -> dt.datetime | None:
    t = connection(tx).execute(sa.select(_LISTS.c.issued_time).where(
        _LISTS.c.issuer == issuer)).scalar()
    return domain.aware(t) if t is not None else None


def put_status_list(tx: Session | Connection, *, issuer: str, signed_payload: str,
                    signature: str, kid: str, issued_time: dt.datetime, now: dt.datetime,
                    published_by: str) -> None:
    conn = connection(tx)
    values = {"signed_payload": signed_payload, "signature": signature, "kid": kid,
              "issued_time": issued_time, "publish_time": now, "published_by": published_by}
    done = conn.execute(sa.update(_LISTS).where(_LISTS.c.issuer == issuer).values(**values))
    if done.rowcount == 0:
        conn.execute(sa.insert(_LISTS).values(issuer=issuer, **values))
