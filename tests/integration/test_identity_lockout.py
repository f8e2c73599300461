"""Lock-out is not a weapon (docs/security.md): failed logins count per ID number and client
address, with a looser per-ID ceiling across addresses; over real gRPC, on SQLite and
PostgreSQL. Client addresses come from x-forwarded-for, which identity believes from this
loopback peer just as it does from the gateway beside it."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator

import grpc
import pytest

from govflow.identity.v1 import identity_pb2 as pb
from govflow.identity.v1 import identity_pb2_grpc
from govflow.settings import Settings
from services.identity.server import create_server
from tests.integration.test_identity_service import (
    ADMIN_SECRET,
    PASSWORD,
    _no_db,
    error,
    id_number,
    reason,
)
from tests.stack import postgres_databases

PER_ADDRESS, PER_ACCOUNT = 3, 7

Stub = identity_pb2_grpc.IdentityServiceStub


@pytest.fixture(scope="module",
                params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def stub(request: pytest.FixtureRequest,
               tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stub]:
    tmp: pathlib.Path = tmp_path_factory.mktemp(f"lockout-{request.param}")
    with postgres_databases(("identity",)) if request.param == "postgres" else _no_db() as urls:
        settings = Settings(data_dir=tmp, admin_client_secret=ADMIN_SECRET,
                            identity_database_url=urls.get("identity", ""),
                            login_failures_per_address=PER_ADDRESS,
                            login_failures_per_account=PER_ACCOUNT)
        server, port = await create_server(settings, port=0)
        await server.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        try:
            yield identity_pb2_grpc.IdentityServiceStub(channel)
        finally:
            await channel.close()
            await server.stop(0)


async def _citizen(stub: Stub) -> str:
    admin = await stub.AuthenticatePartner(pb.AuthenticatePartnerRequest(
        client_id="govflow-admin", client_secret=ADMIN_SECRET))
    number = id_number()
    await stub.CreatePerson(pb.CreatePersonRequest(
        person=pb.Person(id_number=number, display_name="Citizen"), password=PASSWORD),
        metadata=(("authorization", f"Bearer {admin.tokens.access_token}"),))
    return number


def _login(stub: Stub, number: str, password: str, address: str) -> object:
    return stub.Login(pb.LoginRequest(id_number=number, password=password),
                      metadata=(("x-forwarded-for", address),))


async def test_a_strangers_failures_do_not_lock_the_citizen_out_elsewhere(stub: Stub) -> None:
    number = await _citizen(stub)
    stranger, home = "203.0.113.7", "198.51.100.2"
    for _ in range(PER_ADDRESS):
        err = await error(_login(stub, number, "wrong-1234", stranger))  # type: ignore[arg-type]
        assert reason(err) == "BAD_CREDENTIALS"
    # The stranger is now throttled, even with the right password...
    err = await error(_login(stub, number, PASSWORD, stranger))  # type: ignore[arg-type]
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and reason(err) == "LOGIN_THROTTLED"
    # ...and the citizen, from home, is not.
    r = await _login(stub, number, PASSWORD, home)
    assert r.tokens.access_token  # type: ignore[attr-defined]


async def test_a_guessing_attack_from_one_address_is_throttled(stub: Stub) -> None:
    number = await _citizen(stub)
    refused = []
    for i in range(PER_ADDRESS + 3):
        err = await error(_login(stub, number, f"guess-{i:04}", "203.0.113.9"))  # type: ignore[arg-type]
        refused.append((err.code(), reason(err)))
    assert refused[:PER_ADDRESS] == [(grpc.StatusCode.UNAUTHENTICATED, "BAD_CREDENTIALS")] * PER_ADDRESS
    assert refused[PER_ADDRESS:] == [(grpc.StatusCode.RESOURCE_EXHAUSTED, "LOGIN_THROTTLED")] * 3


async def test_the_per_id_ceiling_holds_across_addresses(stub: Stub) -> None:
    number = await _citizen(stub)
    # A distributed attack: a few guesses from each of many addresses, none throttled alone.
    failures = 0
    for a in range(PER_ACCOUNT):
        err = await error(_login(stub, number, "wrong-1234", f"192.0.2.{a + 1}"))  # type: ignore[arg-type]
        assert reason(err) == "BAD_CREDENTIALS"
        failures += 1
    assert failures == PER_ACCOUNT
    # The ceiling is reached: every address is refused now, a fresh one included.
    for address in ("192.0.2.200", "198.51.100.77"):
        err = await error(_login(stub, number, PASSWORD, address))  # type: ignore[arg-type]
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and reason(err) == "LOGIN_THROTTLED"
    # Another person is not affected.
    other = await _citizen(stub)
    r = await _login(stub, other, PASSWORD, "192.0.2.200")
    assert r.tokens.access_token  # type: ignore[attr-defined]
