"""IdentityService servicer: proto in, use case, proto out."""

from __future__ import annotations

import datetime as dt
from typing import cast

import grpc
from google.protobuf import timestamp_pb2

from govflow import auth, log
from govflow.errors import InvalidArgument
from govflow.identity.v1 import identity_pb2 as pb
from govflow.identity.v1 import identity_pb2_grpc
from govflow.paging import next_token, page, parse_filter
from services.identity import access, domain
from services.identity.client_address import FORWARDED_FOR, Network, client_address
from services.identity.domain import (
    Agency,
    Delegation,
    DelegationUse,
    Official,
    Organisation,
    Partner,
    Person,
    Representation,
    SigningKey,
)
from services.identity.service import Identity
from services.identity.tokens import TokenSet, partner_agency

PUBLIC_METHODS = {"Login", "AuthenticatePartner", "AuthenticatePartnerWithAssertion",
                  "RefreshToken", "Logout", "ListPublicKeys", "ListAgencies"}
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

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
    ts.FromDatetime(t)  # type: ignore[arg-type]  # an aware datetime; the stubs ask for a naive one
    return ts


def person_pb(row: Person, viewer: auth.Principal | None) -> pb.Person:
    full = access.may_see_full_id(viewer, row.id)
    return pb.Person(
        name=f"persons/{row.id}",
        id_number=row.id_number if full else domain.mask_id_number(row.id_number),
        display_name=row.display_name,
        assurance_level=_ASSURANCE.get(row.assurance_level, pb.ASSURANCE_LEVEL_ACCOUNT),
        birth_date=domain.birth_date(row.id_number).isoformat(),
        create_time=_ts(row.create_time),
    )


def representation_pb(rep: Representation, org: Organisation) -> pb.Representation:
    return pb.Representation(
        name=f"organisations/{org.id}/representatives/{rep.person_id}",
        organisation=f"organisations/{org.id}", organisation_display_name=org.display_name,
        person=f"persons/{rep.person_id}", expire_time=_ts(rep.expire_time),
        legal_representative=rep.person_id == org.legal_representative)


def partner_pb(row: Partner) -> pb.Partner:
    return pb.Partner(name=f"partners/{row.client_id}", client_id=row.client_id,
                      display_name=row.display_name, agency=partner_agency(row),
                      scopes=list(row.scopes), disabled=row.disabled)


def signing_key_pb(row: SigningKey) -> pb.SigningKey:
    return pb.SigningKey(name=f"signingKeys/{row.kid}", kid=row.kid, active=row.active,
                         create_time=_ts(row.create_time))


def org_pb(row: Organisation) -> pb.Organisation:
    return pb.Organisation(name=f"organisations/{row.id}", credit_code=row.credit_code,
                           display_name=row.display_name,
                           legal_representative=f"persons/{row.legal_representative}",
                           create_time=_ts(row.create_time))


def agency_pb(row: Agency) -> pb.Agency:
    return pb.Agency(name=f"agencies/{row.code}", code=row.code, display_name=row.display_name,
                     division_code=row.division_code, level=_LEVEL[row.level],
                     parent=f"agencies/{row.parent}" if row.parent else "",
                     display_name_en=row.display_name_en)


def official_pb(row: Official) -> pb.Official:
    return pb.Official(name=f"agencies/{row.agency_code}/officials/{row.person_id}",
                       person=f"persons/{row.person_id}", agency=f"agencies/{row.agency_code}",
                       roles=[_ROLE[r] for r in row.roles])


def delegation_pb(row: Delegation) -> pb.Delegation:
    out = pb.Delegation(name=row.name, delegate=row.delegate, grantor=row.grantor,
                        matters=[f"matters/{m}" for m in row.matters],
                        purposes=list(row.purposes), expire_time=_ts(row.expire_time),
                        create_time=_ts(row.create_time), granted_by=row.granted_by)
    if row.revoke_time is not None:
        out.revoke_time.CopyFrom(_ts(row.revoke_time))
    return out


def delegation_use_pb(row: DelegationUse) -> pb.DelegationUse:
    return pb.DelegationUse(name=f"{row.delegation}/uses/{row.id}", delegation=row.delegation,
                            partner=row.partner, action=row.action,
                            matter=f"matters/{row.matter}" if row.matter else "",
                            purpose=row.purpose, target=row.target, time=_ts(row.time),
                            request_id=row.request_id)


def _tokens(t: TokenSet) -> pb.TokenSet:
    return pb.TokenSet(access_token=t[0], refresh_token=t[1], expires_in=t[2])



