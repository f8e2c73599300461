"""Persons: CreatePerson, GetPerson, ListPersons, and their TOTP second factor
(EnrollTotp, ConfirmTotp, ResetTotp)."""

from __future__ import annotations

import uuid

from sqlmodel import Session

from govflow import auth
from govflow.db import Database
from govflow.errors import AlreadyExists, FailedPrecondition, InvalidArgument, PermissionDenied
from services.identity import access, domain
from services.identity.domain import Person
from services.identity.store import persons as person_store
from services.identity.store import tokens as token_store


def new_id() -> str:
    return uuid.uuid4().hex[:16]


class Persons:
    """CreatePerson, GetPerson, ListPersons, EnrollTotp, ConfirmTotp, ResetTotp."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, p: auth.Principal, *, id_number: str, display_name: str,
                     assurance: str, password: str, request_id: str) -> Person:
        if not (p.is_admin or p.has_scope("persons.write")):
            raise PermissionDenied("only administrators create persons", reason="ADMIN_ONLY")
        return await self.db.run(lambda s: self._create(
            s, id_number=id_number, display_name=display_name, assurance=assurance,
            password=password, request_id=request_id))

    @staticmethod
    def _create(s: Session, *, id_number: str, display_name: str, assurance: str,
                password: str, request_id: str) -> Person:
        problems: dict[str, str] = {}
        try:
            id_number = domain.validate_id_number(id_number, "person.id_number")
        except InvalidArgument as e:
            problems.update(e.fields)
        if not display_name.strip():
            problems["person.display_name"] = "required"
        if len(password) < 8:
            problems["password"] = "must be at least 8 characters"
        if problems:
            raise InvalidArgument(fields=problems)
        if request_id:
            existing = person_store.by_request_id(s, request_id)
            if existing:
                return existing
        if person_store.by_id_number(s, id_number):
            raise AlreadyExists("a person with this ID number exists", reason="PERSON_EXISTS")
        return person_store.add(s, person_id=new_id(), id_number=id_number,
                                display_name=display_name.strip(),
                                assurance_level=assurance or "account",
                                password_hash=domain.hash_secret(password),
                                request_id=request_id or None)

    async def get(self, p: auth.Principal, name: str) -> Person:
        """The caller themself, or anyone to those who may look people up."""
        if not (access.is_self(p, name) or access.sees_persons(p)):
            raise access.person_not_found(name)
        return await self.db.run(lambda s: access.get_person(s, name))

    async def list_persons(self, p: auth.Principal, *, offset: int, limit: int,
                           id_number: str | None, assurance: str | None) -> list[Person]:
        access.require_person_lister(p)
        return await self.db.run(lambda s: person_store.list_persons(
            s, offset=offset, limit=limit, id_number=id_number.upper() if id_number else None,
            assurance=assurance))

    # ------------------------------------------------------------ TOTP
    async def enroll_totp(self, p: auth.Principal, name: str) -> tuple[str, str]:
        """A new (unconfirmed) TOTP secret for the caller and its otpauth URI.

        Enrolling again before confirming replaces the pending secret; once confirmed, the
        factor stays until a platform administrator resets it (ResetTotp).
        """
        def work(s: Session) -> tuple[str, str]:
            person = access.own_person(s, p, name)
            if person.totp_confirmed:
                raise FailedPrecondition("a one-time code app is enrolled already",
                                         reason="TOTP_ALREADY_ENROLLED")
            secret = domain.new_totp_secret()
            person_store.set_totp(s, person.id, secret=secret, confirmed=False, last_step=0)
            return secret, domain.totp_uri(secret, domain.mask_id_number(person.id_number))

        return await self.db.run(work)

    async def confirm_totp(self, p: auth.Principal, name: str, code: str) -> None:
        """Turns the pending secret on once the caller shows a code from it."""
        def work(s: Session) -> None:
            person = access.own_person(s, p, name)
            if not code:
                raise InvalidArgument(fields={"one_time_code": "required"})
            if person.totp_confirmed:
                raise FailedPrecondition("a one-time code app is enrolled already",
                                         reason="TOTP_ALREADY_ENROLLED")
            if person.totp_secret is None:
                raise FailedPrecondition("call EnrollTotp first", reason="TOTP_NOT_ENROLLED")
            step = domain.totp_step(person.totp_secret, code, last_step=person.totp_last_step)
            if step is None:
                raise InvalidArgument(fields={"one_time_code": "wrong or expired"},
                                      reason="BAD_OTP")
            person_store.set_totp(s, person.id, secret=person.totp_secret, confirmed=True,
                                  last_step=step)

        await self.db.run(work)

    async def reset_totp(self, p: auth.Principal, name: str, reason: str) -> bool:
        """A platform admin removes the person's second factor (confirmed or pending) and
        revokes their refresh tokens; True when there was one."""
        access.require_platform_admin(p)
        problems = {}
        if not name.startswith("persons/"):
            problems["person"] = "must be persons/{id}"
        if not reason.strip():
            problems["reason"] = "required (it is logged)"
        if problems:
            raise InvalidArgument(fields=problems)

        def work(s: Session) -> bool:
            person = access.get_person(s, name)
            had = person.totp_secret is not None or person.totp_confirmed
            person_store.set_totp(s, person.id, secret=None, confirmed=False, last_step=0)
            token_store.revoke_refresh_of(s, f"persons/{person.id}")
            return had

        return await self.db.run(work)
