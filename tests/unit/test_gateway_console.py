"""The gateway serving the built web console (services/gateway/console.py): its files at
their paths with the right types, caching and security headers, nothing else; and the
console's own calls (same origin) let through the CORS check only when it serves one."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import grpc
import pytest

from services.gateway.app import Gateway
from services.gateway.console import ConsoleFiles
from services.gateway.routes import SERVICES


@pytest.fixture
def dist(tmp_path: pathlib.Path) -> pathlib.Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><title>console</title>")
    (tmp_path / "assets" / "index-abc123.js").write_text("console.log(1)")
    (tmp_path / ".govflow-build").write_text("stamp")
    (tmp_path.parent / "secret.txt").write_text("not served")
    return tmp_path


async def call(app: Gateway, method: str, path: str, headers: dict[str, str] | None = None,
               body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    scope: dict[str, Any] = {
        "type": "http", "method": method, "path": path,
        "headers": [(k.encode(), v.encode()) for k, v in (headers or {}).items()]}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(event: dict[str, Any]) -> None:
        sent.append(event)

    await app(scope, receive, send)
    start, content = sent
    return (start["status"], {k.decode(): v.decode() for k, v in start["headers"]},
            content["body"])


def gateway(console: ConsoleFiles | None) -> Gateway:
    channels = {name: grpc.aio.insecure_channel("127.0.0.1:9") for name in SERVICES}
    return Gateway(channels, "http://127.0.0.1:5174", console=console)


async def test_serves_the_built_files_only(dist: pathlib.Path) -> None:
    app = gateway(ConsoleFiles.at(dist))
    status, headers, body = await call(app, "GET", "/")
    assert status == 200 and body.startswith(b"<!doctype html>")
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["cache-control"] == "no-cache"
    assert "default-src 'self'" in headers["content-security-policy"]
    status, headers, _ = await call(app, "GET", "/assets/index-abc123.js")
    assert status == 200 and headers["content-type"].startswith("text/javascript")
    assert "immutable" in headers["cache-control"]
    for path in ("/.govflow-build", "/../secret.txt", "/assets/../../secret.txt", "/nope.js"):
        status, _, _ = await call(app, "GET", path)
        assert status == 404, path


async def test_not_built_means_not_served(tmp_path: pathlib.Path) -> None:
    assert ConsoleFiles.at(tmp_path) is None
    status, _, _ = await call(gateway(None), "GET", "/")
    assert status == 404


async def test_the_consoles_own_origin_passes_cors_only_when_it_is_served(
        dist: pathlib.Path) -> None:
    own = {"host": "127.0.0.1:8080", "origin": "http://127.0.0.1:8080",
           "content-type": "application/json"}
    path = "/govflow.matters.v1.MattersService/NoSuchMethod"
    status, _, body = await call(gateway(ConsoleFiles.at(dist)), "POST", path, own, b"{}")
    assert status == 404 and json.loads(body)["code"] == "unimplemented"  # past the CORS check
    status, _, body = await call(gateway(None), "POST", path, own, b"{}")
    assert status == 403 and b"ORIGIN_NOT_ALLOWED" in body
    other = {**own, "origin": "http://evil.example:8080"}
    status, _, body = await call(gateway(ConsoleFiles.at(dist)), "POST", path, other, b"{}")
    assert status == 403 and b"ORIGIN_NOT_ALLOWED" in body
