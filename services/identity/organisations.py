"""Organisations and who may act for them: CreateOrganisation, GetOrganisation,
GrantRepresentation, RevokeRepresentation, ListRepresentations."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Session

from govflow import auth
from govflow.db import Database
from govflow.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from services.identity import access, domain
from services.identity.domain import Organisation, Representation
from services.identity.persons import new_id
from services.identity.store import organisations as organisation_store
from services.identity.store import persons as person_store
from services.identity.store.tables import utcnow


class Organisations:
    """CreateOrganisation, GetOrganisation and the representations."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, p: auth.Principal, *, credit_code: str, display_name: str,
                     legal_rep: str, request_id: str) -> Organisation:
        access.require_admin(p)
        return await self.db.run(lambda s: self._create(
            s, credit_code=credit_code, display_name=display_name, legal_rep=legal_rep,
            request_id=request_id))

    @staticmethod
    def _create(s: Session, *, credit_code: str, display_name: str, legal_rep: str,
                request_id: str) -> Organisation:
        problems: dict[str, str] = {}
        try:
            credit_code = domain.validate_credit_code(credit_code, "organisation.credit_code")
        except InvalidArgument as e:
            problems.update(e.fields)
        if not display_name.strip():
            problems["organisation.display_name"] = "required"
        rep_id = legal_rep.removeprefix("persons/")
        if not legal_rep.startswith("persons/") or person_store.get(s, rep_id) is None:
            problems["organisation.legal_representative"] = "must name an existing person"
        if problems:
            raise InvalidArgument(fields=problems)
        if request_id:
            existing = organisation_store.by_request_id(s, request_id)
            if existing:
                return existing
        if organisation_store.credit_code_taken(s, credit_code):
            raise AlreadyExists("an organisation with this credit code exists",
                                reason="ORGANISATION_EXISTS")
        # The legal representative may always act for the organisation.
        return organisation_store.add(
            s, organisation_id=new_id(), credit_code=credit_code, display_name=display_name,
            legal_representative=rep_id, request_id=request_id or None,
            representative_until=utcnow() + dt.timedelta(days=365 * 50))

    async def get(self, p: auth.Principal, name: str) -> Organisation:
        def work(s: Session) -> Organisation:
            org = access.get_organisation(s, name)
            if not access.sees_organisation(s, p, org):
                raise access.organisation_not_found(name)
            return org

        return await self.db.run(work)

    # ------------------------------------------------------------ representations
    async def grant_representation(self, p: auth.Principal, organisation: str, person: str,
                                   expire: dt.datetime | None
                                   ) -> tuple[Representation, Organisation]:
        """Lets a person act for an organisation until a time (legal rep or platform admin)."""
        def work(s: Session) -> tuple[Representation, Organisation]:
            org = access.managed_organisation(s, p, organisation)
            who = access.get_person(s, person)
            if expire is not None and expire <= utcnow():
                raise InvalidArgument(fields={"expire_time": "must be in the future"})
            if who.id == org.legal_representative:
                raise FailedPrecondition(
                    "the legal representative always acts for the organisation",
                    reason="LEGAL_REPRESENTATIVE")
            until = expire or utcnow() + dt.timedelta(days=365)
            return organisation_store.put_representation(s, org.id, who.id, until), org

        return await self.db.run(work)

    async def revoke_representation(self, p: auth.Principal, organisation: str,
                                    person: str) -> None:
        """Withdraws a person's authority to act for an organisation."""
        def work(s: Session) -> None:
            org = access.managed_organisation(s, p, organisation)
            who = access.get_person(s, person)
            if who.id == org.legal_representative:
                raise FailedPrecondition(
                    "the legal representative always acts for the organisation",
                    reason="LEGAL_REPRESENTATIVE")
            if not organisation_store.delete_representation(s, org.id, who.id):
                raise NotFound(f"{person} does not act for organisations/{org.id}",
                               reason="REPRESENTATION_NOT_FOUND")

        await self.db.run(work)

    async def list_representations(self, p: auth.Principal, parent: str, *,
                                   show_expired: bool, offset: int,
                                   limit: int) -> list[tuple[Representation, Organisation]]:
        """Who may act for an organisation, or what a person may act for."""
        def work(s: Session) -> list[tuple[Representation, Organisation]]:
            live_at = None if show_expired else utcnow()
            if parent.startswith("organisations/"):
                if p.kind in (auth.SERVICE, auth.PARTNER) and p.has_scope(auth.SCOPE_PERSONS_READ):
                    # Read-only, for the worker: who has an interest in an organisation's
                    # application (its officers may not decide it).
                    org = access.get_organisation(s, parent)
                else:
                    org = access.managed_organisation(s, p, parent)
                return organisation_store.list_representations(
                    s, organisation_id=org.id, person_id=None, live_at=live_at,
                    offset=offset, limit=limit)
            if parent.startswith("persons/"):
                if access.is_platform_admin(p):
                    person = access.get_person(s, parent)
                else:
                    person = access.own_person(s, p, parent)
                return organisation_store.list_representations(
                    s, organisation_id=None, person_id=person.id, live_at=live_at,
                    offset=offset, limit=limit)
            raise InvalidArgument(fields={
                "parent": "must be organisations/{organisation} or persons/{person}"})

        return await self.db.run(work)
