"""Partners' public keys for client assertions (table ``partner_keys``) and the
single-use record of accepted assertions (``used_client_assertions``)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, col, select

from govflow.db import dialect_insert
from services.identity.store.tables import PartnerKeyRow, UsedAssertionRow


def add_key(s: Session, *, client_id: str, kid: str, public_jwk: str) -> bool:
    """Registers a key; False (nothing changed) if the partner has one with that kid."""
    t = PartnerKeyRow.__table__  # type: ignore[attr-defined]  # sqlmodel sets __table__ at class creation
    done = s.execute(dialect_insert(s, t).values(
        client_id=client_id, kid=kid, public_jwk=public_jwk).on_conflict_do_nothing()
        .returning(t.c.kid))
    return done.scalar_one_or_none() is not None


def remove_key(s: Session, *, client_id: str, kid: str) -> bool:
    """Removes a key; False if there was none."""
    row = s.get(PartnerKeyRow, (client_id, kid))
    if row is None:
        return False
    s.delete(row)
    return True


def keys_of(s: Session, client_id: str) -> list[str]:
    """The partner's registered public JWKs (JSON texts), oldest first."""
    return [r.public_jwk for r in s.exec(
        select(PartnerKeyRow).where(PartnerKeyRow.client_id == client_id)
        .order_by(col(PartnerKeyRow.create_time))).all()]


def use_assertion(s: Session, *, client_id: str, jti: str, expires: int, now: int) -> bool:
    """Records an assertion's jti as used; False if it was used before (a replay). One
    conditional insert, so two replicas racing with one assertion cannot both accept it.
    Records past their expiry are dropped: an expired assertion is refused anyway."""
    t = UsedAssertionRow.__table__  # type: ignore[attr-defined]  # sqlmodel sets __table__ at class creation
    s.execute(sa.delete(t).where(t.c.expire_time < now - 60))
    done = s.execute(dialect_insert(s, t).values(
        key=f"{client_id}:{jti}", expire_time=expires).on_conflict_do_nothing()
        .returning(t.c.key))
    return done.scalar_one_or_none() is not None
