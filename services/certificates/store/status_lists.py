"""Status lists: each issuer's slots (table ``status_lists``) and what its published list
marks (the suspended and revoked certificates' slots)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, col, select

from services.certificates import domain
from services.certificates.store.tables import CertificateRow, StatusListRow


def take_slot(s: Session, agency: str) -> int:
    """Takes the next slot of the agency's status list. The UPDATE comes first so it takes
    the row lock: concurrent issues queue here instead of colliding later, and a
    rolled-back issue gives its slot back."""
    bumped = s.execute(sa.update(StatusListRow).where(
        col(StatusListRow.agency) == agency).values(
        next_index=col(StatusListRow.next_index) + 1))
    if bumped.rowcount == 0:  # type: ignore[attr-defined]  # rowcount is on the DML CursorResult
        # The agency's first certificate; a concurrent first insert fails on the primary
        # key and its caller retries.
        s.add(StatusListRow(agency=agency, next_index=1))
        s.flush()
        return 0
    return int(s.exec(select(StatusListRow.next_index).where(
        StatusListRow.agency == agency)).one()) - 1


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
