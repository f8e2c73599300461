"""Who may do what in identity: administrators, the person themself, an organisation's
legal representative, and who may see persons and organisations at all. Answers never
reveal what the caller may not see: NOT_FOUND for them, PERMISSION_DENIED only for those
who may see the object."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Session

from govflow import auth
from govflow.errors import NotFound, PermissionDenied
from services.identity.domain import Organisation, Person
from services.identity.store import organisations as organisation_store
from services.identity.store import persons as person_store
from services.identity.store.tables import utcnow


def require_admin(p: auth.Principal) -> None:
    if not p.is_admin:
        raise PermissionDenied("only administrators may do this", reason="ADMIN_ONLY")


def is_platform_admin(p: auth.Principal) -> bool:
    """An administrator of Govflow itself (a service account with the admin scope), as
    opposed to an official who administers one agency."""
    return p.kind in (auth.SERVICE, auth.PARTNER) and auth.SCOPE_ADMIN in p.scopes


def require_platform_admin(p: auth.Principal) -> None:
    if not is_platform_admin(p):
        raise PermissionDenied("only platform administrators may do this",
                               reason="PLATFORM_ADMIN_ONLY")


def may_see_full_id(p: auth.Principal | None, person_id: str) -> bool:
    """Whether ``p`` sees a person's ID number unmasked."""
    if p is None:
        return False
    if p.subject == f"persons/{person_id}":
        return True
    if p.kind in (auth.SERVICE, auth.PARTNER) and p.has_scope(auth.SCOPE_PERSONS_READ):
        return True
    # Acceptors check identity at the counter-less desk; admins manage accounts.
    return p.kind == auth.OFFICIAL and bool({"acceptor", "admin"} & set(p.roles))


def sees_persons(p: auth.Principal) -> bool:
    """Who may look people up at all (others see only themselves)."""
    return p.kind in (auth.OFFICIAL, auth.SERVICE) or p.has_scope(auth.SCOPE_PERSONS_READ)


def require_person_lister(p: auth.Principal) -> None:
    """Who may list persons: administrators, and callers with ``persons.read``."""
    if not (p.is_admin or p.has_scope(auth.SCOPE_PERSONS_READ)):
        raise PermissionDenied("only administrators list persons", reason="ADMIN_ONLY")


def require_official_lister(p: auth.Principal, agency: str) -> None:
    """Who may list an agency's officials: its officials and admins, platform services."""
    if not (p.is_admin and (p.kind == auth.SERVICE or p.agency == agency)) and not (
            p.kind == auth.OFFICIAL and p.agency == agency):
        raise PermissionDenied("only that agency's officials list its officials",
                               reason="AGENCY_ONLY")


def is_self(p: auth.Principal, name: str) -> bool:
    """The caller is the person ``name`` (signed in as themself or as an official)."""
    return p.kind in (auth.PERSON, auth.OFFICIAL) and p.subject == name


def person_not_found(name: str) -> NotFound:
    return NotFound(f"{name} not found", reason="PERSON_NOT_FOUND")


def organisation_not_found(name: str) -> NotFound:
    return NotFound(f"{name} not found", reason="ORGANISATION_NOT_FOUND")


def get_person(s: Session, name: str) -> Person:
    """The person ``persons/{id}``; NOT_FOUND otherwise."""
    found = person_store.get(s, name.removeprefix("persons/")) \
        if name.startswith("persons/") else None
    if found is None:
        raise person_not_found(name)
    return found


def get_organisation(s: Session, name: str) -> Organisation:
    """The organisation ``organisations/{id}``; NOT_FOUND otherwise."""
    found = organisation_store.get(s, name.removeprefix("organisations/")) \
        if name.startswith("organisations/") else None
    if found is None:
        raise organisation_not_found(name)
    return found


def represents(s: Session, person_id: str, organisation_id: str) -> bool:
    """The person may act for the organisation now."""
    rep = organisation_store.representation(s, organisation_id, person_id)
    return rep is not None and aware(rep.expire_time) >= utcnow()


def own_person(s: Session, p: auth.Principal, name: str) -> Person:
    """The person ``name`` when it is the caller; NOT_FOUND for those who may not see it
    (never reveal that it exists), PERMISSION_DENIED for those who may."""
    if is_self(p, name):
        return get_person(s, name)
    if not sees_persons(p):
        raise person_not_found(name)
    get_person(s, name)
    raise PermissionDenied("only the person themself may do this", reason="OWNER_ONLY")


def sees_organisation(s: Session, p: auth.Principal, org: Organisation) -> bool:
    return (p.kind in (auth.OFFICIAL, auth.SERVICE) or p.is_admin
            or (p.kind == auth.PERSON
                and represents(s, p.subject.removeprefix("persons/"), org.id)))


def managed_organisation(s: Session, p: auth.Principal, name: str) -> Organisation:
    """The organisation when the caller is its legal representative or a platform admin."""
    org = get_organisation(s, name)
    if is_platform_admin(p) or p.subject == f"persons/{org.legal_representative}":
        return org
    if not sees_organisation(s, p, org):
        raise organisation_not_found(name)
    raise PermissionDenied("only the legal representative or a platform admin may do this",
                           reason="NOT_LEGAL_REPRESENTATIVE")


def aware(t: dt.datetime) -> dt.datetime:
    """``t`` in UTC when the database returned it naive (SQLite)."""
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)
