"""The certificates service and the identity service that issues its tokens, both over real
gRPC on port 0, the certificates database on SQLite or a fresh PostgreSQL database: what the
certificates integration tests start before seeding their own people and types."""

from __future__ import annotations

import contextlib
import dataclasses
import pathlib
import uuid
from collections.abc import AsyncIterator

import grpc
import psycopg
import pytest

from govflow.certificates.v1 import certificates_pb2_grpc
from govflow.grpckit import GovflowServer
from govflow.identity.v1 import identity_pb2 as ipb
from govflow.identity.v1 import identity_pb2_grpc
from govflow.settings import Settings
from services.certificates.server import create_server as create_certificates
from services.identity.server import create_server as create_identity

ADMIN_SECRET = "admin-secret-123"
WORKER_SECRET = "worker-secret-123"
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# The fixture parameters: each module's servers run once per database backend.
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]

Metadata = tuple[tuple[str, str], ...]


def bearer(token: str) -> Metadata:
    return (("authorization", f"Bearer {token}"),)


@dataclasses.dataclass
class Servers:
    identity: identity_pb2_grpc.IdentityServiceStub
    certificates: certificates_pb2_grpc.CertificatesServiceStub
    channel: grpc.aio.Channel  # to the certificates service
    server: GovflowServer  # the certificates service
    settings: Settings  # the certificates service's
    addr: str  # the certificates service, for commands run in a subprocess

    async def partner_token(self, client_id: str, secret: str) -> Metadata:
        r = await self.identity.AuthenticatePartner(ipb.AuthenticatePartnerRequest(
            client_id=client_id, client_secret=secret))
        return bearer(r.tokens.access_token)

    async def admin(self) -> Metadata:
        return await self.partner_token("govflow-admin", ADMIN_SECRET)

    async def worker(self) -> Metadata:
        return await self.partner_token("govflow-worker", WORKER_SECRET)


def _postgres_available() -> bool:
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


@contextlib.asynccontextmanager
async def certificates_servers(tmp: pathlib.Path, backend: str) -> AsyncIterator[Servers]:
    """Both servers started, with data in ``tmp`` and the certificates service's database on
    ``backend`` ("sqlite" or "postgres"; skips when PostgreSQL is not reachable); stopped
    and the PostgreSQL database dropped on exit."""
    db_name = cert_url = ""
    if backend == "postgres":
        if not _postgres_available():
            pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
        db_name = f"govflow_t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{db_name}"')
        cert_url = f"postgresql://postgres@127.0.0.1:5432/{db_name}"
    identity_server, identity_port = await create_identity(
        Settings(data_dir=tmp, admin_client_secret=ADMIN_SECRET,
                 worker_client_secret=WORKER_SECRET), port=0)
    await identity_server.start()
    settings = Settings(data_dir=tmp, identity_addr=f"127.0.0.1:{identity_port}",
                        admin_client_secret=ADMIN_SECRET, worker_client_secret=WORKER_SECRET,
                        certificates_database_url=cert_url)
    cert_server, cert_port = await create_certificates(settings, port=0)
    await cert_server.start()
    id_channel = grpc.aio.insecure_channel(f"127.0.0.1:{identity_port}")
    cert_channel = grpc.aio.insecure_channel(f"127.0.0.1:{cert_port}")
    try:
        yield Servers(identity=identity_pb2_grpc.IdentityServiceStub(id_channel),
                      certificates=certificates_pb2_grpc.CertificatesServiceStub(cert_channel),
                      channel=cert_channel, server=cert_server, settings=settings,
                      addr=f"127.0.0.1:{cert_port}")
    finally:
        await cert_channel.close()
        await id_channel.close()
        await cert_server.stop(0)
        await identity_server.stop(0)
        if db_name:
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
