"""The documented limits (docs/security.md, "Limits"): message size, page sizes and tokens, filters,
field lengths, enums, timestamps — and the per-caller rate limits on Login,
AuthenticatePartner and SubmitApplication, which hold across replicas because they are
counted in the service's own database."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import pathlib
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_status import rpc_status

from govflow import limits, paging
from govflow.errors import error_info, field_violations
from govflow.grpckit import MAX_MESSAGE_BYTES
from govflow.identity.v1 import identity_pb2 as ipb
from govflow.identity.v1 import identity_pb2_grpc
from govflow.matters.v1 import matters_pb2 as mpb
from govflow.matters.v1 import matters_pb2_grpc
from govflow.settings import Settings
from tests.security.support import PASSWORD, fresh_id_number, login, new_person
from tests.security.test_fuzz_rpcs import serving
from tests.stack import Stack, postgres_databases


async def refused(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await call  # type: ignore[misc]
    return exc.value


def fields_of(err: grpc.aio.AioRpcError) -> dict[str, str]:
    status = rpc_status.from_call(err)
    return field_violations(status) if status else {}


def reason_of(err: grpc.aio.AioRpcError) -> str:
    status = rpc_status.from_call(err)
    info = error_info(status) if status else None
    return info.reason if info else ""


def forged_token(offset: object) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


async def test_oversized_message_is_refused_and_the_service_keeps_serving(stack: Stack) -> None:
    admin = await stack.service_md()
    big = "x" * (MAX_MESSAGE_BYTES + 1024)
    err = await refused(stack.matters.PublishMatter(
        mpb.PublishMatterRequest(definition_yaml=big), metadata=admin))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert set((await serving(stack)).values()) == {1}  # SERVING


async def test_page_sizes_are_capped_and_forged_tokens_refused(stack: Stack) -> None:
    r = await stack.identity.ListAgencies(ipb.ListAgenciesRequest(page_size=2**31 - 1))
    assert 0 < len(r.agencies) <= paging.MAX_PAGE_SIZE
    err = await refused(stack.identity.ListAgencies(ipb.ListAgenciesRequest(page_size=-1)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "page_size" in fields_of(err)
    for offset in (10**30, -1, "5", 1.5, True, paging.MAX_OFFSET + 1):
        err = await refused(stack.identity.ListAgencies(ipb.ListAgenciesRequest(
            page_token=forged_token(offset))))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, offset
        assert "page_token" in fields_of(err)
    # The largest allowed offset is an empty page, not an error.
    r = await stack.identity.ListAgencies(ipb.ListAgenciesRequest(
        page_token=forged_token(paging.MAX_OFFSET)))
    assert not r.agencies


@pytest.mark.parametrize("text", [
    "matter=" + "x" * paging.MAX_FILTER_CHARS,                      # too long
    " AND ".join(f"matter=m{i}" for i in range(paging.MAX_FILTER_TERMS + 1)),  # too many terms
    "matter=a AND matter=b",                                         # a key twice
    "((((matter=a))))", "matter", "=a", "matter=a OR status=OPEN",   # malformed
    "status=" + "(" * 500, "owner=persons/x",                        # unknown values and keys
])
async def test_bad_filters_are_refused(stack: Stack, text: str) -> None:
    md = await stack.service_md()
    err = await refused(stack.matters.ListApplications(
        mpb.ListApplicationsRequest(filter=text), metadata=md))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(fields_of(err)) == {"filter"}


async def test_field_limits_name_the_fields(stack: Stack) -> None:
    admin = await stack.service_md()
    long_name = "名" * (limits.MAX_STRING_CHARS + 1)
    err = await refused(stack.identity.CreatePerson(ipb.CreatePersonRequest(
        person=ipb.Person(id_number=fresh_id_number(), display_name=long_name,
                          assurance_level=99),
        password=PASSWORD, request_id="r\x00"), metadata=admin))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and reason_of(err) == "REQUEST_LIMITS"
    assert set(fields_of(err)) == {"person.display_name", "person.assurance_level", "request_id"}
    # Longer texts have their own limits.
    ok_reason = "r" * limits.STRING_LIMITS["reason"]
    citizen = await login(stack, (await new_person(stack, admin))[1])
    err = await refused(stack.matters.WithdrawApplication(mpb.WithdrawApplicationRequest(
        name="applications/none", reason=ok_reason), metadata=citizen))
    assert err.code() == grpc.StatusCode.NOT_FOUND  # within the limit: the name is the problem
    err = await refused(stack.matters.WithdrawApplication(mpb.WithdrawApplicationRequest(
        name="applications/none", reason=ok_reason + "r"), metadata=citizen))
    assert fields_of(err) == {"reason": f"longer than {len(ok_reason)} characters"}
    err = await refused(stack.matters.PublishMatter(mpb.PublishMatterRequest(
        definition_yaml="#" * (limits.STRING_LIMITS["definition_yaml"] + 1)), metadata=admin))
    assert set(fields_of(err)) == {"definition_yaml"}
    err = await refused(stack.matters.DecideTask(mpb.DecideTaskRequest(
        name="tasks/x", decision=7, reasons=["r"] * (limits.MAX_REPEATED + 1)), metadata=admin))
    assert set(fields_of(err)) == {"decision", "reasons"}
    err = await refused(stack.identity.GrantRepresentation(ipb.GrantRepresentationRequest(
        organisation="organisations/x", person="persons/y",
        expire_time={"seconds": 253402300800}), metadata=admin))
    assert set(fields_of(err)) == {"expire_time"}
    # Anonymous callers are told to authenticate first, whatever they send.
    err = await refused(stack.matters.DecideTask(mpb.DecideTaskRequest(decision=7)))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED


# ---------------------------------------------------------------- rate limits


@contextlib.asynccontextmanager
async def identity_replicas(tmp: pathlib.Path, url: str, **limits_: int) -> AsyncIterator[
        list[identity_pb2_grpc.IdentityServiceStub]]:
    """Two identity servers on one database, as two replicas behind a load balancer."""
    from services.identity.server import create_server

    settings = Settings(data_dir=tmp, admin_client_secret="admin-secret-123",
                        identity_database_url=url, **limits_)  # type: ignore[arg-type]
    servers, channels = [], []
    try:
        for _ in range(2):
            server, port = await create_server(settings, port=0)
            await server.start()
            servers.append(server)
            channels.append(grpc.aio.insecure_channel(f"127.0.0.1:{port}"))
        yield [identity_pb2_grpc.IdentityServiceStub(ch) for ch in channels]
    finally:
        for ch in channels:
            await ch.close()
        for server in servers:
            await server.stop(0)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_login_rate_limits_hold_across_replicas(
        backend: str, tmp_path: pathlib.Path) -> None:
    with (postgres_databases(("identity",)) if backend == "postgres"
          else contextlib.nullcontext({})) as urls:
        async with identity_replicas(tmp_path, urls.get("identity", ""), login_rate_limit=3,
                                     partner_auth_rate_limit=2) as (a, b):
            admin_tok = await a.AuthenticatePartner(ipb.AuthenticatePartnerRequest(
                client_id="govflow-admin", client_secret="admin-secret-123"))
            admin = (("authorization", f"Bearer {admin_tok.tokens.access_token}"),)
            number, other = fresh_id_number(), fresh_id_number()
            for n in (number, other):
                await a.CreatePerson(ipb.CreatePersonRequest(person=ipb.Person(
                    id_number=n, display_name="Rate Limited"), password=PASSWORD),
                    metadata=admin)
            # Three attempts, spread over both replicas (one with a wrong password).
            await a.Login(ipb.LoginRequest(id_number=number, password=PASSWORD))
            await b.Login(ipb.LoginRequest(id_number=number, password=PASSWORD))
            err = await refused(a.Login(ipb.LoginRequest(id_number=number, password="wrong-pw")))
            assert err.code() == grpc.StatusCode.UNAUTHENTICATED
            for replica in (a, b):
                err = await refused(replica.Login(ipb.LoginRequest(
                    id_number=number, password=PASSWORD)))
                assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                assert reason_of(err) == "RATE_LIMITED"
            # Per caller: another person still logs in.
            await b.Login(ipb.LoginRequest(id_number=other, password=PASSWORD))

            # AuthenticatePartner: the admin client used one call above; one more is allowed.
            await b.AuthenticatePartner(ipb.AuthenticatePartnerRequest(
                client_id="govflow-admin", client_secret="admin-secret-123"))
            err = await refused(a.AuthenticatePartner(ipb.AuthenticatePartnerRequest(
                client_id="govflow-admin", client_secret="admin-secret-123")))
            assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert reason_of(err) == "RATE_LIMITED"


async def test_submission_rate_limit_holds_across_replicas(stack: Stack) -> None:
    """Two more matters replicas on the stack's database, each allowing 3 submissions a
    minute per caller: the caller's 4th submission is refused whichever replica takes it."""
    from services.matters.server import create_server

    settings = dataclasses.replace(stack.settings, submit_rate_limit=3)
    admin = await stack.service_md()
    first = await login(stack, (await new_person(stack, admin))[1])
    second = await login(stack, (await new_person(stack, admin))[1])
    servers, channels = [], []
    try:
        for _ in range(2):
            server, port = await create_server(settings, port=0)
            await server.start()
            servers.append(server)
            channels.append(grpc.aio.insecure_channel(f"127.0.0.1:{port}"))
        a, b = (matters_pb2_grpc.MattersServiceStub(ch) for ch in channels)

        def submit(stub: matters_pb2_grpc.MattersServiceStub, md: object) -> object:
            # A matter that does not exist: refused, but the attempt counts.
            return stub.SubmitApplication(mpb.SubmitApplicationRequest(
                matter="matters/no-such-matter", request_id=uuid.uuid4().hex), metadata=md)

        for stub in (a, b, a):
            assert (await refused(submit(stub, first))).code() == grpc.StatusCode.NOT_FOUND
        for stub in (b, a):
            err = await refused(submit(stub, first))
            assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert reason_of(err) == "RATE_LIMITED"
        assert (await refused(submit(b, second))).code() == grpc.StatusCode.NOT_FOUND
        # The limit is each replica's setting; the stack's own replica keeps the default.
        assert (await refused(submit(stack.matters, first))).code() == grpc.StatusCode.NOT_FOUND
    finally:
        for ch in channels:
            await ch.close()
        for server in servers:
            await server.stop(0)
