"""Certificates' process: ``create_server(settings) -> (server, port)`` and ``main()``."""

from __future__ import annotations

import asyncio
import pathlib

from govflow import auth, tls
from govflow.certificates.v1 import certificates_pb2, certificates_pb2_grpc
from govflow.db import Database
from govflow.grpckit import GovflowServer, build_server, run_service
from govflow.service_client import JwksSource
from govflow.settings import Settings
from services.certificates.api import PUBLIC_METHODS, CertificatesApi
from services.certificates.service import Certificates

MIGRATIONS = pathlib.Path(__file__).parent / "migrations"
SERVICE_NAME = certificates_pb2.DESCRIPTOR.services_by_name["CertificatesService"].full_name


async def create_server(settings: Settings, *, port: int | None = None) -> tuple[GovflowServer, int]:
    """Migrates the database and builds (does not start) the server; returns it and its port."""
    db = Database(settings.database_url("certificates"), MIGRATIONS)
    await asyncio.to_thread(db.migrate)
    certificates = Certificates(db)
    # Tokens are checked locally against identity's published keys, fetched lazily, so
    # this service starts even while identity is still coming up.
    jwks = JwksSource(settings.identity_addr, tls.channel_credentials(settings))
    verifier = auth.TokenVerifier("govflow.certificates", jwks)
    server, bound = build_server(
        domain="govflow.certificates",
        full_service_name=SERVICE_NAME,
        register=lambda srv: certificates_pb2_grpc.add_CertificatesServiceServicer_to_server(
            CertificatesApi(certificates), srv),
        verifier=verifier,
        public_methods=PUBLIC_METHODS,
        probe=db.ping,
        host=settings.host,
        port=settings.certificates_port if port is None else port,
        health_interval=settings.health_interval_seconds,
        credentials=tls.server_credentials(settings),
    )

    async def close() -> None:
        await jwks.close()
        db.dispose()

    server.on_stop.append(close)
    server.certificates = certificates  # type: ignore[attr-defined]  # the process's handle, kept on its server object
    return server, bound


def main() -> None:
    run_service("certificates", create_server)


if __name__ == "__main__":
    main()
