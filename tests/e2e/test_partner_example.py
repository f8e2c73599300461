"""The example partner client (examples/partner_client.py, docs/partners.md) against the
session's stack: a platform admin creates the partner and registers its public key; the
example's functions get a token with a signed assertion, list the catalogue, verify a
citizen's compact certificate from the trust bundle, and submit for a citizen: refused
(NO_DELEGATION, nothing written) until the citizen grants a delegation, then submitted
under it and completed, the submission in the citizen's access records; a replayed
assertion is refused."""

from __future__ import annotations

import time
import uuid

import grpc
import pytest
from google.protobuf import timestamp_pb2

from examples import partner_client as example
from govflow.certificates.v1 import certificates_pb2 as cpb
from govflow.identity.v1 import identity_pb2 as ipb
from govflow.matters.v1 import matters_pb2 as mpb
from tests.e2e.helpers import citizen, new_senior, person_name, wait_done
from tests.stack import Stack


async def test_partner_example(stack: Stack) -> None:
    admin = await stack.service_md()
    client_id = f"example-{uuid.uuid4().hex[:8]}"
    created = await stack.identity.CreatePartner(ipb.CreatePartnerRequest(partner=ipb.Partner(
        client_id=client_id, display_name="Example partner",
        scopes=["certificates.verify", "applications.submit"])), metadata=admin)
    key = example.generate_key()
    added = await stack.identity.AddPartnerKey(ipb.AddPartnerKeyRequest(
        name=created.partner.name, public_jwk=example.public_jwk(key, "2026-01")), metadata=admin)
    assert added.kid == "2026-01"

    identity = stack.channels["identity"]
    token = await example.get_token(identity, client_id, key, "2026-01")
    matters = await example.list_matters(stack.channels["matters"], token)
    assert "matters/senior-citizen-card" in matters

    # A citizen hands the partner the compact form of a certificate; the partner verifies it
    # from the issuers' published keys and status lists alone.
    holder = person_name(stack, "wang-fang")
    md = await citizen(stack, "wang-fang")
    compact = await stack.certificates.GetCompactCertificate(cpb.GetCompactCertificateRequest(
        name=stack.seeded.certificates[0]), metadata=md)  # type: ignore[attr-defined]
    valid, lines = await example.verify_certificate(stack.settings.certificates_addr,
                                                    compact.token, holder=holder)
    assert valid, lines
    valid, lines = await example.verify_certificate(stack.settings.certificates_addr,
                                                    compact.token, holder="persons/someone-else")
    assert not valid and any("HOLDER_MISMATCH" in line for line in lines), lines

    # Each assertion is single-use: the same one twice is a replay.
    assertion = example.client_assertion(client_id, key, "2026-01")
    request = ipb.AuthenticatePartnerWithAssertionRequest(
        client_assertion_type=example.JWT_BEARER, client_assertion=assertion)
    await stack.identity.AuthenticatePartnerWithAssertion(request)
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await stack.identity.AuthenticatePartnerWithAssertion(request)
    assert exc.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_partner_example_submits_for_a_citizen_under_a_delegation(stack: Stack) -> None:
    admin = await stack.service_md()
    client_id = f"example-{uuid.uuid4().hex[:8]}"
    partner = (await stack.identity.CreatePartner(ipb.CreatePartnerRequest(
        partner=ipb.Partner(client_id=client_id, display_name="Example partner",
                            scopes=["applications.submit"])), metadata=admin)).partner.name
    key = example.generate_key()
    await stack.identity.AddPartnerKey(ipb.AddPartnerKeyRequest(
        name=partner, public_jwk=example.public_jwk(key, "2026-01")), metadata=admin)
    token = await example.get_token(stack.channels["identity"], client_id, key, "2026-01")
    senior, senior_md = await new_senior(stack)
    card = "matters/senior-citizen-card"

    # No delegation yet: refused, and nothing written (no application, no access record).
    with pytest.raises(example.NoDelegation):
        await example.submit_for(stack.channels["matters"], token, applicant=senior.name,
                                 matter=card)
    listed = await stack.matters.ListApplications(mpb.ListApplicationsRequest(),
                                                  metadata=senior_md)
    assert not listed.applications
    uses = await stack.identity.ListDelegationUses(ipb.ListDelegationUsesRequest(
        parent=f"{senior.name}/delegations/-"), metadata=senior_md)
    assert not uses.uses

    # The citizen delegates the senior card to the partner for a day.
    until = timestamp_pb2.Timestamp(seconds=int(time.time()) + 86400)
    d = (await stack.identity.CreateDelegation(ipb.CreateDelegationRequest(
        parent=senior.name, delegation=ipb.Delegation(delegate=partner, matters=[card],
                                                      expire_time=until)),
        metadata=senior_md)).delegation
    mine = await example.my_delegations(stack.channels["identity"], client_id, token)
    assert [x.name for x in mine] == [d.name]
    app = await example.submit_for(stack.channels["matters"], token, applicant=senior.name,
                                   matter=card)
    assert app.submitted_by == partner and app.delegation == d.name
    done = await wait_done(stack, senior_md, app.name)
    assert done.status == mpb.APPLICATION_STATUS_COMPLETED, [e.message for e in done.timeline]
    assert done.submitted_by == partner and done.delegation == d.name
    uses = await stack.identity.ListDelegationUses(ipb.ListDelegationUsesRequest(
        parent=d.name), metadata=senior_md)
    assert [(u.action, u.partner) for u in uses.uses] == [("SubmitApplication", partner)]
