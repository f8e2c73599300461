"""Published matter versions: the catalogue as stored (``matter_versions``)."""

from __future__ import annotations

from collections.abc import Collection

import sqlalchemy as sa
from sqlalchemy.engine import Connection
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


_T = MatterVersionRow.__table__  # type: ignore[attr-defined]  # sqlmodel declares it untyped
# matter_versions is append-only (a publish inserts a row; nothing updates or deletes one),
# so its row count and highest id change with every publish any process commits.
_MARK = sa.select(sa.func.count(), sa.func.max(_T.c.id))
_NEWEST = sa.select(sa.func.max(_T.c.id)).group_by(_T.c.code)


def catalogue_mark(conn: Connection) -> tuple[int, int]:
    """(rows, highest id) of the published versions: equal marks, the same catalogue."""
    n, top = conn.execute(_MARK).one()
    return int(n), int(top or 0)


def newest_ids(conn: Connection) -> list[int]:
    """The row id of each matter's latest version (versions grow with ids: a publish
    inserts the next version after reading the latest, under the code's unique version)."""
    return [int(i) for (i,) in conn.execute(_NEWEST)]


def versions_by_id(conn: Connection, ids: Collection[int]) -> list[tuple[int, MatterVersion]]:
    """The published versions with these row ids, each with its id."""
    out: list[tuple[int, MatterVersion]] = []
    wanted = sorted(ids)
    for i in range(0, len(wanted), 500):
        rows = conn.execute(sa.select(_T).where(_T.c.id.in_(wanted[i:i + 500]))).all()
        out += [(r.id, MatterVersion(
            code=r.code, version=r.version, agency=r.agency, display_name=r.display_name,
            definition_yaml=r.definition_yaml, spec=spec_from_json(r.spec_json),
            fingerprint=r.fingerprint)) for r in rows]
    return out


def add(s: Session, spec: MatterSpec, *, text: str, fingerprint: str) -> MatterVersion:
    """Stores ``spec`` (its ``version`` set) as published from ``text``."""
    row = MatterVersionRow(code=spec.code, version=spec.version, agency=spec.agency,
                           display_name=spec.display_name, definition_yaml=text,
                           spec_json=spec_to_json(spec), fingerprint=fingerprint)
    s.add(row)
    s.flush()
    return _version(row)
