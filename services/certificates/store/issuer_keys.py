"""Issuer keys (table ``issuer_keys``): each agency's signing keys by generation, the
newest active one signing, every one still verifying what it signed."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlmodel import Session, col, select

from govflow.db import Prepared
from services.certificates.domain import IssuerKey, SigningKey
from services.certificates.store.tables import IssuerKeyRow
from services.certificates.store.transactions import connection

_KEYS: sa.Table = IssuerKeyRow.__table__  # type: ignore[attr-defined]  # sqlmodel sets __table__ at class creation
_ISSUER_KEY = Prepared(sa.select(_KEYS.c.agency, _KEYS.c.public_jwk).where(
    _KEYS.c.kid == sa.bindparam("kid")))
_KEY_AGENCIES = Prepared(sa.select(_KEYS.c.agency).distinct())


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
    row = _ISSUER_KEY.first(connection(tx), {"kid": kid})
    return IssuerKey(row.agency, row.public_jwk) if row is not None else None


def key_agencies(tx: Session | Connection) -> list[str]:
    """The agencies with a key: the issuers a verification trusts."""
    return [r.agency for r in _KEY_AGENCIES.all(connection(tx), {})]
