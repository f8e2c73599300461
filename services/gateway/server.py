"""The gateway's process: ``create_server(settings) -> (server, port)`` and ``main()``.

uvicorn serves the ASGI application (services/gateway/app.py) on one HTTP/1.1 port; the
three services are reached over one gRPC channel each, at the addresses in the settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import socket
from collections.abc import Generator

import grpc
import uvicorn
import uvloop

from govflow import grpckit, log, tls
from govflow.settings import Settings
from services.gateway.app import Gateway
from services.gateway.console import ConsoleFiles
from services.gateway.routes import SERVICES

logger = log.get_logger("govflow.gateway")
# Built by govflow.sh (`npm run build -w console`) when missing or stale; served at /.
CONSOLE_DIST = pathlib.Path(__file__).resolve().parents[2] / "console" / "dist"


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handlers: the process (or the test) that runs the
    gateway owns SIGTERM and SIGINT, as for every other Govflow server."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class GatewayServer:
    """The HTTP server with the channels it forwards on: ``start``, ``stop`` and
    ``wait_for_termination``, as a ``GovflowServer``."""

    def __init__(self, app: Gateway, sock: socket.socket,
                 channels: dict[str, grpc.aio.Channel],
                 https: tuple[str, str] | None = None) -> None:
        self.app = app
        self.sock = sock
        self.channels = channels
        # http="httptools": the C parser (uvicorn's pure-Python h11 costs several times
        # more per call); no access log of uvicorn's own: the application writes one line
        # per call through Govflow's logging.
        config = uvicorn.Config(app, http="httptools", lifespan="off", access_log=False,
                                log_config=None, server_header=False, proxy_headers=False,
                                timeout_keep_alive=30,
                                timeout_graceful_shutdown=5,
                                # HTTPS when the settings give a certificate (govflow/tls.py).
                                ssl_certfile=https[0] if https else None,
                                ssl_keyfile=https[1] if https else None)
        self.server = _Uvicorn(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.server.serve([self.sock]))
        while not self.server.started:
            if self._task.done():
                self._task.result()  # raises what stopped it
                raise RuntimeError("the gateway stopped while starting")
            await asyncio.sleep(0.01)

    async def stop(self, grace: float = 5.0) -> None:
        self.server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, grace + 5)
        self.sock.close()
        for ch in self.channels.values():
            await ch.close()

    async def wait_for_termination(self) -> None:
        if self._task is not None:
            await self._task


async def create_server(settings: Settings, *, port: int | None = None
                        ) -> tuple[GatewayServer, int]:
    """Builds (does not start) the gateway and binds its port; returns it and the port."""
    credentials = tls.channel_credentials(settings)
    channels = {name: grpckit.channel(getattr(settings, f"{name}_addr"), credentials)
                for name in SERVICES}
    app = Gateway(channels, settings.cors_origins, console=ConsoleFiles.at(CONSOLE_DIST))
    # IPPROTO_TCP named, not left 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets
    # that say they are TCP, and without it every answer on a kept-alive connection waits
    # ~40 ms for the client's delayed ACK.
    sock = socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET,
                         socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.host, settings.gateway_port if port is None else port))
    except OSError as err:
        sock.close()
        raise OSError(f"cannot listen on {settings.host}:{port or settings.gateway_port}: "
                      f"{err.strerror}") from None
    sock.listen(1024)
    sock.setblocking(False)
    return GatewayServer(app, sock, channels, tls.https_files(settings)), \
        int(sock.getsockname()[1])


def main() -> None:
    # uvloop: the gateway is all event-loop work (HTTP in, gRPC out); measured here it
    # serves about 1.5 times the calls of the standard loop for less CPU per call
    # (docs/performance.md, figure 8).
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    # mypy, next line: create_server's keyword-only port is accepted at run time
    grpckit.run_service("gateway", create_server)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
