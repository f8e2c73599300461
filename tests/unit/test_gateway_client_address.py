"""The gateway tells identity who its caller is (docs/security.md, failed logins): it sets
x-forwarded-for from the TCP connection and never passes on one the HTTP client sent."""

from __future__ import annotations

from typing import Any

import grpc

from govflow.identity.v1 import identity_pb2 as pb
from services.gateway.app import Gateway
from services.gateway.routes import SERVICES

LOGIN = "/govflow.identity.v1.IdentityService/Login"


async def test_the_client_address_comes_from_the_connection_only() -> None:
    app = Gateway({name: grpc.aio.insecure_channel("127.0.0.1:9") for name in SERVICES})
    seen: list[list[tuple[str, str]]] = []

    async def login(payload: bytes, *, metadata: list[tuple[str, str]],
                    timeout: float | None) -> bytes:
        seen.append(list(metadata))
        return pb.LoginResponse().SerializeToString()

    app.calls[LOGIN] = login
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b'{"idNumber": "x", "password": "y"}',
                "more_body": False}

    async def send(event: dict[str, Any]) -> None:
        sent.append(event)

    await app({"type": "http", "method": "POST", "path": LOGIN,
               "client": ("203.0.113.7", 51234),
               "headers": [(b"content-type", b"application/json"),
                           (b"x-forwarded-for", b"198.51.100.2")]},  # a spoofing attempt
              receive, send)
    assert sent[0]["status"] == 200
    assert [v for k, v in seen[0] if k == "x-forwarded-for"] == ["203.0.113.7"]
