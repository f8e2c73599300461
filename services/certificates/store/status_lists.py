"""Status lists: each issuer's slots (table ``status_lists``) and what its published list
marks (the suspended and revoked certificates' slots)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, col, select

from services.certificates import domain
from services.certificates.store.tables import CertificateRow, StatusListRow
from services.certificates.store.transactions import connection

_STATUS_LISTS: sa.Table = StatusListRow.__table__  # type: ignore[attr-defined]  # SQLModel sets it
_BUMP = sa.update(_STATUS_LISTS).where(_STATUS_LISTS.c.agency == sa.bindparam("of_agency")).values(
    next_index=_STATUS_LISTS.c.next_index + 1)
_NEXT = sa.select(_STATUS_LISTS.c.next_index).where(_STATUS_LISTS.c.agency == sa.bindparam("agency"))


def take_slot(s: Session, agency: str) -> int:
    """Takes the next slot of the agency's status list. The UPDATE comes first so it takes
    the row lock: concurrent issues queue here instead of colliding later, and a
    rolled-back issue gives its slot back."""
    # Core statements on the session's connection (the ORM's bulk UPDATE machinery cost
    # more than the statements themselves on every issue).
    conn = connection(s)
    bumped = conn.execute(_BUMP, {"of_agency": agency})
    if bumped.rowcount == 0:
        # The agency's first certificate; a concurrent first insert fails on the primary
        # key and its caller retries.
        s.add(StatusListRow(agency=agency, next_index=1))
        s.flush()
        return 0
    return int(conn.execute(_NEXT, {"agency": agency}).scalar_one()) - 1


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
