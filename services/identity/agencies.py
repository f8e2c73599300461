"""Agencies and officials: CreateAgency, ListAgencies, SetOfficialRoles, ListOfficials."""

from __future__ import annotations

from sqlmodel import Session

from govflow import auth
from govflow.db import Database
from govflow.errors import InvalidArgument, PermissionDenied
from services.identity import access, domain
from services.identity.domain import Agency, Official
from services.identity.store import agencies as agency_store

AGENCY_LEVELS = ("province", "city", "county")


class Agencies:
    """CreateAgency, ListAgencies, SetOfficialRoles, ListOfficials."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, p: auth.Principal, *, code: str, display_name: str, division: str,
                     level: str, parent: str, display_name_en: str = "") -> Agency:
        """Creates an agency (platform admins only); creating it again is harmless and
        takes its names as given (a seeding names its agencies anew)."""
        access.require_platform_admin(p)
        return await self.db.run(lambda s: self._create(
            s, code=code, display_name=display_name, division=division, level=level,
            parent=parent, display_name_en=display_name_en))

    @staticmethod
    def _create(s: Session, *, code: str, display_name: str, division: str, level: str,
                parent: str, display_name_en: str = "") -> Agency:
        problems: dict[str, str] = {}
        if not code or not all(c.isalnum() or c == "-" for c in code):
            problems["agency.code"] = "required; letters, digits and dashes"
        if not display_name:
            problems["agency.display_name"] = "required"
        if len(division) != 6 or not division.isdigit():
            problems["agency.division_code"] = "must be 6 digits (GB/T 2260)"
        if level not in AGENCY_LEVELS:
            problems["agency.level"] = "must be PROVINCE, CITY or COUNTY"
        parent_code = parent.removeprefix("agencies/") if parent else None
        if parent_code and agency_store.get(s, parent_code) is None:
            problems["agency.parent"] = "must name an existing agency"
        if problems:
            raise InvalidArgument(fields=problems)
        existing = agency_store.get(s, code)
        if existing:
            # Creating the same agency again is harmless (seeding); its names follow.
            if (existing.display_name, existing.display_name_en) != (display_name, display_name_en):
                return agency_store.rename(s, code, display_name, display_name_en)
            return existing
        return agency_store.add(s, Agency(code=code, display_name=display_name,
                                          division_code=division, level=level,
                                          parent=parent_code, display_name_en=display_name_en))

    async def list_agencies(self, *, offset: int, limit: int) -> list[Agency]:
        return await self.db.run(lambda s: agency_store.list_agencies(
            s, offset=offset, limit=limit))

    async def set_official_roles(self, p: auth.Principal, *, person: str, agency: str,
                                 roles: list[str]) -> Official | None:
        """Sets a person's roles in an agency (no roles: no longer an official, None)."""
        # Only an admin of that agency (or a platform admin service) grants roles.
        if not ((p.kind == auth.OFFICIAL and "admin" in p.roles and p.agency == agency)
                or (p.kind == auth.SERVICE and p.is_admin)):
            raise PermissionDenied("only an admin of that agency grants roles",
                                   reason="AGENCY_ADMIN_ONLY")

        def work(s: Session) -> Official | None:
            who = access.get_person(s, person)
            code = agency.removeprefix("agencies/")
            if agency_store.get(s, code) is None:
                raise InvalidArgument(fields={"official.agency": "must name an existing agency"})
            bad = [r for r in roles if r not in domain.ROLES]
            if bad:
                raise InvalidArgument(fields={"official.roles": f"unknown roles {bad}"})
            return agency_store.set_roles(
                s, who.id, code, tuple(sorted(set(roles), key=domain.ROLES.index)))

        return await self.db.run(work)

    async def list_officials(self, p: auth.Principal, agency: str, *, offset: int,
                             limit: int) -> list[Official]:
        access.require_official_lister(p, agency)
        return await self.db.run(lambda s: agency_store.list_officials(
            s, agency.removeprefix("agencies/"), offset=offset, limit=limit))
