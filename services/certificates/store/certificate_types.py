"""Certificate types (table ``certificate_types``)."""

from __future__ import annotations

import dataclasses
import json

from sqlmodel import Session, select

from services.certificates import domain
from services.certificates.domain import CertificateType
from services.certificates.store.tables import CertificateTypeRow, utcnow


def _type(row: CertificateTypeRow) -> CertificateType:
    return CertificateType(
        code=row.code, display_name=row.display_name, display_name_en=row.display_name_en,
        issuing_agency=f"agencies/{row.issuing_agency}", holder_kind=row.holder_kind,
        fields=tuple(domain.FieldSpec(**f) for f in json.loads(row.fields_json)),
        default_validity_days=row.default_validity_days)


def get_type(s: Session, code: str) -> CertificateType | None:
    row = s.get(CertificateTypeRow, code) if code else None
    return _type(row) if row is not None else None


def save_type(s: Session, t: CertificateType) -> CertificateType:
    """Creates the type or replaces its definition."""
    row = s.get(CertificateTypeRow, t.code) or CertificateTypeRow(
        code=t.code, display_name="", issuing_agency="", holder_kind="", fields_json="[]")
    row.display_name = t.display_name.strip()
    row.display_name_en = t.display_name_en.strip()
    row.issuing_agency = domain.agency_code(t.issuing_agency)
    row.holder_kind = t.holder_kind
    row.fields_json = json.dumps([dataclasses.asdict(f) for f in t.fields])
    row.default_validity_days = t.default_validity_days
    row.update_time = utcnow()
    s.add(row)
    s.flush()
    return _type(row)


def list_types(s: Session, *, offset: int, limit: int, issuing_agency: str | None,
               holder_kind: str | None) -> list[CertificateType]:
    q = select(CertificateTypeRow).order_by(CertificateTypeRow.code)
    if issuing_agency:
        q = q.where(CertificateTypeRow.issuing_agency == issuing_agency.removeprefix("agencies/"))
    if holder_kind:
        q = q.where(CertificateTypeRow.holder_kind == holder_kind)
    return [_type(r) for r in s.exec(q.offset(offset).limit(limit))]


def agency_defines_types(s: Session, agency: str) -> bool:
    """Whether some certificate type names the agency (by code) as its issuer."""
    return s.exec(select(CertificateTypeRow.code).where(
        CertificateTypeRow.issuing_agency == agency)).first() is not None
