"""``python -m govflow.healthcheck HOST:PORT``: exits 0 when the service reports SERVING
(used by container health checks; grpcurl works too). ``python -m govflow.healthcheck
http://HOST:PORT/healthz`` (or ``https://``) checks the HTTP gateway. Over TLS as the
process's own ``GOVFLOW_TLS_*`` settings say (govflow/tls.py): the container's health
check verifies the server it probes like any other client."""

from __future__ import annotations

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from govflow import tls
from govflow.settings import Settings


def _http(url: str, settings: Settings) -> None:
    """The HTTP gateway's check: its /healthz answers 200."""
    import urllib.request

    context = tls.client_ssl_context(settings) if url.startswith("https://") else None
    try:
        with urllib.request.urlopen(url, timeout=3, context=context) as resp:
            ok = resp.status == 200
    except OSError as err:
        print(f"{url}: {err}", file=sys.stderr)
        raise SystemExit(1) from None
    print(f"{url}: {'SERVING' if ok else 'NOT_SERVING'}")
    raise SystemExit(0 if ok else 1)


def main() -> None:
    addr = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:50051"
    settings = Settings.from_env()
    if addr.startswith(("http://", "https://")):
        _http(addr, settings)
    credentials = tls.channel_credentials(settings)
    try:
        with (grpc.secure_channel(addr, credentials) if credentials is not None
              else grpc.insecure_channel(addr)) as ch:
            resp = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=3)
    except grpc.RpcError as err:
        print(f"{addr}: {err.code().name}", file=sys.stderr)
        raise SystemExit(1) from None
    ok = resp.status == health_pb2.HealthCheckResponse.SERVING
    print(f"{addr}: {health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)}")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
