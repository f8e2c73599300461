"""Organisations (table ``organisations``) and who may act for them (table
``representations``)."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Session, col, select

from services.identity.domain import Organisation, Representation
from services.identity.store.tables import OrganisationRow, RepresentationRow


def _organisation(row: OrganisationRow) -> Organisation:
    return Organisation(id=row.id, credit_code=row.credit_code, display_name=row.display_name,
                        legal_representative=row.legal_representative,
                        create_time=row.create_time)


def _representation(row: RepresentationRow) -> Representation:
    return Representation(organisation_id=row.organisation_id, person_id=row.person_id,
                          expire_time=row.expire_time)


def get(s: Session, organisation_id: str) -> Organisation | None:
    row = s.get(OrganisationRow, organisation_id)
    return _organisation(row) if row is not None else None


def by_request_id(s: Session, request_id: str) -> Organisation | None:
    row = s.exec(select(OrganisationRow).where(OrganisationRow.request_id == request_id)).first()
    return _organisation(row) if row is not None else None


def credit_code_taken(s: Session, credit_code: str) -> bool:
    return s.exec(select(OrganisationRow).where(
        OrganisationRow.credit_code == credit_code)).first() is not None


def add(s: Session, *, organisation_id: str, credit_code: str, display_name: str,
        legal_representative: str, request_id: str | None,
        representative_until: dt.datetime) -> Organisation:
    """Inserts the organisation and its legal representative's representation."""
    row = OrganisationRow(id=organisation_id, credit_code=credit_code,
                          display_name=display_name, legal_representative=legal_representative,
                          request_id=request_id)
    s.add(row)
    s.add(RepresentationRow(organisation_id=organisation_id, person_id=legal_representative,
                            expire_time=representative_until))
    s.flush()
    return _organisation(row)


def _representation_row(s: Session, organisation_id: str,
                        person_id: str) -> RepresentationRow | None:
    return s.exec(select(RepresentationRow).where(
        RepresentationRow.organisation_id == organisation_id,
        RepresentationRow.person_id == person_id)).first()


def representation(s: Session, organisation_id: str, person_id: str) -> Representation | None:
    row = _representation_row(s, organisation_id, person_id)
    return _representation(row) if row is not None else None


def put_representation(s: Session, organisation_id: str, person_id: str,
                       expire_time: dt.datetime) -> Representation:
    """Creates the representation or moves its end."""
    row = _representation_row(s, organisation_id, person_id) or RepresentationRow(
        organisation_id=organisation_id, person_id=person_id, expire_time=expire_time)
    row.expire_time = expire_time
    s.add(row)
    s.flush()
    return _representation(row)


def delete_representation(s: Session, organisation_id: str, person_id: str) -> bool:
    """Deletes it; False when there was none."""
    row = _representation_row(s, organisation_id, person_id)
    if row is None:
        return False
    s.delete(row)
    return True


def list_representations(s: Session, *, organisation_id: str | None, person_id: str | None,
                         live_at: dt.datetime | None, offset: int,
                         limit: int) -> list[tuple[Representation, Organisation]]:
    """Representations (of an organisation, or of a person) with their organisation, by
    creation; with ``live_at``, only those that have not ended by then."""
    q = select(RepresentationRow, OrganisationRow).join(
        OrganisationRow, col(OrganisationRow.id) == col(RepresentationRow.organisation_id))
    if organisation_id is not None:
        q = q.where(RepresentationRow.organisation_id == organisation_id)
    if person_id is not None:
        q = q.where(RepresentationRow.person_id == person_id)
    if live_at is not None:
        q = q.where(col(RepresentationRow.expire_time) >= live_at)
    q = q.order_by(col(RepresentationRow.id)).offset(offset).limit(limit)
    return [(_representation(r), _organisation(o)) for r, o in s.exec(q).all()]