class IdentityApi(identity_pb2_grpc.IdentityServiceServicer):
    def __init__(self, identity: Identity, *, trusted_proxies: tuple[Network, ...] = ()) -> None:
        self.id = identity
        self.trusted_proxies = trusted_proxies

    def _client_address(self, context: object) -> str:
        """Where the call comes from; x-forwarded-for only from a trusted proxy."""
        ctx = cast("grpc.aio.ServicerContext[object, object]", context)
        forwarded = next((str(v) for k, v in ctx.invocation_metadata() or ()
                          if k == FORWARDED_FOR), None)
        return client_address(ctx.peer(), forwarded, self.trusted_proxies)

    async def CreatePerson(self, request: pb.CreatePersonRequest, context: object) -> pb.CreatePersonResponse:
        p = auth.principal()
        person = request.person
        row = await self.id.persons.create(
            p, id_number=person.id_number, display_name=person.display_name,
            assurance=_ASSURANCE_BACK.get(person.assurance_level, "account"),
            password=request.password, request_id=request.request_id)
        return pb.CreatePersonResponse(person=person_pb(row, p))

    async def GetPerson(self, request: pb.GetPersonRequest, context: object) -> pb.GetPersonResponse:
        p = auth.principal()
        row = await self.id.persons.get(p, request.name)
        return pb.GetPersonResponse(person=person_pb(row, p))

    async def EnrollTotp(self, request: pb.EnrollTotpRequest, context: object) -> pb.EnrollTotpResponse:
        """Starts TOTP enrolment for the caller; the secret is returned only here."""
        secret, uri = await self.id.persons.enroll_totp(auth.principal(), request.person)
        return pb.EnrollTotpResponse(secret=secret, provisioning_uri=uri)

    async def ConfirmTotp(self, request: pb.ConfirmTotpRequest, context: object) -> pb.ConfirmTotpResponse:
        """Turns the pending TOTP secret on once the caller shows a code from it."""
        await self.id.persons.confirm_totp(auth.principal(), request.person,
                                           request.one_time_code)
        return pb.ConfirmTotpResponse()

    async def ResetTotp(self, request: pb.ResetTotpRequest, context: object) -> pb.ResetTotpResponse:
        """A platform admin removes a person's TOTP factor and signs them out everywhere."""
        p = auth.principal()
        had = await self.id.persons.reset_totp(p, request.person, request.reason)
        log.get_logger().warning("identity.totp_reset", person=request.person, by=p.subject,
                                 reason=request.reason, was_enrolled=had)
        return pb.ResetTotpResponse(was_enrolled=had)

    async def ListPersons(self, request: pb.ListPersonsRequest, context: object) -> pb.ListPersonsResponse:
        p = auth.principal()
        access.require_person_lister(p)  # before the filter: such a caller learns nothing more
        f = parse_filter(request.filter, {"id_number", "assurance_level"})
        assurance = None
        if "assurance_level" in f:
            assurance = f["assurance_level"].lower()
            if assurance not in domain.ASSURANCE_LEVELS:
                raise InvalidArgument(fields={
                    "filter": "assurance_level must be ACCOUNT, REAL_NAME or FACE"})
        offset, limit = page(request.page_size, request.page_token)
        rows = await self.id.persons.list_persons(
            p, offset=offset, limit=limit, id_number=f.get("id_number"), assurance=assurance)
        return pb.ListPersonsResponse(persons=[person_pb(r, p) for r in rows],
                                      next_page_token=next_token(offset, limit, len(rows)))

    async def CreateOrganisation(self, request: pb.CreateOrganisationRequest, context: object) -> pb.CreateOrganisationResponse:
        o = request.organisation
        row = await self.id.organisations.create(
            auth.principal(), credit_code=o.credit_code, display_name=o.display_name,
            legal_rep=o.legal_representative, request_id=request.request_id)
        return pb.CreateOrganisationResponse(organisation=org_pb(row))

    async def GetOrganisation(self, request: pb.GetOrganisationRequest, context: object) -> pb.GetOrganisationResponse:
        row = await self.id.organisations.get(auth.principal(), request.name)
        return pb.GetOrganisationResponse(organisation=org_pb(row))

    async def GrantRepresentation(self, request: pb.GrantRepresentationRequest, context: object) -> pb.GrantRepresentationResponse:
        """Lets a person act for an organisation until a time (legal rep or platform admin)."""
        expire = request.expire_time.ToDatetime(tzinfo=dt.UTC) \
            if request.HasField("expire_time") else None
        rep, org = await self.id.organisations.grant_representation(
            auth.principal(), request.organisation, request.person, expire)
        return pb.GrantRepresentationResponse(representation=representation_pb(rep, org))

    async def RevokeRepresentation(self, request: pb.RevokeRepresentationRequest, context: object) -> pb.RevokeRepresentationResponse:
        """Withdraws a person's authority to act for an organisation."""
        await self.id.organisations.revoke_representation(
            auth.principal(), request.organisation, request.person)
        return pb.RevokeRepresentationResponse()

    async def ListRepresentations(self, request: pb.ListRepresentationsRequest, context: object) -> pb.ListRepresentationsResponse:
        """Who may act for an organisation, or what a person may act for."""
        offset, limit = page(request.page_size, request.page_token)
        rows = await self.id.organisations.list_representations(
            auth.principal(), request.parent, show_expired=request.show_expired,
            offset=offset, limit=limit)
        return pb.ListRepresentationsResponse(
            representations=[representation_pb(r, o) for r, o in rows],
            next_page_token=next_token(offset, limit, len(rows)))

    async def CreateAgency(self, request: pb.CreateAgencyRequest, context: object) -> pb.CreateAgencyResponse:
        """Creates an agency (platform admins only)."""
        a = request.agency
        row = await self.id.agencies.create(
            auth.principal(), code=a.code, display_name=a.display_name.strip(),
            division=a.division_code, level=_LEVEL_BACK.get(a.level, ""), parent=a.parent,
            display_name_en=a.display_name_en.strip())
        return pb.CreateAgencyResponse(agency=agency_pb(row))

    async def ListAgencies(self, request: pb.ListAgenciesRequest, context: object) -> pb.ListAgenciesResponse:
        offset, limit = page(request.page_size, request.page_token)
        parse_filter(request.filter, set())
        rows = await self.id.agencies.list_agencies(offset=offset, limit=limit)
        return pb.ListAgenciesResponse(agencies=[agency_pb(r) for r in rows],
                                       next_page_token=next_token(offset, limit, len(rows)))

    async def SetOfficialRoles(self, request: pb.SetOfficialRolesRequest, context: object) -> pb.SetOfficialRolesResponse:
        o = request.official
        roles = [_ROLE_BACK[r] for r in o.roles if r in _ROLE_BACK]
        row = await self.id.agencies.set_official_roles(
            auth.principal(), person=o.person, agency=o.agency, roles=roles)
        return pb.SetOfficialRolesResponse(official=official_pb(row) if row else pb.Official(
            person=o.person, agency=o.agency))

    async def ListOfficials(self, request: pb.ListOfficialsRequest, context: object) -> pb.ListOfficialsResponse:
        access.require_official_lister(auth.principal(), request.parent)  # before the page token
        offset, limit = page(request.page_size, request.page_token)
        rows = await self.id.agencies.list_officials(auth.principal(), request.parent,
                                                     offset=offset, limit=limit)
        return pb.ListOfficialsResponse(officials=[official_pb(r) for r in rows],
                                        next_page_token=next_token(offset, limit, len(rows)))

    async def CreatePartner(self, request: pb.CreatePartnerRequest, context: object) -> pb.CreatePartnerResponse:
        """Creates a partner (platform admins only); the secret is returned once."""
        pr = request.partner
        row, secret = await self.id.partners.create(
            auth.principal(), client_id=pr.client_id, display_name=pr.display_name,
            agency=pr.agency, scopes=list(pr.scopes))
        return pb.CreatePartnerResponse(partner=partner_pb(row), client_secret=secret)

    async def RotatePartnerSecret(self, request: pb.RotatePartnerSecretRequest, context: object) -> pb.RotatePartnerSecretResponse:
        """Replaces a partner's secret (platform admins only); the old one stops working."""
        row, secret = await self.id.partners.rotate_secret(auth.principal(), request.name)
        return pb.RotatePartnerSecretResponse(partner=partner_pb(row), client_secret=secret)

    async def DisablePartner(self, request: pb.DisablePartnerRequest, context: object) -> pb.DisablePartnerResponse:
        """Disables a partner (platform admins only): no new tokens, no refreshes."""
        row = await self.id.partners.disable(auth.principal(), request.name)
        return pb.DisablePartnerResponse(partner=partner_pb(row))

    async def AddPartnerKey(self, request: pb.AddPartnerKeyRequest, context: object) -> pb.AddPartnerKeyResponse:
        """Registers a public JWK for a partner's client assertions (platform admins only)."""
        kid = await self.id.partners.add_key(auth.principal(), request.name, request.public_jwk)
        return pb.AddPartnerKeyResponse(kid=kid)

    async def RemovePartnerKey(self, request: pb.RemovePartnerKeyRequest, context: object) -> pb.RemovePartnerKeyResponse:
        """Removes a partner's key (platform admins only)."""
        await self.id.partners.remove_key(auth.principal(), request.name, request.kid)
        return pb.RemovePartnerKeyResponse()

    async def CreateDelegation(self, request: pb.CreateDelegationRequest, context: object) -> pb.CreateDelegationResponse:
        """Lets a partner act for the caller (or the organisation they legally represent)."""
        d = request.delegation
        expire = d.expire_time.ToDatetime(tzinfo=dt.UTC) if d.HasField("expire_time") else None
        row = await self.id.delegations.create(
            auth.principal(), request.parent, delegate=d.delegate, matters=list(d.matters),
            purposes=list(d.purposes), expire_time=expire, request_id=request.request_id)
        return pb.CreateDelegationResponse(delegation=delegation_pb(row))

    async def RevokeDelegation(self, request: pb.RevokeDelegationRequest, context: object) -> pb.RevokeDelegationResponse:
        """Revokes a delegation at once (the grantor only)."""
        row = await self.id.delegations.revoke(auth.principal(), request.name)
        return pb.RevokeDelegationResponse(delegation=delegation_pb(row))

    async def ListDelegations(self, request: pb.ListDelegationsRequest, context: object) -> pb.ListDelegationsResponse:
        """A grantor's delegations, or those a partner holds."""
        offset, limit = page(request.page_size, request.page_token)
        rows = await self.id.delegations.list_delegations(
            auth.principal(), request.parent, show_inactive=request.show_inactive,
            offset=offset, limit=limit)
        return pb.ListDelegationsResponse(delegations=[delegation_pb(r) for r in rows],
                                          next_page_token=next_token(offset, limit, len(rows)))

    async def UseDelegation(self, request: pb.UseDelegationRequest, context: object) -> pb.UseDelegationResponse:
        """Records a partner's action for a grantor under a live delegation, or refuses it."""
        use = await self.id.delegations.use(
            auth.principal(), grantor=request.grantor, matter=request.matter,
            purpose=request.purpose, action=request.action, target=request.target)
        return pb.UseDelegationResponse(use=delegation_use_pb(use))

    async def ListDelegationUses(self, request: pb.ListDelegationUsesRequest, context: object) -> pb.ListDelegationUsesResponse:
        """The grantor's access records: what partners did under its delegations."""
        offset, limit = page(request.page_size, request.page_token)
        rows = await self.id.delegations.uses(auth.principal(), request.parent,
                                              offset=offset, limit=limit)
        return pb.ListDelegationUsesResponse(uses=[delegation_use_pb(r) for r in rows],
                                             next_page_token=next_token(offset, limit, len(rows)))

    async def Login(self, request: pb.LoginRequest, context: object) -> pb.LoginResponse:
        t = await self.id.tokens.login(
            id_number=request.id_number, password=request.password, agency=request.agency,
            acting_for=request.acting_for, one_time_code=request.one_time_code,
            client_address=self._client_address(context))
        return pb.LoginResponse(tokens=_tokens(t))

    async def AuthenticatePartner(self, request: pb.AuthenticatePartnerRequest, context: object) -> pb.AuthenticatePartnerResponse:
        t = await self.id.tokens.authenticate_partner(request.client_id, request.client_secret,
                                                      self._client_address(context))
        return pb.AuthenticatePartnerResponse(tokens=_tokens(t))

    async def AuthenticatePartnerWithAssertion(self, request: pb.AuthenticatePartnerWithAssertionRequest, context: object) -> pb.AuthenticatePartnerWithAssertionResponse:
        """OAuth 2.0 client credentials with private_key_jwt (RFC 7523)."""
        if request.client_assertion_type not in ("", JWT_BEARER):
            raise InvalidArgument(fields={"client_assertion_type": f"must be {JWT_BEARER}"})
        t = await self.id.tokens.authenticate_partner_by_assertion(
            request.client_assertion, self._client_address(context))
        return pb.AuthenticatePartnerWithAssertionResponse(tokens=_tokens(t))

    async def RefreshToken(self, request: pb.RefreshTokenRequest, context: object) -> pb.RefreshTokenResponse:
        t = await self.id.tokens.refresh(request.refresh_token)
        return pb.RefreshTokenResponse(tokens=_tokens(t))

    async def Logout(self, request: pb.LogoutRequest, context: object) -> pb.LogoutResponse:
        await self.id.tokens.logout(request.refresh_token)
        return pb.LogoutResponse()

    async def ListPublicKeys(self, request: pb.ListPublicKeysRequest, context: object) -> pb.ListPublicKeysResponse:
        return pb.ListPublicKeysResponse(jwks_json=await self.id.keys.jwks())

    async def RotateSigningKey(self, request: pb.RotateSigningKeyRequest, context: object) -> pb.RotateSigningKeyResponse:
        """Makes a new active signing key; older keys keep verifying until retired."""
        row = await self.id.keys.rotate(auth.principal())
        return pb.RotateSigningKeyResponse(signing_key=signing_key_pb(row))

    async def RetireSigningKey(self, request: pb.RetireSigningKeyRequest, context: object) -> pb.RetireSigningKeyResponse:
        """Stops publishing an inactive signing key."""
        await self.id.keys.retire(auth.principal(), request.name)
        return pb.RetireSigningKeyResponse()
