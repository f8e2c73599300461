"""The gateway's ASGI application: one HTTP port, routed by ``/package.Service/Method``.

Each call is translated, not served: the request is checked for what only HTTP can get
wrong (path, method, content type, size, JSON), turned into the protobuf bytes of the RPC
and forwarded over gRPC to the owning service with the caller's ``authorization`` and
``x-request-id``. Authentication, the request limits, authorisation, the use case itself
and its errors all happen there, in the one wrapper every RPC goes through
(govflow/grpckit.py); the gateway shows the answer in the caller's protocol
(services/gateway/protocol.py).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import grpc
from google.protobuf import json_format, message
from google.rpc import code_pb2, status_pb2

from govflow import log, metrics, tracing
from govflow.errors import (
    DomainError,
    InvalidArgument,
    PermissionDenied,
    ResourceExhausted,
    Unavailable,
)
from govflow.grpckit import MAX_MESSAGE_BYTES
from govflow.lru import Lru
from services.gateway import json_out
from services.gateway import protocol as p
from services.gateway.console import ConsoleFiles
from services.gateway.routes import Route, build_routes

logger = log.get_logger("govflow.gateway")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

# What a browser may send and read across origins: the headers of Connect and gRPC-Web.
ALLOW_HEADERS = (b"authorization, content-type, connect-protocol-version, connect-timeout-ms, "
                 b"grpc-timeout, x-grpc-web, x-user-agent, x-request-id")
EXPOSE_HEADERS = b"grpc-status, grpc-message, grpc-status-details-bin, x-request-id"
_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,128}")
_GRPC_TIMEOUT = re.compile(rb"(\d{1,8})([HMSmun])")
_GRPC_UNITS = {b"H": 3600.0, b"M": 60.0, b"S": 1.0, b"m": 1e-3, b"u": 1e-6, b"n": 1e-9}
# An oversized body is read on (and dropped) up to this size before it is refused.
_DRAIN_BYTES = 4 * MAX_MESSAGE_BYTES
# One encoder for every answer: json.dumps with options builds a new one per call.
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
# JSON answers kept by their bytes, each at most JSON_KEPT_MAX_BYTES (larger pages are
# converted every time): at most about 1024 x 32 KiB x 2.5 = 80 MiB, a few MiB in practice.
JSON_BODIES_KEPT = 1024
JSON_KEPT_MAX_BYTES = 32 * 1024
_NO_FIELD = re.compile(r'has no field named "([^"]+)" at "([^"]+)"')
_BAD_FIELD = re.compile(r"Failed to parse (\S+) field")


class _Call:
    """One HTTP call: what its answer and its access line need."""

    __slots__ = ("cors", "failure", "protocol", "request_id", "rpc")

    def __init__(self, request_id: str, cors: Headers) -> None:
        self.request_id = request_id
        self.cors = cors
        self.protocol = "connect"  # how to answer: connect (+json/+proto) or grpc-web(-text)
        self.rpc = ""
        self.failure: status_pb2.Status | None = None


class Gateway:
    """The ASGI application. ``channels`` reach the three services by name."""

    def __init__(self, channels: Mapping[str, grpc.aio.Channel], cors_origins: str = "",
                 max_message_bytes: int = MAX_MESSAGE_BYTES,
                 console: ConsoleFiles | None = None) -> None:
        self.routes = build_routes()
        # Bytes in, bytes out: the gateway parses what it must, never twice.
        self.calls: dict[str, Any] = {path: channels[r.service].unary_unary(path)
                      for path, r in self.routes.items()}
        self.origins = frozenset(o.strip().encode() for o in cors_origins.split(",")
                                 if o.strip())
        self.max_bytes = max_message_bytes
        # The built web console, served at / (services/gateway/console.py); None: not built.
        self.console = console
        # Per route, bound once (govflow/metrics.py); anything else counts as "unrouted".
        self.meters = {r.rpc: metrics.RpcMeter("gateway", r.rpc)
                       for r in self.routes.values()}
        self.unrouted = metrics.RpcMeter("gateway", "unrouted")
        # The JSON of recent answers by (route, answer bytes): see _json.
        self._json_bodies: Lru[tuple[str, bytes], bytes] = Lru(JSON_BODIES_KEPT)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # no lifespan or websocket use
        started = time.perf_counter()
        headers: dict[bytes, bytes] = dict(scope["headers"])
        rid = headers.get(b"x-request-id", b"").decode("latin-1")
        if not _REQUEST_ID.fullmatch(rid):
            rid = log.new_request_id()
        call = _Call(rid, [])
        try:
            origin = headers.get(b"origin")
            preflight = scope["method"] == "OPTIONS"
            if origin is not None and origin not in self.origins and not self._same_origin(
                    origin, headers, scope):
                if preflight:  # no CORS allowance: the browser refuses the call
                    raise p.Refusal.of(PermissionDenied(
                        "requests from this origin are not allowed (CORS)",
                        reason="ORIGIN_NOT_ALLOWED"), http_status=403)
                raise p.Refusal.of(PermissionDenied(
                    "requests from this origin are not allowed (CORS)",
                    reason="ORIGIN_NOT_ALLOWED", metadata={"origin": origin.decode("latin-1")}))
            if origin is not None:
                call.cors = [(b"access-control-allow-origin", origin), (b"vary", b"Origin"),
                             (b"access-control-expose-headers", EXPOSE_HEADERS)]
            if preflight:
                call.protocol = "preflight"
                status, out_headers, body = 204, [
                    (b"access-control-allow-methods", b"POST"),
                    (b"access-control-allow-headers", ALLOW_HEADERS),
                    (b"access-control-max-age", b"7200")], b""
            elif scope["path"] == "/healthz" and scope["method"] == "GET":
                call.protocol = "health"
                status, out_headers, body = 200, [(b"content-type", b"text/plain")], b"ok\n"
            elif (scope["method"] in ("GET", "HEAD") and self.console is not None
                  and (page := self.console.answer(scope["path"])) is not None):
                call.protocol = "console"
                status, out_headers, body = page
            else:
                status, out_headers, body = await self._serve(scope, headers, receive, call)
        except p.Refusal as refusal:
            status, out_headers, body = self._error(call, refusal.status, refusal.http_status)
        except Exception:  # a bug, not the caller: logged, answered without detail
            logger.exception("http.error", request_id=rid, rpc=call.rpc)
            status, out_headers, body = self._error(call, status_pb2.Status(
                code=code_pb2.INTERNAL, message=f"internal error (request id {rid})"))
        await _send(send, status, [*call.cors, (b"x-request-id", rid.encode()), *out_headers],
                    body)
        elapsed = time.perf_counter() - started
        line: dict[str, object] = {"request_id": rid, "rpc": call.rpc or scope["path"],
                                   "protocol": call.protocol, "http_status": status,
                                   "ms": round(elapsed * 1000, 2)}
        meter = self.meters.get(call.rpc, self.unrouted)
        if call.failure is None:
            if call.protocol not in ("health", "console"):
                meter.ok(elapsed)
            log.rpc_line("http.ok", line)
        else:
            meter.failed(code_pb2.Code.Name(call.failure.code), elapsed, p.reason(call.failure))
            line["code"] = p.code_name(call.failure.code)
            line["reason"] = p.reason(call.failure)
            log.rpc_line("http.refused", line)

    def _same_origin(self, origin: bytes, headers: dict[bytes, bytes], scope: Scope) -> bool:
        """The console's own calls: a page this gateway served calls back to the host it
        came from (browsers send Origin on every POST, same-origin ones too), with the
        scheme it is served on (https when the gateway has a certificate)."""
        scheme = str(scope.get("scheme", "http")).encode()
        return self.console is not None and origin == scheme + b"://" + headers.get(b"host", b"-")

    async def _serve(self, scope: Scope, headers: dict[bytes, bytes], receive: Receive,
                     call: _Call) -> tuple[int, Headers, bytes]:
        content_type = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
        text = content_type.startswith(b"application/grpc-web-text")
        web = text or content_type.startswith(b"application/grpc-web")
        call.protocol = ("grpc-web-text" if text else "grpc-web" if web
                         else "connect+json" if content_type == b"application/json"
                         else "connect+proto" if content_type == b"application/proto"
                         else "connect")
        route = self.routes.get(scope["path"])
        if route is None:
            # Unknown and worker-only paths alike: nothing says the method exists.
            raise p.Refusal.of(DomainError(f"no such method: {scope['path']}",
                                           reason="NO_SUCH_METHOD"),
                               code=code_pb2.UNIMPLEMENTED, http_status=404)
        call.rpc = route.rpc
        if scope["method"] != "POST":
            raise p.Refusal.of(DomainError("use POST", reason="METHOD_NOT_ALLOWED"),
                               code=code_pb2.UNIMPLEMENTED, http_status=405)
        if call.protocol == "connect" or content_type in (b"application/grpc-web+json",
                                                          b"application/grpc-web-text+json"):
            raise p.Refusal.of(DomainError(
                f"content type {content_type.decode('latin-1')!r} is not supported; use "
                "application/json or application/proto (Connect), or "
                "application/grpc-web+proto", reason="UNSUPPORTED_CONTENT_TYPE"),
                code=code_pb2.UNIMPLEMENTED, http_status=415)
        if headers.get(b"content-encoding", b"identity") != b"identity" or \
                headers.get(b"grpc-encoding", b"identity") != b"identity":
            raise p.Refusal.of(DomainError("compressed requests are not supported",
                                           reason="UNSUPPORTED_ENCODING"),
                               code=code_pb2.UNIMPLEMENTED, http_status=415)
        body = await self._read(receive, headers, call)
        payload = self._request(route, body, call)
        timeout = _timeout(headers, web)
        md: list[tuple[str, str]] = [(log.REQUEST_ID_HEADER, call.request_id)]
        client = scope.get("client")
        if client:
            # The address identity counts failed logins against (it believes this header
            # only from loopback or its trusted_proxies). Set from the connection, never
            # passed on from the request, so a caller cannot choose it.
            md.append(("x-forwarded-for", str(client[0])))
        auth = headers.get(b"authorization")
        if auth is not None:
            md.append(("authorization", auth.decode("latin-1")))
        try:
            if tracing.ENABLED:  # the caller's traceparent in, this span's out
                out = await self._traced(route, payload, md, timeout, headers)
            else:
                out = await self.calls[route.path](payload, metadata=md, timeout=timeout)
        except grpc.aio.AioRpcError as err:
            return self._error(call, _status(err, route))
        if web:
            data = p.frame(0, out) + p.OK_TRAILERS
            ctype = b"application/grpc-web-text+proto" if text else b"application/grpc-web+proto"
            return 200, [(b"content-type", ctype)], base64.b64encode(data) if text else data
        if call.protocol == "connect+proto":
            return 200, [(b"content-type", b"application/proto")], out
        return 200, [(b"content-type", b"application/json")], self._json(route, out)

    def _json(self, route: Route, out: bytes) -> bytes:
        """The JSON of a service's answer. The same bytes always make the same JSON, and a
        front end asks again for what it has (the console polls an application's timeline
        while it moves), so the JSON of recent answers is kept by their bytes (bounded):
        an answer seen before costs no parse and no conversion."""
        key = (route.path, out)
        body = self._json_bodies.get(key) if len(out) <= JSON_KEPT_MAX_BYTES else None
        if body is None:
            response = json_out.message_to_dict(route.response.FromString(out))
            body = _JSON.encode(response).encode()
            if len(out) <= JSON_KEPT_MAX_BYTES:
                self._json_bodies.put(key, body)
        return body

    async def _read(self, receive: Receive, headers: dict[bytes, bytes], call: _Call) -> bytes:
        """The body, refused before it is parsed (or read on) once it is larger than the
        services' own message limit."""
        limit = self.max_bytes
        if call.protocol.startswith("grpc-web"):
            limit += 5  # the frame's header
            if call.protocol == "grpc-web-text":
                limit = (limit + 2) // 3 * 4
        declared = headers.get(b"content-length")
        too_large = declared is not None and declared.isdigit() and int(declared) > limit
        chunks: list[bytes] = []
        size = 0
        # mypy, next line: declared is checked to be digits first
        more = not too_large or int(declared) <= _DRAIN_BYTES  # type: ignore[arg-type]
        while more:
            event = await receive()
            if event["type"] == "http.disconnect":
                raise p.Refusal(status_pb2.Status(code=code_pb2.CANCELLED,
                                                  message="the caller went away"))
            chunk = event.get("body", b"")
            more = event.get("more_body", False)
            size += len(chunk)
            if size > limit:
                # Past the limit the rest is read and dropped, never held or parsed, so
                # that the caller (which sends all before it reads) gets the refusal
                # rather than a reset connection; past _DRAIN_BYTES it is not read at all.
                too_large = True
                chunks.clear()
                if size > _DRAIN_BYTES:
                    break
            elif not too_large:
                chunks.append(chunk)
        if too_large:
            raise _too_large(self.max_bytes)
        return b"".join(chunks)

    def _request(self, route: Route, body: bytes, call: _Call) -> bytes:
        """The request as protobuf bytes, checked to be a ``route.request``."""
        if call.protocol == "connect+json":
            try:
                data = json.loads(body)
            except (ValueError, RecursionError):
                raise p.Refusal.of(InvalidArgument(
                    "the body is not valid JSON", fields={"body": "not valid JSON"},
                    reason="MALFORMED_REQUEST")) from None
            if not isinstance(data, dict):
                raise p.Refusal.of(InvalidArgument(
                    f"the body must be a JSON object (a {route.request.DESCRIPTOR.name})",
                    fields={"body": "not a JSON object"}, reason="MALFORMED_REQUEST"))
            msg = route.request()
            try:
                json_format.ParseDict(data, msg)
            except (json_format.ParseError, ValueError, TypeError, RecursionError) as err:
                raise p.Refusal.of(InvalidArgument(
                    _first_line(str(err)), fields={_json_field(str(err)): _why(str(err))},
                    reason="MALFORMED_REQUEST")) from None
            return msg.SerializeToString()
        if call.protocol.startswith("grpc-web"):
            if call.protocol == "grpc-web-text":
                try:
                    body = base64.b64decode(body, validate=True)
                except (binascii.Error, ValueError):
                    raise _malformed("the body is not valid base64") from None
            if len(body) < 5 or body[0] != 0 or int.from_bytes(body[1:5], "big") != len(body) - 5:
                raise _malformed("the body must be one uncompressed gRPC-Web message frame")
            body = body[5:]
        try:
            route.request.FromString(body)  # the service would fail to parse it: say so here
        except message.DecodeError:
            raise _malformed(f"the body is not a {route.request.DESCRIPTOR.full_name}") from None
        return body

    async def _traced(self, route: Route, payload: bytes, md: list[tuple[str, str]],
                      timeout: float | None, headers: dict[bytes, bytes]) -> bytes:
        incoming = [(k.decode(), v.decode("latin-1")) for k, v in headers.items()
                    if k in (b"traceparent", b"tracestate")]
        with tracing.server_span(f"gateway{route.path}", incoming,
                                 {"http.method": "POST", "rpc.method": route.rpc}):
            tracing.inject(md)
            out: bytes = await self.calls[route.path](payload, metadata=md, timeout=timeout)
            return out

    def _error(self, call: _Call, status: status_pb2.Status,
               http_status: int | None = None) -> tuple[int, Headers, bytes]:
        call.failure = status
        if call.protocol.startswith("grpc-web"):
            # Trailers-only: the status in the headers, and again in a trailer frame for
            # clients that read only the body.
            trailers = p.grpc_web_trailers(status)
            text = call.protocol == "grpc-web-text"
            body = p.trailer_frame(trailers)
            ctype = b"application/grpc-web-text+proto" if text else b"application/grpc-web+proto"
            return 200, [(b"content-type", ctype), *trailers], (
                base64.b64encode(body) if text else body)
        status_code, body = p.connect_error(status, http_status)
        return status_code, [(b"content-type", b"application/json")], body


