"""Partner systems and Govflow's own service accounts (table ``partners``)."""

from __future__ import annotations

from sqlmodel import Session

from services.identity.domain import Partner
from services.identity.store.tables import PartnerRow


def _partner(row: PartnerRow) -> Partner:
    return Partner(client_id=row.client_id, display_name=row.display_name, agency=row.agency,
                   kind=row.kind, scopes=tuple(filter(None, row.scopes.split(","))),
                   secret_hash=row.secret_hash, disabled=row.disabled,
                   create_time=row.create_time)


def get(s: Session, client_id: str) -> Partner | None:
    row = s.get(PartnerRow, client_id)
    return _partner(row) if row is not None else None


def add(s: Session, *, client_id: str, display_name: str, agency: str | None, kind: str,
        scopes: list[str], secret_hash: str) -> Partner:
    row = PartnerRow(client_id=client_id, display_name=display_name, agency=agency, kind=kind,
                     scopes=",".join(scopes), secret_hash=secret_hash)
    s.add(row)
    s.flush()
    return _partner(row)


def update(s: Session, client_id: str, *, secret_hash: str | None = None,
           disabled: bool | None = None, scopes: list[str] | None = None,
           kind: str | None = None) -> Partner:
    """Changes the given fields only."""
    row = s.get(PartnerRow, client_id)
    assert row is not None
    if secret_hash is not None:
        row.secret_hash = secret_hash
    if disabled is not None:
        row.disabled = disabled
    if scopes is not None:
        row.scopes = ",".join(scopes)
    if kind is not None:
        row.kind = kind
    s.add(row)
    return _partner(row)
