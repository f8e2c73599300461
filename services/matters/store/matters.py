"""Published matter versions: the catalogue as stored (``matter_versions``)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, col, select

from govflow.errors import NotFound
from services.matters.domain.applications import MatterVersion
from services.matters.domain.definition import MatterSpec, spec_from_json, spec_to_json
from services.matters.store.tables import MatterVersionRow


def _version(row: MatterVersionRow) -> MatterVersion:
    return MatterVersion(code=row.code, version=row.version, agency=row.agency,
                         display_name=row.display_name, definition_yaml=row.definition_yaml,
                         spec=spec_from_json(row.spec_json), fingerprint=row.fingerprint)


def find(s: Session, code: str, *, version: int = 0) -> MatterVersion | None:
    """The matter's ``version`` (0: its latest), or None."""
    q = select(MatterVersionRow).where(MatterVersionRow.code == code)
    q = q.where(MatterVersionRow.version == version) if version else q.order_by(
        col(MatterVersionRow.version).desc())
    row = s.exec(q.limit(1)).first()
    return None if row is None else _version(row)


def get(s: Session, code: str, *, version: int = 0) -> MatterVersion:
    """As ``find``; NOT_FOUND (MATTER_NOT_FOUND) when there is none."""
    found = find(s, code, version=version)
    if found is None:
        raise NotFound(f"matters/{code} not found", reason="MATTER_NOT_FOUND")
    return found


def spec(s: Session, code: str, version: int = 0) -> MatterSpec:
    """The definition of the matter's ``version`` (0: latest); NOT_FOUND when missing."""
    return get(s, code, version=version).spec


def listing(s: Session, *, offset: int, limit: int, agency: str | None) -> list[MatterVersion]:
    """Each matter's latest version, by code (optionally only one agency's)."""
    newest = select(MatterVersionRow.code, sa.func.max(MatterVersionRow.version).label("v")) \
        .group_by(MatterVersionRow.code).subquery()
    q = select(MatterVersionRow).join(newest, sa.and_(
        col(MatterVersionRow.code) == newest.c.code, col(MatterVersionRow.version) == newest.c.v))
    if agency:
        q = q.where(MatterVersionRow.agency == agency)
    q = q.order_by(MatterVersionRow.code).offset(offset).limit(limit)
    return [_version(r) for r in s.exec(q)]


def add(s: Session, spec: MatterSpec, *, text: str, fingerprint: str) -> MatterVersion:
    """Stores ``spec`` (its ``version`` set) as published from ``text``."""
    row = MatterVersionRow(code=spec.code, version=spec.version, agency=spec.agency,
                           display_name=spec.display_name, definition_yaml=text,
                           spec_json=spec_to_json(spec), fingerprint=fingerprint)
    s.add(row)
    s.flush()
    return _version(row)
