"""Matters' process: ``create_server(settings) -> (server, port)`` and ``main()``."""

from __future__ import annotations

import asyncio
import pathlib

from govflow import auth, log, tls
from govflow.db import Database
from govflow.grpckit import GovflowServer, build_server, channel, run_service
from govflow.matters.v1 import matters_pb2, matters_pb2_grpc
from govflow.service_client import JwksSource
from govflow.settings import Settings
from services.matters.api import PUBLIC_METHODS, MattersApi
from services.matters.delegations import DelegationCheck
from services.matters.service import Matters, TemporalLink

MIGRATIONS = pathlib.Path(__file__).parent / "migrations"
SERVICE_NAME = matters_pb2.DESCRIPTOR.services_by_name["MattersService"].full_name


async def create_server(settings: Settings, *, port: int | None = None) -> tuple[GovflowServer, int]:
    db = Database(settings.database_url("matters"), MIGRATIONS)
    await asyncio.to_thread(db.migrate)
    delegations = DelegationCheck(lambda: channel(settings.identity_addr,
                                                  tls.channel_credentials(settings)))
    matters = Matters(db, TemporalLink(settings.temporal_address, settings.temporal_namespace,
                                       settings.temporal_task_queue, tls.temporal_tls(settings)),
                      submit_rate_limit=settings.submit_rate_limit,
                      rate_window_seconds=settings.rate_limit_window_seconds,
                      delegations=delegations)
    # The years the chinese-calendar package covers, where nobody has published them yet.
    seeded = await db.run(matters.calendars.seed)
    if seeded:
        log.get_logger().info("matters.calendars_seeded", region="CN", years=seeded)
    jwks = JwksSource(settings.identity_addr, tls.channel_credentials(settings))
    server, bound = build_server(
        domain="govflow.matters",
        full_service_name=SERVICE_NAME,
        register=lambda srv: matters_pb2_grpc.add_MattersServiceServicer_to_server(
            MattersApi(matters), srv),
        verifier=auth.TokenVerifier("govflow.matters", jwks),
        public_methods=PUBLIC_METHODS,
        probe=db.ping,
        host=settings.host,
        port=settings.matters_port if port is None else port,
        health_interval=settings.health_interval_seconds,
        credentials=tls.server_credentials(settings),
    )

    async def close() -> None:
        await jwks.close()
        await delegations.close()
        db.dispose()

    server.on_stop.append(close)
    server.matters = matters  # type: ignore[attr-defined]  # the process's handle, kept on its server object
    return server, bound


async def resume_unstarted(server: GovflowServer) -> None:
    """Starts workflows a crash left unstarted (between the insert and the start)."""
    matters: Matters = server.matters  # type: ignore[attr-defined]  # the process's handle, kept on its server object
    try:
        resumed = await matters.resume_unstarted()
    except Exception:  # noqa: BLE001 - Temporal not up yet: the clients' retries with their request_id cover it
        log.get_logger().warning("matters.resume_unstarted_failed", exc_info=True)
        return
    if resumed:
        log.get_logger().info("matters.resumed_unstarted", count=resumed)


def main() -> None:
    run_service("matters", create_server, before_serving=resume_unstarted)


if __name__ == "__main__":
    main()