async def _send(send: Send, status: int, headers: Headers, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _status(err: grpc.aio.AioRpcError, route: Route) -> status_pb2.Status:
    """The service's own rich status; or, for a failure of the hop itself, one that says
    which service could not be reached (never its address)."""
    for key, value in err.trailing_metadata() or ():
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            return status_pb2.Status.FromString(value)
    code = err.code().value[0]
    if code == code_pb2.UNAVAILABLE:
        return p.Refusal.of(Unavailable(f"the {route.service} service is unavailable; try "
                                        "again", reason="SERVICE_UNAVAILABLE")).status
    return status_pb2.Status(code=code, message=err.details() or "")


def _timeout(headers: dict[bytes, bytes], web: bool) -> float | None:
    if web:
        raw = headers.get(b"grpc-timeout")
        if raw is None:
            return None
        m = _GRPC_TIMEOUT.fullmatch(raw)
        if m is None:
            raise _malformed("grpc-timeout is not a gRPC timeout", field="grpc-timeout")
        return int(m.group(1)) * _GRPC_UNITS[m.group(2)]
    raw = headers.get(b"connect-timeout-ms")
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 10:
        raise _malformed("connect-timeout-ms must be a whole number of milliseconds",
                         field="connect-timeout-ms")
    return int(raw) / 1000


def _malformed(message_text: str, field: str = "body") -> p.Refusal:
    return p.Refusal.of(InvalidArgument(message_text, fields={field: message_text},
                                        reason="MALFORMED_REQUEST"))


def _too_large(limit: int) -> p.Refusal:
    return p.Refusal.of(ResourceExhausted(
        f"the request is larger than {limit} bytes", reason="REQUEST_TOO_LARGE",
        metadata={"max_bytes": str(limit)}))


def _first_line(text: str) -> str:
    return text.split("\n", 1)[0]


def _json_field(text: str) -> str:
    """The field a json_format error names, as a path in the request (``applicant.x``)."""
    m = _NO_FIELD.search(text)
    if m:
        where = m.group(2).split(".", 1)
        return f"{where[1]}.{m.group(1)}" if len(where) > 1 else m.group(1)
    m = _BAD_FIELD.search(text)
    return m.group(1) if m else "body"


def _why(text: str) -> str:
    return "unknown field" if _NO_FIELD.search(text) else _first_line(text)
