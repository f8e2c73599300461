"""IdentityService servicer: proto in, use case, proto out."""

from __future__ import annotations

import datetime as dt

from google.protobuf import timestamp_pb2
from sqlmodel import Session

from govflow import auth, log
from govflow.errors import InvalidArgument, NotFound, PermissionDenied
from govflow.identity.v1 import identity_pb2 as pb
from govflow.identity.v1 import identity_pb2_grpc
from govflow.paging import next_token, page, parse_filter
from services.identity import domain
from services.identity.service import (
    Identity,
    is_platform_admin,
    partner_agency,
    require_admin,
    require_platform_admin,
)
from services.identity.store import (
    AgencyRow,
    OfficialRow,
    OrganisationRow,
    PartnerRow,
    PersonRow,
    RepresentationRow,
    SigningKeyRow,
)

PUBLIC_METHODS = {"Login", "AuthenticatePartner", "RefreshToken", "Logout", "ListPublicKeys",
                  "ListAgencies"}

_ASSURANCE = {"account": pb.ASSURANCE_LEVEL_ACCOUNT, "real_name": pb.ASSURANCE_LEVEL_REAL_NAME,
              "face": pb.ASSURANCE_LEVEL_FACE}
_ASSURANCE_BACK = {v: k for k, v in _ASSURANCE.items()}
_LEVEL = {"province": pb.AGENCY_LEVEL_PROVINCE, "city": pb.AGENCY_LEVEL_CITY,
          "county": pb.AGENCY_LEVEL_COUNTY}
_LEVEL_BACK = {v: k for k, v in _LEVEL.items()}
_ROLE = {r: getattr(pb, f"ROLE_{r.upper()}") for r in domain.ROLES}
_ROLE_BACK = {v: k for k, v in _ROLE.items()}


def _ts(t: object) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(t)  # type: ignore[arg-type]
    return ts


def _may_see_full_id(p: auth.Principal | None, person_id: str) -> bool:
    if p is None:
        return False
    if p.subject == f"persons/{person_id}":
        return True
    if p.kind in (auth.SERVICE, auth.PARTNER) and p.has_scope(auth.SCOPE_PERSONS_READ):
        return True
    # Acceptors check identity at the counter-less desk; admins manage accounts.
    return p.kind == auth.OFFICIAL and bool({"acceptor", "admin"} & set(p.roles))


def person_pb(row: PersonRow, viewer: auth.Principal | None) -> pb.Person:
    full = _may_see_full_id(viewer, row.id)
    return pb.Person(
        name=f"persons/{row.id}",
        id_number=row.id_number if full else domain.mask_id_number(row.id_number),
        display_name=row.display_name,
        assurance_level=_ASSURANCE.get(row.assurance_level, pb.ASSURANCE_LEVEL_ACCOUNT),
        birth_date=domain.birth_date(row.id_number).isoformat(),
        create_time=_ts(row.create_time),
    )


def _sees_persons(p: auth.Principal) -> bool:
    """Who may look people up at all (others see only themselves)."""
    return p.kind in (auth.OFFICIAL, auth.SERVICE) or p.has_scope(auth.SCOPE_PERSONS_READ)


def _own_person(s: Session, identity: Identity, p: auth.Principal, name: str) -> PersonRow:
    """The person ``name`` when it is the caller; NOT_FOUND for those who may not see
    it (never reveal that it exists), PERMISSION_DENIED for those who may."""
    if p.kind in (auth.PERSON, auth.OFFICIAL) and p.subject == name:
        return identity.get_person(s, name)
    if not _sees_persons(p):
        raise NotFound(f"{name} not found", reason="PERSON_NOT_FOUND")
    identity.get_person(s, name)
    raise PermissionDenied("only the person themself may do this", reason="OWNER_ONLY")


def _sees_org(s: Session, identity: Identity, p: auth.Principal, org: OrganisationRow) -> bool:
    return (p.kind in (auth.OFFICIAL, auth.SERVICE) or p.is_admin
            or (p.kind == auth.PERSON
                and identity.represents(s, p.subject.removeprefix("persons/"), org.id)))


