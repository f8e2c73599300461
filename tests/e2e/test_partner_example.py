"""The example partner client (examples/partner_client.py, docs/partners.md) against the
session's stack: a platform admin creates the partner and registers its public key; the
example's functions get a token with a signed assertion, list the catalogue, and verify a
citizen's compact certificate from the trust bundle; a replayed assertion is refused."""

from __future__ import annotations

import uuid

import grpc
import pytest

from examples import partner_client as example
from govflow.certificates.v1 import certificates_pb2 as cpb
from govflow.identity.v1 import identity_pb2 as ipb
from tests.e2e.helpers import citizen, person_name
from tests.stack import Stack


async def test_partner_example(stack: Stack) -> None:
    admin = await stack.service_md()
    client_id = f"example-{uuid.uuid4().hex[:8]}"
    created = await stack.identity.CreatePartner(ipb.CreatePartnerRequest(partner=ipb.Partner(
        client_id=client_id, display_name="Example partner",
        scopes=["certificates.verify"])), metadata=admin)
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
