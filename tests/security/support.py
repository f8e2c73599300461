"""Shared pieces of the hostile-input tests: every RPC of the three services (from their
descriptors, so a new RPC is covered automatically), a generic caller for any of them, fresh
principals of each kind, and the tallies the terminal summary prints."""

from __future__ import annotations

import collections
import dataclasses
import random
import time
import uuid
from collections.abc import Callable

import grpc
from google.protobuf import descriptor, message, message_factory

from govflow.certificates.v1 import certificates_pb2
from govflow.identity.v1 import identity_pb2 as ipb
from govflow.matters.v1 import matters_pb2
from services.identity.domain import id_check_char
from tests.stack import Stack

Md = tuple[tuple[str, str], ...]

# Which service (key of Stack.channels) serves each proto service.
SERVICES: dict[str, descriptor.ServiceDescriptor] = {
    "identity": ipb.DESCRIPTOR.services_by_name["IdentityService"],
    "certificates": certificates_pb2.DESCRIPTOR.services_by_name["CertificatesService"],
    "matters": matters_pb2.DESCRIPTOR.services_by_name["MattersService"],
}

# Codes a caller may ever get for what it sends; UNKNOWN and INTERNAL never.
ALLOWED_CODES = frozenset({
    grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
})

# Figures for the terminal summary (tests/security/conftest.py prints them).
FUZZ_EXAMPLES: collections.Counter[str] = collections.Counter()
FUZZ_CALLS: collections.Counter[str] = collections.Counter()
MATRIX_CELLS: collections.Counter[str] = collections.Counter()


@dataclasses.dataclass(frozen=True)
class Rpc:
    service: str  # identity, certificates or matters
    method: descriptor.MethodDescriptor

    @property
    def id(self) -> str:
        return f"{self.service}.{self.method.name}"

    @property
    def path(self) -> str:
        return f"/{self.method.containing_service.full_name}/{self.method.name}"

    def request_class(self) -> type[message.Message]:
        return message_factory.GetMessageClass(self.method.input_type)

    def response_class(self) -> type[message.Message]:
        return message_factory.GetMessageClass(self.method.output_type)


def all_rpcs() -> list[Rpc]:
    """Every RPC of the three services, read from their descriptors."""
    return [Rpc(name, m) for name, svc in SERVICES.items() for m in svc.methods]


async def call(stack: Stack, rpc: Rpc, request: message.Message, md: Md | None,
               timeout: float = 60) -> grpc.StatusCode:
    """Calls ``rpc`` generically; returns the status code (OK or the error's)."""
    fn = stack.channels[rpc.service].unary_unary(
        rpc.path, request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=rpc.response_class().FromString)
    try:
        await fn(request, metadata=md or None, timeout=timeout)
        return grpc.StatusCode.OK
    except grpc.aio.AioRpcError as err:
        return err.code()


def fresh_id_number() -> str:
    """A valid, random resident ID number (GB 11643 check digit)."""
    rng = random.Random(uuid.uuid4().int)
    first = (f"440304{rng.randint(1950, 2004)}{rng.randint(1, 12):02d}"
             f"{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}")
    return first + id_check_char(first)


async def new_person(stack: Stack, admin: Md, name: str = "Fresh Person") -> tuple[str, str]:
    """A fresh citizen: (persons/{id}, ID number). Password is PASSWORD."""
    number = fresh_id_number()
    r = await stack.identity.CreatePerson(ipb.CreatePersonRequest(
        person=ipb.Person(id_number=number, display_name=name,
                          assurance_level=ipb.ASSURANCE_LEVEL_FACE),
        password=PASSWORD), metadata=admin)
    return r.person.name, number


PASSWORD = "security-pass-1"


async def new_agency(stack: Stack, admin: Md) -> str:
    code = f"sec-{uuid.uuid4().hex[:8]}"
    await stack.identity.CreateAgency(ipb.CreateAgencyRequest(agency=ipb.Agency(
        code=code, display_name=f"Security test agency {code}", division_code="440300",
        level=ipb.AGENCY_LEVEL_CITY)), metadata=admin)
    return f"agencies/{code}"


async def new_official(stack: Stack, admin: Md, agency: str,
                       roles: list[str]) -> tuple[str, str]:
    """A fresh person who is an official of ``agency`` with ``roles``."""
    person, number = await new_person(stack, admin, "Fresh Official")
    await stack.identity.SetOfficialRoles(ipb.SetOfficialRolesRequest(official=ipb.Official(
        person=person, agency=agency,
        roles=[ipb.Role.Value(f"ROLE_{r.upper()}") for r in roles])), metadata=admin)
    return person, number


async def new_partner(stack: Stack, admin: Md, scopes: list[str] = (),  # type: ignore[assignment]
                      agency: str = "") -> tuple[str, Md]:
    client_id = f"sec-{uuid.uuid4().hex[:10]}"
    r = await stack.identity.CreatePartner(ipb.CreatePartnerRequest(partner=ipb.Partner(
        client_id=client_id, display_name=client_id, scopes=list(scopes), agency=agency)),
        metadata=admin)
    tok = await stack.identity.AuthenticatePartner(ipb.AuthenticatePartnerRequest(
        client_id=client_id, client_secret=r.client_secret))
    return f"partners/{client_id}", bearer(tok.tokens.access_token)


def bearer(token: str) -> Md:
    return (("authorization", f"Bearer {token}"),)


async def login(stack: Stack, number: str, **kw: str) -> Md:
    r = await stack.identity.Login(ipb.LoginRequest(id_number=number, password=PASSWORD, **kw))
    return bearer(r.tokens.access_token)


class Fresh:
    """Caches a value per stack and renews it before tokens could expire."""

    def __init__(self, make: Callable[[Stack], object], max_age: float = 300.0) -> None:
        self.make, self.max_age = make, max_age
        self.cache: dict[int, tuple[float, object]] = {}

    async def get(self, stack: Stack) -> object:
        hit = self.cache.get(id(stack))
        if hit is None or time.monotonic() - hit[0] > self.max_age:
            hit = (time.monotonic(), await self.make(stack))  # type: ignore[misc]
            self.cache[id(stack)] = hit
        return hit[1]