def _managed_org(s: Session, identity: Identity, p: auth.Principal,
                 name: str) -> OrganisationRow:
    """The organisation when the caller is its legal representative or a platform admin."""
    org = identity.get_organisation(s, name)
    if is_platform_admin(p) or p.subject == f"persons/{org.legal_representative}":
        return org
    if not _sees_org(s, identity, p, org):
        raise NotFound(f"{name} not found", reason="ORGANISATION_NOT_FOUND")
    raise PermissionDenied("only the legal representative or a platform admin may do this",
                           reason="NOT_LEGAL_REPRESENTATIVE")


def representation_pb(rep: RepresentationRow, org: OrganisationRow) -> pb.Representation:
    return pb.Representation(
        name=f"organisations/{org.id}/representatives/{rep.person_id}",
        organisation=f"organisations/{org.id}", organisation_display_name=org.display_name,
        person=f"persons/{rep.person_id}", expire_time=_ts(rep.expire_time),
        legal_representative=rep.person_id == org.legal_representative)


def partner_pb(row: PartnerRow) -> pb.Partner:
    return pb.Partner(name=f"partners/{row.client_id}", client_id=row.client_id,
                      display_name=row.display_name, agency=partner_agency(row),
                      scopes=list(filter(None, row.scopes.split(","))), disabled=row.disabled)


def signing_key_pb(row: SigningKeyRow) -> pb.SigningKey:
    return pb.SigningKey(name=f"signingKeys/{row.kid}", kid=row.kid, active=row.active,
                         create_time=_ts(row.create_time))


def org_pb(row: OrganisationRow) -> pb.Organisation:
    return pb.Organisation(name=f"organisations/{row.id}", credit_code=row.credit_code,
                           display_name=row.display_name,
                           legal_representative=f"persons/{row.legal_representative}",
                           create_time=_ts(row.create_time))


def agency_pb(row: AgencyRow) -> pb.Agency:
    return pb.Agency(name=f"agencies/{row.code}", code=row.code, display_name=row.display_name,
                     division_code=row.division_code, level=_LEVEL[row.level],
                     parent=f"agencies/{row.parent}" if row.parent else "")


def official_pb(row: OfficialRow) -> pb.Official:
    return pb.Official(name=f"agencies/{row.agency_code}/officials/{row.person_id}",
                       person=f"persons/{row.person_id}", agency=f"agencies/{row.agency_code}",
                       roles=[_ROLE[r] for r in row.roles.split(",") if r])


def _tokens(t: tuple[str, str, int]) -> pb.TokenSet:
    return pb.TokenSet(access_token=t[0], refresh_token=t[1], expires_in=t[2])


