"""Agencies (table ``agencies``) and their officials' roles (table ``officials``)."""

from __future__ import annotations

from sqlmodel import Session, col, select

from services.identity.domain import Agency, Official
from services.identity.store.tables import AgencyRow, OfficialRow


def _agency(row: AgencyRow) -> Agency:
    return Agency(code=row.code, display_name=row.display_name,
                  division_code=row.division_code, level=row.level, parent=row.parent,
                  display_name_en=row.display_name_en)


def _official(row: OfficialRow) -> Official:
    return Official(person_id=row.person_id, agency_code=row.agency_code,
                    roles=tuple(r for r in row.roles.split(",") if r))


def get(s: Session, code: str) -> Agency | None:
    row = s.get(AgencyRow, code)
    return _agency(row) if row is not None else None


def add(s: Session, a: Agency) -> Agency:
    s.add(AgencyRow(code=a.code, display_name=a.display_name, division_code=a.division_code,
                    level=a.level, parent=a.parent, display_name_en=a.display_name_en))
    s.flush()
    return a


def rename(s: Session, code: str, display_name: str, display_name_en: str) -> Agency:
    row = s.get(AgencyRow, code)
    assert row is not None
    row.display_name, row.display_name_en = display_name, display_name_en
    s.flush()
    return _agency(row)


def list_agencies(s: Session, *, offset: int, limit: int) -> list[Agency]:
    return [_agency(r) for r in s.exec(
        select(AgencyRow).order_by(AgencyRow.code).offset(offset).limit(limit))]


def _official_row(s: Session, person_id: str, agency_code: str) -> OfficialRow | None:
    return s.exec(select(OfficialRow).where(OfficialRow.person_id == person_id,
                                            OfficialRow.agency_code == agency_code)).first()


def official(s: Session, person_id: str, agency_code: str) -> Official | None:
    row = _official_row(s, person_id, agency_code)
    return _official(row) if row is not None else None


def set_roles(s: Session, person_id: str, agency_code: str,
              roles: tuple[str, ...]) -> Official | None:
    """Sets the official's roles; no roles removes the official (None)."""
    row = _official_row(s, person_id, agency_code)
    if not roles:
        if row:
            s.delete(row)
        return None
    if row is None:
        row = OfficialRow(person_id=person_id, agency_code=agency_code, roles="")
    row.roles = ",".join(roles)
    s.add(row)
    s.flush()
    return _official(row)


def list_officials(s: Session, agency_code: str, *, offset: int, limit: int) -> list[Official]:
    return [_official(r) for r in s.exec(
        select(OfficialRow).where(OfficialRow.agency_code == agency_code)
        .order_by(col(OfficialRow.id)).offset(offset).limit(limit))]
