"""``govflow seed --catalogue province`` (and ``up --catalogue province``): the generated
catalogue of a province (services/matters/catalogue_generator.py), loaded after the demo
through the same public APIs: its agencies with ``CreateAgency`` and its matters with
``PublishMatter``, as Govflow's admin service identity. Idempotent like the demo seed:
agencies are created once, and an unchanged definition makes no new version."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import grpc

from govflow.identity.v1 import identity_pb2 as ipb
from govflow.identity.v1 import identity_pb2_grpc
from govflow.matters.v1 import matters_pb2 as mpb
from govflow.matters.v1 import matters_pb2_grpc
from govflow.service_client import ServiceToken
from services.matters import catalogue_generator

# The catalogues ``--catalogue`` knows: the demo's seven matters alone, or the province's too.
CATALOGUES = ("demo", "province")
# Publishes in flight at once: enough to keep the service busy while one waits on its commit.
CONCURRENCY = 4


@dataclasses.dataclass(frozen=True)
class CatalogueLoad:
    agencies: int
    matters: int  # definitions published (each a new version, or the same one again)
    agencies_seconds: float
    matters_seconds: float


async def seed_province(identity_ch: grpc.aio.Channel, matters_ch: grpc.aio.Channel,
                        admin_client_id: str, admin_secret: str, *, limit: int = 0,
                        concurrency: int = CONCURRENCY) -> CatalogueLoad:
    """Creates the generated agencies and publishes the generated matters (the first
    ``limit`` of them when given; the life events bundle only matters published before
    them, so a cut keeps only those whose members made it)."""
    identity = identity_pb2_grpc.IdentityServiceStub(identity_ch)
    matters = matters_pb2_grpc.MattersServiceStub(matters_ch)
    md = await ServiceToken(identity, admin_client_id, admin_secret).metadata()
    started = time.monotonic()
    made = catalogue_generator.agencies()
    for a in made:  # in order: a parent before the agencies under it
        await identity.CreateAgency(ipb.CreateAgencyRequest(agency=ipb.Agency(
            code=a.code, display_name=a.display_name, division_code=a.division_code,
            level=ipb.AgencyLevel.Value(f"AGENCY_LEVEL_{a.level.upper()}"),
            parent=f"agencies/{a.parent}" if a.parent else "")), metadata=md)
    agencies_done = time.monotonic()
    texts = [text for _, text in catalogue_generator.definitions()]
    if limit:
        texts = texts[:limit]
    gate = asyncio.Semaphore(concurrency)

    async def publish(text: str) -> None:
        async with gate:
            await matters.PublishMatter(mpb.PublishMatterRequest(definition_yaml=text),
                                        metadata=md)

    await asyncio.gather(*[publish(t) for t in texts])
    return CatalogueLoad(agencies=len(made), matters=len(texts),
                         agencies_seconds=agencies_done - started,
                         matters_seconds=time.monotonic() - agencies_done)


def describe(load: CatalogueLoad) -> str:
    """One line for ``up`` and ``seed``."""
    return (f"province catalogue: {load.agencies} agencies in {load.agencies_seconds:.1f} s, "
            f"{load.matters} matters published in {load.matters_seconds:.1f} s")