class IdentityApi(identity_pb2_grpc.IdentityServiceServicer):
    def __init__(self, identity: Identity) -> None:
        self.id = identity
        self.db = identity.db

    async def CreatePerson(self, request: pb.CreatePersonRequest, context: object) -> pb.CreatePersonResponse:
        p = auth.principal()
        if not (p.is_admin or p.has_scope("persons.write")):
            raise PermissionDenied("only administrators create persons", reason="ADMIN_ONLY")
        person = request.person
        row = await self.db.run(lambda s: self.id.create_person(
            s, id_number=person.id_number, display_name=person.display_name,
            assurance=_ASSURANCE_BACK.get(person.assurance_level, "account"),
            password=request.password, request_id=request.request_id))
        return pb.CreatePersonResponse(person=person_pb(row, p))

    async def GetPerson(self, request: pb.GetPersonRequest, context: object) -> pb.GetPersonResponse:
        p = auth.principal()
        own = p.kind in (auth.PERSON, auth.OFFICIAL) and p.subject == request.name
        if not (own or _sees_persons(p)):
            raise NotFound(f"{request.name} not found", reason="PERSON_NOT_FOUND")
        row = await self.db.run(lambda s: self.id.get_person(s, request.name))
        return pb.GetPersonResponse(person=person_pb(row, p))

    async def EnrollTotp(self, request: pb.EnrollTotpRequest, context: object) -> pb.EnrollTotpResponse:
        """Starts TOTP enrolment for the caller; the secret is returned only here."""
        p = auth.principal()
        secret, uri = await self.db.run(lambda s: self.id.enroll_totp(
            s, _own_person(s, self.id, p, request.person)))
        return pb.EnrollTotpResponse(secret=secret, provisioning_uri=uri)

    async def ConfirmTotp(self, request: pb.ConfirmTotpRequest, context: object) -> pb.ConfirmTotpResponse:
        """Turns the pending TOTP secret on once the caller shows a code from it."""
        p = auth.principal()
        await self.db.run(lambda s: self.id.confirm_totp(
            s, _own_person(s, self.id, p, request.person), request.one_time_code))
        return pb.ConfirmTotpResponse()

    async def ResetTotp(self, request: pb.ResetTotpRequest, context: object) -> pb.ResetTotpResponse:
        """A platform admin removes a person's TOTP factor and signs them out everywhere."""
        p = auth.principal()
        require_platform_admin(p)
        problems = {}
        if not request.person.startswith("persons/"):
            problems["person"] = "must be persons/{id}"
        if not request.reason.strip():
            problems["reason"] = "required (it is logged)"
        if problems:
            raise InvalidArgument(fields=problems)
        had = await self.db.run(lambda s: self.id.reset_totp(
            s, self.id.get_person(s, request.person)))
        log.get_logger().warning("identity.totp_reset", person=request.person, by=p.subject,
                                 reason=request.reason, was_enrolled=had)
        return pb.ResetTotpResponse(was_enrolled=had)

    async def ListPersons(self, request: pb.ListPersonsRequest, context: object) -> pb.ListPersonsResponse:
        p = auth.principal()
        if not (p.is_admin or p.has_scope(auth.SCOPE_PERSONS_READ)):
            raise PermissionDenied("only administrators list persons", reason="ADMIN_ONLY")
        f = parse_filter(request.filter, {"id_number", "assurance_level"})
        assurance = None
        if "assurance_level" in f:
            assurance = f["assurance_level"].lower()
            if assurance not in domain.ASSURANCE_LEVELS:
                raise InvalidArgument(fields={
                    "filter": "assurance_level must be ACCOUNT, REAL_NAME or FACE"})
        offset, limit = page(request.page_size, request.page_token)
        rows = await self.db.run(lambda s: self.id.list_persons(
            s, offset=offset, limit=limit, id_number=f.get("id_number"), assurance=assurance))
        return pb.ListPersonsResponse(persons=[person_pb(r, p) for r in rows],
                                      next_page_token=next_token(offset, limit, len(rows)))

    async def CreateOrganisation(self, request: pb.CreateOrganisationRequest, context: object) -> pb.CreateOrganisationResponse:
        require_admin(auth.principal())
        o = request.organisation
        row = await self.db.run(lambda s: self.id.create_organisation(
            s, credit_code=o.credit_code, display_name=o.display_name,
            legal_rep=o.legal_representative, request_id=request.request_id))
        return pb.CreateOrganisationResponse(organisation=org_pb(row))

    async def GetOrganisation(self, request: pb.GetOrganisationRequest, context: object) -> pb.GetOrganisationResponse:
        p = auth.principal()

        def work(s: Session) -> OrganisationRow:
            row = self.id.get_organisation(s, request.name)
            if not _sees_org(s, self.id, p, row):
                raise NotFound(f"{request.name} not found", reason="ORGANISATION_NOT_FOUND")
            return row

        row = await self.db.run(work)
        return pb.GetOrganisationResponse(organisation=org_pb(row))

    async def GrantRepresentation(self, request: pb.GrantRepresentationRequest, context: object) -> pb.GrantRepresentationResponse:
        """Lets a person act for an organisation until a time (legal rep or platform admin)."""
        p = auth.principal()
        expire = request.expire_time.ToDatetime(tzinfo=dt.UTC) \
            if request.HasField("expire_time") else None

        def work(s: Session) -> pb.Representation:
            org = _managed_org(s, self.id, p, request.organisation)
            rep = self.id.grant_representation(s, request.organisation, request.person, expire)
            return representation_pb(rep, org)

        return pb.GrantRepresentationResponse(representation=await self.db.run(work))

    async def RevokeRepresentation(self, request: pb.RevokeRepresentationRequest, context: object) -> pb.RevokeRepresentationResponse:
        """Withdraws a person's authority to act for an organisation."""
        p = auth.principal()

        def work(s: Session) -> None:
            org = _managed_org(s, self.id, p, request.organisation)
            self.id.revoke_representation(s, org, request.person)

        await self.db.run(work)
        return pb.RevokeRepresentationResponse()

    async def ListRepresentations(self, request: pb.ListRepresentationsRequest, context: object) -> pb.ListRepresentationsResponse:
        """Who may act for an organisation, or what a person may act for."""
        p = auth.principal()
        offset, limit = page(request.page_size, request.page_token)
        parent = request.parent

        def work(s: Session) -> list[pb.Representation]:
            if parent.startswith("organisations/"):
                if p.kind in (auth.SERVICE, auth.PARTNER) and p.has_scope(auth.SCOPE_PERSONS_READ):
                    # Read-only, for the worker: who has an interest in an organisation's
                    # application (its officers may not decide it).
                    org = self.id.get_organisation(s, parent)
                else:
                    org = _managed_org(s, self.id, p, parent)
                rows = self.id.list_representations(
                    s, organisation_id=org.id, show_expired=request.show_expired,
                    offset=offset, limit=limit)
            elif parent.startswith("persons/"):
                if is_platform_admin(p):
                    person = self.id.get_person(s, parent)
                else:
                    person = _own_person(s, self.id, p, parent)
                rows = self.id.list_representations(
                    s, person_id=person.id, show_expired=request.show_expired,
                    offset=offset, limit=limit)
            else:
                raise InvalidArgument(fields={
                    "parent": "must be organisations/{organisation} or persons/{person}"})
            return [representation_pb(r, o) for r, o in rows]

        reps = await self.db.run(work)
        return pb.ListRepresentationsResponse(
            representations=reps, next_page_token=next_token(offset, limit, len(reps)))

    async def CreateAgency(self, request: pb.CreateAgencyRequest, context: object) -> pb.CreateAgencyResponse:
        """Creates an agency (platform admins only)."""
        require_platform_admin(auth.principal())
        a = request.agency
        row = await self.db.run(lambda s: self.id.create_agency(
            s, code=a.code, display_name=a.display_name, division=a.division_code,
            level=_LEVEL_BACK.get(a.level, ""), parent=a.parent))
        return pb.CreateAgencyResponse(agency=agency_pb(row))

    async def ListAgencies(self, request: pb.ListAgenciesRequest, context: object) -> pb.ListAgenciesResponse:
        offset, limit = page(request.page_size, request.page_token)
        parse_filter(request.filter, set())
        rows = await self.db.run(lambda s: self.id.list_agencies(s, offset=offset, limit=limit))
        return pb.ListAgenciesResponse(agencies=[agency_pb(r) for r in rows],
                                       next_page_token=next_token(offset, limit, len(rows)))

    async def SetOfficialRoles(self, request: pb.SetOfficialRolesRequest, context: object) -> pb.SetOfficialRolesResponse:
        p = auth.principal()
        o = request.official
        # Only an admin of that agency (or a platform admin service) grants roles.
        if not ((p.kind == auth.OFFICIAL and "admin" in p.roles and p.agency == o.agency)
                or (p.kind == auth.SERVICE and p.is_admin)):
            raise PermissionDenied("only an admin of that agency grants roles",
                                   reason="AGENCY_ADMIN_ONLY")
        roles = [_ROLE_BACK[r] for r in o.roles if r in _ROLE_BACK]
        row = await self.db.run(lambda s: self.id.set_official_roles(
            s, person=o.person, agency=o.agency, roles=roles))
        return pb.SetOfficialRolesResponse(official=official_pb(row) if row else pb.Official(
            person=o.person, agency=o.agency))

    async def ListOfficials(self, request: pb.ListOfficialsRequest, context: object) -> pb.ListOfficialsResponse:
        p = auth.principal()
        if not (p.is_admin and (p.kind == auth.SERVICE or p.agency == request.parent)) and not (
                p.kind == auth.OFFICIAL and p.agency == request.parent):
            raise PermissionDenied("only that agency's officials list its officials",
                                   reason="AGENCY_ONLY")
        offset, limit = page(request.page_size, request.page_token)
        rows = await self.db.run(lambda s: self.id.list_officials(
            s, request.parent, offset=offset, limit=limit))
        return pb.ListOfficialsResponse(officials=[official_pb(r) for r in rows],
                                        next_page_token=next_token(offset, limit, len(rows)))

    async def CreatePartner(self, request: pb.CreatePartnerRequest, context: object) -> pb.CreatePartnerResponse:
        """Creates a partner (platform admins only); the secret is returned once."""
        require_platform_admin(auth.principal())
        pr = request.partner
        row, secret = await self.db.run(lambda s: self.id.create_partner(
            s, client_id=pr.client_id, display_name=pr.display_name, agency=pr.agency,
            scopes=list(pr.scopes)))
        return pb.CreatePartnerResponse(partner=partner_pb(row), client_secret=secret)

    async def RotatePartnerSecret(self, request: pb.RotatePartnerSecretRequest, context: object) -> pb.RotatePartnerSecretResponse:
        """Replaces a partner's secret (platform admins only); the old one stops working."""
        require_platform_admin(auth.principal())
        row, secret = await self.db.run(
            lambda s: self.id.rotate_partner_secret(s, request.name))
        return pb.RotatePartnerSecretResponse(partner=partner_pb(row), client_secret=secret)

    async def DisablePartner(self, request: pb.DisablePartnerRequest, context: object) -> pb.DisablePartnerResponse:
        """Disables a partner (platform admins only): no new tokens, no refreshes."""
        require_platform_admin(auth.principal())
        row = await self.db.run(lambda s: self.id.disable_partner(s, request.name))
        return pb.DisablePartnerResponse(partner=partner_pb(row))

    async def Login(self, request: pb.LoginRequest, context: object) -> pb.LoginResponse:
        t = await self.db.run(lambda s: self.id.login(
            s, id_number=request.id_number, password=request.password, agency=request.agency,
            acting_for=request.acting_for, one_time_code=request.one_time_code))
        return pb.LoginResponse(tokens=_tokens(t))

    async def AuthenticatePartner(self, request: pb.AuthenticatePartnerRequest, context: object) -> pb.AuthenticatePartnerResponse:
        t = await self.db.run(lambda s: self.id.authenticate_partner(
            s, request.client_id, request.client_secret))
        return pb.AuthenticatePartnerResponse(tokens=_tokens(t))

    async def RefreshToken(self, request: pb.RefreshTokenRequest, context: object) -> pb.RefreshTokenResponse:
        t = await self.db.run(lambda s: self.id.refresh(s, request.refresh_token))
        return pb.RefreshTokenResponse(tokens=_tokens(t))

    async def Logout(self, request: pb.LogoutRequest, context: object) -> pb.LogoutResponse:
        await self.db.run(lambda s: self.id.logout(s, request.refresh_token))
        return pb.LogoutResponse()

    async def ListPublicKeys(self, request: pb.ListPublicKeysRequest, context: object) -> pb.ListPublicKeysResponse:
        return pb.ListPublicKeysResponse(jwks_json=await self.db.run(self.id.jwks))

    async def RotateSigningKey(self, request: pb.RotateSigningKeyRequest, context: object) -> pb.RotateSigningKeyResponse:
        """Makes a new active signing key; older keys keep verifying until retired."""
        require_platform_admin(auth.principal())
        row = await self.db.run(self.id.rotate_key)
        return pb.RotateSigningKeyResponse(signing_key=signing_key_pb(row))

    async def RetireSigningKey(self, request: pb.RetireSigningKeyRequest, context: object) -> pb.RetireSigningKeyResponse:
        """Stops publishing an inactive signing key."""
        require_platform_admin(auth.principal())
        await self.db.run(lambda s: self.id.retire_key(s, request.name))
        return pb.RetireSigningKeyResponse()
