"""Property-based fuzzing of every RPC of identity, certificates and matters.

The RPCs come from the service descriptors, so a new RPC is fuzzed without touching this
file. Each generated request (built from its message descriptor: random and boundary
strings, ints at their limits, enums out of range, timestamps out of range, nested and
repeated fields, maps) is sent anonymously and with the tokens of a citizen, an official, a
partner without scopes, Govflow's worker and Govflow's admin. Whatever comes back must be a
code a caller can act on — never UNKNOWN or INTERNAL — and every service must still answer
SERVING afterwards.

Examples per RPC: 12 by default (CI); ``GOVFLOW_FUZZ_PROFILE=deep`` runs 300, and
``GOVFLOW_FUZZ_EXAMPLES=N`` sets any number. The terminal summary lists the cases run per RPC.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
import uuid

import grpc
import pytest
from google.protobuf import timestamp_pb2
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from govflow.certificates.v1 import certificates_pb2 as cpb
from govflow.identity.v1 import identity_pb2 as ipb
from govflow.matters.v1 import matters_pb2 as mpb
from services.identity.domain import credit_code_check_char
from tests.security.strategies import messages
from tests.security.support import (
    ALLOWED_CODES,
    FUZZ_CALLS,
    FUZZ_EXAMPLES,
    Fresh,
    Md,
    Rpc,
    all_rpcs,
    call,
    login,
    new_agency,
    new_official,
    new_partner,
    new_person,
)
from tests.stack import Stack

settings.register_profile("govflow-ci", max_examples=12, deadline=None, database=None,
                          suppress_health_check=list(HealthCheck))
settings.register_profile("govflow-deep", max_examples=300, deadline=None, database=None,
                          suppress_health_check=list(HealthCheck))
_PROFILE = "govflow-deep" if os.environ.get("GOVFLOW_FUZZ_PROFILE") == "deep" else "govflow-ci"
_EXAMPLES = int(os.environ.get("GOVFLOW_FUZZ_EXAMPLES", "0")) or settings.get_profile(
    _PROFILE).max_examples


@dataclasses.dataclass
class FuzzContext:
    callers: dict[str, Md | None]
    pool: list[str]  # real names, so that fuzzing reaches past "not found"


async def _context(stack: Stack) -> FuzzContext:
    """Fresh principals and objects of their own, so fuzzing disturbs no other test."""
    admin = await stack.service_md("govflow-admin")
    worker = await stack.service_md("govflow-worker")
    agency = await new_agency(stack, admin)
    citizen, citizen_no = await new_person(stack, admin, "Fuzz Citizen")
    officer, officer_no = await new_official(
        stack, admin, agency, ["acceptor", "reviewer", "approver", "supervisor", "admin"])
    partner, partner_md = await new_partner(stack, admin)
    first = f"91440300MA{uuid.uuid4().int % 10**7:07d}"
    org = (await stack.identity.CreateOrganisation(ipb.CreateOrganisationRequest(
        organisation=ipb.Organisation(credit_code=first + credit_code_check_char(first),
                                      display_name="Fuzz Ltd", legal_representative=citizen)),
        metadata=admin)).organisation.name
    number = citizen_no
    cert = (await stack.certificates.IssueCertificate(cpb.IssueCertificateRequest(
        certificate=cpb.Certificate(
            type="certificateTypes/resident-id-card", holder=citizen,
            fields={"id_number": number, "name": "Fuzz Citizen", "birth_date": "1960-01-01",
                    "gender": "F"}), request_id=uuid.uuid4().hex), metadata=admin)).certificate.name
    citizen_md = await login(stack, citizen_no)
    app = (await stack.matters.SubmitApplication(mpb.SubmitApplicationRequest(
        matter="matters/senior-citizen-card", request_id=uuid.uuid4().hex),
        metadata=citizen_md)).application.name
    # A delegation from the citizen to the fuzzing partner, so that the delegation RPCs
    # (and matters' partner paths) are fuzzed past "not found" too.
    delegation = (await stack.identity.CreateDelegation(ipb.CreateDelegationRequest(
        parent=citizen, delegation=ipb.Delegation(
            delegate=partner, matters=["matters/senior-citizen-card"],
            expire_time=timestamp_pb2.Timestamp(seconds=int(time.time()) + 3600))),
        metadata=citizen_md)).delegation.name
    callers: dict[str, Md | None] = {
        "anonymous": None,
        "citizen": citizen_md,
        "official": await login(stack, officer_no, agency=agency),
        "partner": partner_md,
        "worker": worker,
        "admin": admin,
    }
    # The demo's trusted Hong Kong issuer and a card it signed for the citizen, so that the
    # trust-list RPCs and ImportCertificate are fuzzed past "not listed" too.
    hk = stack.seeded.hk_issuer  # type: ignore[attr-defined]  # demo_data.Seeded
    hk_card = hk.certificate(type_code="hk-identity-card", holder=citizen,
                             fields={"name": "Fuzz"})[0] if hk is not None else ""
    pool = [citizen, officer, agency, partner, org, cert, app, "matters/senior-citizen-card",
            "issuers/hk-immd", hk_card,
            "matters/food-business-permit", "certificateTypes/resident-id-card",
            "agencies/sz-psb", "persons/" + "0" * 16, delegation, f"{citizen}/delegations/-",
            "SubmitApplication"]
    return FuzzContext(callers, pool)


CONTEXT = Fresh(_context, max_age=300)


async def serving(stack: Stack) -> dict[str, int]:
    out = {}
    for name, ch in stack.channels.items():
        resp = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(),
                                                          timeout=10)
        out[name] = resp.status
    return out


@pytest.mark.parametrize("rpc", all_rpcs(), ids=lambda r: r.id)
async def test_fuzz_rpc(stack: Stack, rpc: Rpc) -> None:
    ctx: FuzzContext = await CONTEXT.get(stack)  # type: ignore[assignment]
    loop = asyncio.get_running_loop()

    async def all_callers(request: object) -> dict[str, grpc.StatusCode]:
        codes = {}
        for who, md in ctx.callers.items():
            codes[who] = await call(stack, rpc, request, md)  # type: ignore[arg-type]
            FUZZ_CALLS[rpc.id] += 1
        return codes

    @settings(settings.get_profile(_PROFILE), max_examples=_EXAMPLES)
    @given(request=messages(rpc.method.input_type, ctx.pool))
    def fuzz(request: object) -> None:
        FUZZ_EXAMPLES[rpc.id] += 1
        codes = asyncio.run_coroutine_threadsafe(all_callers(request), loop).result(300)
        bad = {who: code.name for who, code in codes.items() if code not in ALLOWED_CODES}
        assert not bad, f"{rpc.id} answered {bad} to {str(request)[:3000]!r}"

    await asyncio.to_thread(fuzz)
    assert set((await serving(stack)).values()) == {health_pb2.HealthCheckResponse.SERVING}


# ListMatters' filter keys (issue 27): each with values valid and hostile, in any mix.
_MATTER_FILTER_VALUES = {
    "keyword": st.one_of(st.text(max_size=60), st.sampled_from(["许可", "permit", "食品 经营"])),
    "agency": st.one_of(st.text(max_size=40), st.just("agencies/sz-amr")),
    "level": st.one_of(st.text(max_size=20), st.sampled_from(["province", "city", "county"])),
    "applicant_kind": st.one_of(st.text(max_size=20), st.sampled_from(["person", "organisation"])),
    "life_event": st.one_of(st.text(max_size=40),
                            st.sampled_from(["true", "false", "matters/open-a-restaurant"])),
    "instant_approval": st.one_of(st.text(max_size=10), st.sampled_from(["true", "false"])),
    "unknown": st.text(max_size=10),
}


@st.composite
def _matter_filters(draw: st.DrawFn) -> mpb.ListMattersRequest:
    keys = draw(st.lists(st.sampled_from(sorted(_MATTER_FILTER_VALUES)), max_size=9))
    text = " AND ".join(f"{k}={draw(_MATTER_FILTER_VALUES[k])}" for k in keys)
    return mpb.ListMattersRequest(
        filter=draw(st.one_of(st.just(text), st.text(max_size=200))),
        page_size=draw(st.one_of(st.integers(-(2**31), 2**31 - 1), st.integers(0, 120))),
        page_token=draw(st.one_of(st.just(""), st.text(max_size=40), st.just("eyJvIjogMjB9"))))


async def test_fuzz_list_matters_filters(stack: Stack) -> None:
    """ListMatters' search and filters with any values: answered OK or INVALID_ARGUMENT
    naming ``filter``, ``page_size`` or ``page_token``, never anything else; and a page
    answered holds at most the page size asked for."""
    loop = asyncio.get_running_loop()

    async def ask(request: mpb.ListMattersRequest) -> tuple[grpc.StatusCode, int, list[str]]:
        try:
            resp = await stack.matters.ListMatters(request, timeout=30)
        except grpc.aio.AioRpcError as err:
            status = rpc_status.from_call(err)
            fields = []
            bad = error_details_pb2.BadRequest()
            for d in status.details if status else ():
                if d.Unpack(bad):
                    fields += [v.field for v in bad.field_violations]
            return err.code(), -1, fields
        return grpc.StatusCode.OK, len(resp.matters), []

    @settings(settings.get_profile(_PROFILE), max_examples=max(_EXAMPLES, 50))
    @given(request=_matter_filters())
    def fuzz(request: mpb.ListMattersRequest) -> None:
        code, n, fields = asyncio.run_coroutine_threadsafe(ask(request), loop).result(60)
        assert code in (grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT), (code, request)
        if code == grpc.StatusCode.OK:
            assert n <= min(request.page_size or 20, 100)
        else:
            assert fields and set(fields) <= {"filter", "page_size", "page_token"}, fields

    await asyncio.to_thread(fuzz)
    assert set((await serving(stack)).values()) == {health_pb2.HealthCheckResponse.SERVING}
