"""Persons (table ``persons``): identity, password hash and the TOTP second factor."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, col, select

from services.identity.domain import Person
from services.identity.store.tables import PersonRow


def _person(row: PersonRow) -> Person:
    return Person(id=row.id, id_number=row.id_number, display_name=row.display_name,
                  assurance_level=row.assurance_level, password_hash=row.password_hash,
                  create_time=row.create_time, totp_secret=row.totp_secret,
                  totp_confirmed=row.totp_confirmed, totp_last_step=row.totp_last_step)


def get(s: Session, person_id: str) -> Person | None:
    row = s.get(PersonRow, person_id)
    return _person(row) if row is not None else None


def by_id_number(s: Session, id_number: str) -> Person | None:
    row = s.exec(select(PersonRow).where(PersonRow.id_number == id_number)).first()
    return _person(row) if row is not None else None


def by_request_id(s: Session, request_id: str) -> Person | None:
    row = s.exec(select(PersonRow).where(PersonRow.request_id == request_id)).first()
    return _person(row) if row is not None else None


def add(s: Session, *, person_id: str, id_number: str, display_name: str, assurance_level: str,
        password_hash: str, request_id: str | None) -> Person:
    row = PersonRow(id=person_id, id_number=id_number, display_name=display_name,
                    assurance_level=assurance_level, password_hash=password_hash,
                    request_id=request_id)
    s.add(row)
    s.flush()
    return _person(row)


def list_persons(s: Session, *, offset: int, limit: int, id_number: str | None,
                 assurance: str | None) -> list[Person]:
    q = select(PersonRow).order_by(PersonRow.id)
    if id_number:
        q = q.where(PersonRow.id_number == id_number)
    if assurance:
        q = q.where(PersonRow.assurance_level == assurance)
    return [_person(r) for r in s.exec(q.offset(offset).limit(limit)).all()]


def set_password_hash(s: Session, person_id: str, password_hash: str) -> None:
    """Replaces the person's password hash (an upgrade to the current scheme)."""
    row = s.get(PersonRow, person_id)
    assert row is not None
    row.password_hash = password_hash
    s.add(row)


def set_totp(s: Session, person_id: str, *, secret: str | None, confirmed: bool,
             last_step: int) -> None:
    """Sets the person's TOTP factor (all three parts at once)."""
    row = s.get(PersonRow, person_id)
    assert row is not None
    row.totp_secret = secret
    row.totp_confirmed = confirmed
    row.totp_last_step = last_step
    s.add(row)


def use_totp_step(s: Session, person_id: str, step: int) -> bool:
    """Records ``step`` as the last one used, if it is later than the last; False when it is
    not. Conditional, so two logins racing with one code cannot both win."""
    used = s.execute(sa.update(PersonRow).where(
        col(PersonRow.id) == person_id, col(PersonRow.totp_last_step) < step,
    ).values(totp_last_step=step))
    return bool(used.rowcount == 1)  # type: ignore[attr-defined]  # rowcount is on the DML CursorResult
