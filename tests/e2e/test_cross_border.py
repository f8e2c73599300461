"""Cross-border recognition end to end (issue 27, item 3): a Hong Kong resident imports the
identity card Hong Kong's Immigration Department (a trusted issuer of the demo data, its key
made at this session's seeding) issued them, applies for the residence permit whose material
accepts that card, and the application completes with it."""

from __future__ import annotations

import random
import uuid

from govflow.certificates.v1 import certificates_pb2 as cpb
from govflow.identity.v1 import identity_pb2 as ipb
from govflow.matters.v1 import matters_pb2 as mpb
from govflow_cli.demo_data import DEMO_PASSWORD, HK_CARD_FIELDS, HK_CARD_TYPE, HK_ISSUER
from govflow_cli.foreign_issuer import ForeignIssuer
from services.identity.domain import id_check_char
from tests.e2e.helpers import submit, wait_done
from tests.stack import Stack


async def _hong_kong_resident(stack: Stack) -> tuple[str, tuple[tuple[str, str], ...]]:
    first17 = f"81000019{random.randrange(60, 99)}0101{random.randrange(1000):03d}"
    id_number = first17 + id_check_char(first17)
    made = await stack.identity.CreatePerson(ipb.CreatePersonRequest(
        person=ipb.Person(id_number=id_number, display_name=f"HK resident {id_number[-4:]}",
                          assurance_level=ipb.ASSURANCE_LEVEL_FACE),
        password=DEMO_PASSWORD, request_id=uuid.uuid4().hex), metadata=await stack.service_md())
    return made.person.name, await stack.login(id_number, DEMO_PASSWORD)


async def test_a_hong_kong_resident_applies_with_their_hong_kong_identity_card(
        stack: Stack) -> None:
    issuer: ForeignIssuer | None = stack.seeded.hk_issuer  # type: ignore[attr-defined]  # Seeded
    assert issuer is not None and issuer.issuer == HK_ISSUER
    holder, md = await _hong_kong_resident(stack)
    token, _ = issuer.certificate(type_code=HK_CARD_TYPE, holder=holder, fields=HK_CARD_FIELDS)
    card = (await stack.certificates.ImportCertificate(cpb.ImportCertificateRequest(token=token),
                                                       metadata=md)).certificate
    assert card.foreign and card.issuer == HK_ISSUER

    app = await wait_done(stack, md, await submit(stack, md, "matters/hk-macao-residence-permit"))
    assert app.status == mpb.APPLICATION_STATUS_COMPLETED, [e.message for e in app.timeline]
    verified = [e.message for e in app.timeline if e.kind == "material_verified"]
    assert any(card.name in m for m in verified), verified
    # The worker read the card under the application's grant: the holder sees that read.
    reads = await stack.certificates.ListAccessRecords(cpb.ListAccessRecordsRequest(
        parent=holder, filter=f"certificate={card.name}"), metadata=md)
    assert any(r.application == app.name for r in reads.access_records)
    wallet = await stack.certificates.ListCertificates(cpb.ListCertificatesRequest(
        parent=holder), metadata=md)
    permit = next(c for c in wallet.certificates if c.name == app.result_certificate)
    assert permit.type == "certificateTypes/hk-macao-residence-permit" and not permit.foreign
    assert permit.fields["home_id_number"] == HK_CARD_FIELDS["id_number"]


async def test_the_demo_resident_holds_the_hong_kong_card(stack: Stack) -> None:
    """The seeded Hong Kong resident has the card in the wallet, and it verifies."""
    from govflow_cli.demo_data import HK_RESIDENT

    md = await stack.login(HK_RESIDENT.id_number, DEMO_PASSWORD)
    holder = stack.seeded.persons[HK_RESIDENT.key]  # type: ignore[attr-defined]  # Seeded
    wallet = await stack.certificates.ListCertificates(cpb.ListCertificatesRequest(
        parent=holder, filter=f"type=certificateTypes/{HK_CARD_TYPE}"), metadata=md)
    assert [c.issuer for c in wallet.certificates] == [HK_ISSUER]
    v = await stack.certificates.VerifyCertificate(cpb.VerifyCertificateRequest(
        name=wallet.certificates[0].name), metadata=md)
    assert v.valid, list(v.failures)


async def test_seeding_again_leaves_the_trust_list_as_it_is(stack: Stack) -> None:
    """The issuer's key is made once, at the first seeding: a second one finds it listed and
    neither replaces its keys nor imports another card."""
    from govflow_cli.demo_data import HK_RESIDENT, seed_cross_border

    before = await stack.certificates.ListTrustedIssuers(cpb.ListTrustedIssuersRequest())
    persons: dict[str, str] = {}
    issued: list[str] = []
    again = await seed_cross_border(stack.identity, stack.certificates,
                                    await stack.service_md(), persons, issued)
    after = await stack.certificates.ListTrustedIssuers(cpb.ListTrustedIssuersRequest())
    assert again is None and issued == []
    assert persons[HK_RESIDENT.key] == stack.seeded.persons[HK_RESIDENT.key]  # type: ignore[attr-defined]  # Seeded
    assert after.trust_list_version == before.trust_list_version
    assert list(after.trusted_issuers) == list(before.trusted_issuers)
