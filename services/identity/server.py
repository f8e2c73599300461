"""Identity's process: ``create_server(settings) -> (server, port)`` and ``main()``."""

from __future__ import annotations

import asyncio
import pathlib

from govflow import auth, tls
from govflow.db import Database
from govflow.grpckit import GovflowServer, build_server, run_service
from govflow.identity.v1 import identity_pb2, identity_pb2_grpc
from govflow.settings import Settings
from services.identity.api import PUBLIC_METHODS, IdentityApi
from services.identity.client_address import parse_networks
from services.identity.keys import ensure_signing_key, jwks
from services.identity.partners import ensure_service_account
from services.identity.service import Identity
from services.identity.tokens import FailureLimits, RateLimits

MIGRATIONS = pathlib.Path(__file__).parent / "migrations"
SERVICE_NAME = identity_pb2.DESCRIPTOR.services_by_name["IdentityService"].full_name

# What Govflow's own processes may do; nothing more.
WORKER_SCOPES = [auth.SCOPE_PERSONS_READ, auth.SCOPE_CERT_ISSUE, auth.SCOPE_CERT_PULL,
                 auth.SCOPE_CERT_VERIFY, auth.SCOPE_APP_RECORD]
ADMIN_SCOPES = [auth.SCOPE_ADMIN, auth.SCOPE_PERSONS_READ, "persons.write"]


async def create_server(settings: Settings, *, port: int | None = None) -> tuple[GovflowServer, int]:
    db = Database(settings.database_url("identity"), MIGRATIONS)
    await asyncio.to_thread(db.migrate)
    identity = Identity(db, token_ttl=settings.token_ttl_seconds,
                        refresh_ttl=settings.refresh_ttl_seconds,
                        rate_limits=RateLimits(login=settings.login_rate_limit,
                                               partner_auth=settings.partner_auth_rate_limit,
                                               window_seconds=settings.rate_limit_window_seconds),
                        failure_limits=FailureLimits(
                            per_address=settings.login_failures_per_address,
                            per_account=settings.login_failures_per_account,
                            window_seconds=settings.login_failure_window_seconds))

    def bootstrap(s):  # type: ignore[no-untyped-def]  # a Database.run callback
        ensure_signing_key(s)
        if settings.worker_client_secret:
            ensure_service_account(s, settings.worker_client_id,
                                   settings.worker_client_secret, WORKER_SCOPES)
        if settings.admin_client_secret:
            ensure_service_account(s, settings.admin_client_id,
                                   settings.admin_client_secret, ADMIN_SCOPES)

    await db.run(bootstrap)
    # Identity verifies its own tokens from its own table: no network hop, so it can afford
    # to re-read the keys often and refuse a retired key's tokens within a second.
    verifier = auth.TokenVerifier("govflow.identity", lambda: db.run(jwks),
                                  min_refresh_seconds=0.5, max_age_seconds=1.0)
    server, bound = build_server(
        domain="govflow.identity",
        full_service_name=SERVICE_NAME,
        register=lambda srv: identity_pb2_grpc.add_IdentityServiceServicer_to_server(
            IdentityApi(identity, trusted_proxies=parse_networks(settings.trusted_proxies)), srv),
        verifier=verifier,
        public_methods=PUBLIC_METHODS,
        probe=db.ping,
        host=settings.host,
        port=settings.identity_port if port is None else port,
        health_interval=settings.health_interval_seconds,
        credentials=tls.server_credentials(settings),
    )

    async def close() -> None:
        db.dispose()

    server.on_stop.append(close)
    server.identity = identity  # type: ignore[attr-defined]  # the process's handle, kept on its server object
    return server, bound


def main() -> None:
    run_service("identity", create_server)


if __name__ == "__main__":
    main()
