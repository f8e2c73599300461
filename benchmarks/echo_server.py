"""The bare gRPC baseline: a grpc.aio server with no interceptor, no auth, no database —
its own process, like each service. ``Echo`` returns the request bytes; ``Put`` keeps a
payload under a key and ``Get`` returns it, so a baseline call can receive exactly the
bytes a real read returns, for a request as small as the real one."""

from __future__ import annotations

import asyncio
import signal
import sys

import grpc

METHOD = "/benchmarks.Echo/Echo"
PUT = "/benchmarks.Echo/Put"
GET = "/benchmarks.Echo/Get"
_STORED: dict[bytes, bytes] = {}


async def _echo(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    return request


async def _put(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    key, _, payload = request.partition(b"\0")
    _STORED[key] = payload
    return b""


async def _get(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    return _STORED.get(request, b"")


async def _main(port: int) -> None:
    server = grpc.aio.server()
    handler = grpc.method_handlers_generic_handler(
        "benchmarks.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(_echo),
                               "Put": grpc.unary_unary_rpc_method_handler(_put),
                               "Get": grpc.unary_unary_rpc_method_handler(_get)})
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(0)


if __name__ == "__main__":
    asyncio.run(_main(int(sys.argv[1])))
