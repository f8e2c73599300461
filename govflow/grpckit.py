"""The gRPC server kit every service uses, and the client side of calls between them.

One wrapper around every unary handler (``ServiceChecks``) does, for every RPC: take or
make the request id and bind it into the logs; verify the bearer token (locally) and set
the caller's principal; map domain errors to rich statuses; log the outcome. Health
(SERVING only while the database answers; govflow/health.py) and server reflection are
registered on every server; SIGTERM drains and stops it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import signal
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from grpc_status import rpc_status

from govflow import log, metrics, tracing
from govflow.auth import TokenVerifier, current_principal
from govflow.errors import DomainError, Unauthenticated, to_status
from govflow.health import HealthReporter
from govflow.limits import check_request

logger = log.get_logger("govflow.grpc")

# Messages larger than this are refused with RESOURCE_EXHAUSTED by gRPC itself. Field by
# field limits (string lengths, items, enums, timestamps) are in govflow/limits.py.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


class ServiceChecks:
    """Request id, authentication, request limits, error mapping and access logs, in one
    place.

    Not a ``grpc.aio.ServerInterceptor``: the server's interceptor chain runs a coroutine
    per call just to find the handler. Instead every unary handler is wrapped once, as the
    servicer registers it (``registrar``), so a call goes straight to its wrapped handler.
    """

    def __init__(
        self, domain: str, verifier: TokenVerifier, public_methods: Collection[str]
    ) -> None:
        self.domain = domain
        self.verifier = verifier
        self.public_methods = set(public_methods)

    def wrap(self, handler: grpc.RpcMethodHandler[Any, Any], method: str) -> grpc.RpcMethodHandler[Any, Any]:
        """``handler`` of ``method`` (``/package.Service/Rpc``) with the per-call checks."""
        if handler is None or handler.unary_unary is None or method.startswith("/grpc."):
            return handler
        return self._wrap(handler, method)

    def registrar(self, server: grpc.aio.Server) -> _WrappingRegistrar:
        """What to hand a generated ``add_XServicer_to_server`` in place of ``server``."""
        return _WrappingRegistrar(server, self)

    def _wrap(self, handler: grpc.RpcMethodHandler[Any, Any], method: str) -> grpc.RpcMethodHandler[Any, Any]:
        # An aio servicer's coroutine (the stubs type it as a sync, plain-context callable).
        inner: Any = handler.unary_unary
        rpc = method.rsplit("/", 1)[-1]
        public = rpc in self.public_methods
        # Bound once per RPC: a call costs one observation and one increment.
        meter = metrics.RpcMeter(self.domain.rsplit(".", 1)[-1], rpc)
        # Chosen now: with tracing off, a call runs no tracing code at all.
        traced = tracing.ENABLED

        async def behavior(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            # Both keys are text metadata (no "-bin" suffix): gRPC hands their values over
            # as str. One pass; the last of repeated keys counts.
            request_id = auth = ""
            for key, value in context.invocation_metadata() or ():
                if key == log.REQUEST_ID_HEADER:
                    request_id = value  # type: ignore[assignment]  # text metadata is str
                elif key == "authorization":
                    auth = value  # type: ignore[assignment]  # text metadata is str
            if not request_id:
                request_id = log.new_request_id()
            rid_token = log.request_id_var.set(request_id)
            started = time.perf_counter()
            failure: DomainError | None = None
            # The access line's fields, and the context of every line logged meanwhile.
            line: dict[str, object] = {"request_id": request_id, "rpc": rpc}
            if traced:
                line["trace_id"] = tracing.current_trace_id()
            fields_token = log.call_fields.set(line)
            try:
                # Returned with the status (trailing metadata): no extra write per call, and
                # it is where a client looks when it reports a failure.
                context.set_trailing_metadata(((log.REQUEST_ID_HEADER, request_id),))
                principal_token = None
                if auth:
                    scheme, _, token = auth.partition(" ")
                    if scheme.lower() != "bearer" or not token:
                        raise Unauthenticated("authorization must be 'Bearer <token>'",
                                              reason="TOKEN_MALFORMED")
                    principal = await self.verifier.verify(token.strip())
                    principal_token = current_principal.set(principal)
                    line["caller"] = principal.subject
                elif not public:
                    raise Unauthenticated("this call needs a bearer token",
                                          reason="TOKEN_MISSING")
                try:
                    # After authentication, so an anonymous caller learns nothing more.
                    check_request(request)
                    response = await inner(request, context)
                finally:
                    if principal_token is not None:
                        current_principal.reset(principal_token)
                elapsed = time.perf_counter() - started
                meter.ok(elapsed)
                line["ms"] = round(elapsed * 1000, 2)
                log.rpc_line("rpc.ok", line)
                return response
            except DomainError as err:
                failure = err
                meter.failed(err.code.name, time.perf_counter() - started, err.reason)
                logger.info("rpc.refused", code=err.code.name, reason=err.reason,
                            fields=sorted(err.fields) or None, message=err.message)
            except asyncio.CancelledError:
                meter.failed("CANCELLED", time.perf_counter() - started)
                raise
            except grpc.aio.AbortError:
                code = context.code()  # set by the handler's own abort
                meter.failed(code.name if code is not None else "UNKNOWN",
                             time.perf_counter() - started)
                raise
            except Exception:
                meter.failed("INTERNAL", time.perf_counter() - started)
                logger.exception("rpc.error")
                await context.abort(
                    grpc.StatusCode.INTERNAL, f"internal error (request id {request_id})"
                )
            finally:
                log.call_fields.reset(fields_token)
                log.request_id_var.reset(rid_token)
            assert failure is not None
            status = rpc_status.to_status(to_status(failure, self.domain))
            await context.abort_with_status(_Status(status.code, status.details, (
                *status.trailing_metadata, (log.REQUEST_ID_HEADER, request_id))))

        if traced:
            checked = behavior
            span_name = method.lstrip("/")
            attributes = {"rpc.system": "grpc", "rpc.service": method.split("/")[1],
                          "rpc.method": rpc}

            async def behavior(request: Any,
                               context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                with tracing.server_span(span_name, context.invocation_metadata(), attributes):
                    return await checked(request, context)

        return grpc.unary_unary_rpc_method_handler(
            behavior,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


class _WrappedGenericHandler(grpc.GenericRpcHandler):
    def __init__(self, inner: grpc.GenericRpcHandler, wrapper: ServiceChecks) -> None:
        self.inner = inner
        self.wrapper = wrapper
        self._cache: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[Any, Any] | None:
        method: str = details.method
        known = self._cache.get(method)
        if known is None:
            handler = self.inner.service(details)
            if handler is None:
                return None
            known = self._cache[method] = self.wrapper.wrap(handler, method)
        return known


class _WrappingRegistrar:
    """Stands in for the server while a servicer registers: every handler it adds is
    wrapped by the ServiceChecks first."""

    def __init__(self, server: grpc.aio.Server, wrapper: ServiceChecks) -> None:
        self.server = server
        self.wrapper = wrapper

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self.server.add_generic_rpc_handlers(
            tuple(_WrappedGenericHandler(h, self.wrapper) for h in handlers))

    def add_registered_method_handlers(
        self, service: str, handlers: dict[str, grpc.RpcMethodHandler[Any, Any]]
    ) -> None:
        self.server.add_registered_method_handlers(
            service, {name: self.wrapper.wrap(h, f"/{service}/{name}")
                      for name, h in handlers.items()})


class _Status(collections.namedtuple("_Status", ("code", "details", "trailing_metadata")),
              grpc.Status):
    """A status with the error details and the request id in its trailing metadata."""


class GovflowServer:
    """A grpc.aio server with its health reporter and the things to close on stop."""

    def __init__(self, server: grpc.aio.Server, health_reporter: HealthReporter) -> None:
        self.server = server
        self.health = health_reporter
        self.on_stop: list[Callable[[], Awaitable[None]]] = []

    async def start(self) -> None:
        # Health first: from its first call the server knows its service's status, so a
        # check that names the service and gets NOT_FOUND has reached some other server.
        await self.health.check_once()
        await self.server.start()
        self.health.start()

    async def stop(self, grace: float = 5.0) -> None:
        await self.health.stop()
        await self.server.stop(grace)
        for fn in reversed(self.on_stop):
            with contextlib.suppress(Exception):
                await fn()

    async def wait_for_termination(self) -> None:
        await self.server.wait_for_termination()


def build_server(
    *,
    domain: str,
    full_service_name: str,
    register: Callable[[grpc.aio.Server], None],
    verifier: TokenVerifier,
    public_methods: Collection[str],
    probe: Callable[[], Awaitable[bool]],
    host: str,
    port: int,
    health_interval: float,
    credentials: grpc.ServerCredentials | None = None,
) -> tuple[GovflowServer, int]:
    """Builds (does not start) a service's server and binds it; returns it and its port.
    With ``credentials`` (govflow/tls.py ``server_credentials``) the port serves TLS only."""
    wrapper = ServiceChecks(domain, verifier, public_methods)
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
        ],
    )
    register(wrapper.registrar(server))  # type: ignore[arg-type]  # the registrar stands in for the server
    reporter = HealthReporter([full_service_name], probe, health_interval)
    health_pb2_grpc.add_HealthServicer_to_server(reporter.servicer, server)
    reflection.enable_server_reflection(
        [full_service_name, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
         reflection.SERVICE_NAME],
        server,
    )
    address = f"{host}:{port}"
    bound = (server.add_secure_port(address, credentials) if credentials is not None
             else server.add_insecure_port(address))
    if bound == 0:
        raise OSError(f"cannot listen on {host}:{port}: the port is in use or not allowed")
    return GovflowServer(server, reporter), bound


async def serve_forever(server: GovflowServer, name: str, port: int) -> None:
    """Starts ``server`` and runs until SIGTERM or SIGINT, then drains and stops."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    logger.info(f"{name}.listening", port=port)
    await stop.wait()
    logger.info("server.stopping")
    try:
        # Drain for up to 5 s; whatever still hangs after 15 s must not keep the process
        # (and an orchestrator's shutdown) waiting.
        await asyncio.wait_for(server.stop(grace=5.0), timeout=15)
    except TimeoutError:
        logger.warning("server.stop_timed_out")
    log.flush()
    logger.info("server.stopped")


def run_service(
    name: str,
    create: Callable[..., Awaitable[tuple[GovflowServer, int]]],
    *,
    before_serving: Callable[[GovflowServer], Awaitable[None]] | None = None,
) -> None:
    """A service process's ``main()``: settings from the environment, logging, optional
    test-only crash points, the server, then serve until SIGTERM."""
    from govflow import db, faults
    from govflow.settings import Settings

    async def _main() -> None:
        settings = Settings.from_env()
        faults.configure(settings)  # test-only crash points; none armed by default
        db.use_prepared(settings.shortcut_on("prepared"))  # benchmark-only switch
        log.configure(name, json=settings.log_json, level=settings.log_level)
        start_metrics(name, settings)
        tracing.configure(name, settings.otlp_endpoint)
        server, port = await create(settings)
        if before_serving is not None:
            await before_serving(server)
        await serve_forever(server, name, port)

    asyncio.run(_main())


def start_metrics(name: str, settings: Any) -> None:
    """Process ``name``'s metrics: its /metrics endpoint (``<name>_metrics_port``) with the
    business figures of its database, and, for a Temporal client, the SDK's own endpoint
    (``<name>_temporal_metrics_port``), made the runtime of every client it connects."""
    from govflow import business_metrics, temporal_data

    port = int(getattr(settings, f"{name}_metrics_port", 0) or 0)
    if port and metrics.serve(name, settings.host, port):
        collector = (business_metrics.collector_for(name, settings.database_url(name))
                     if name in business_metrics.QUERIES else None)
        if collector is not None:
            metrics.REGISTRY.register(collector)
    sdk_port = int(getattr(settings, f"{name}_temporal_metrics_port", 0) or 0)
    if sdk_port:
        temporal_data.use_runtime(metrics.temporal_runtime(settings.host, sdk_port))


# ---------------------------------------------------------------- client side


def outgoing_metadata(token: str | None = None) -> tuple[tuple[str, str], ...]:
    """Metadata for a call to another service: the current request id and a token."""
    md: list[tuple[str, str]] = []
    rid = log.request_id_var.get()
    if rid:
        md.append((log.REQUEST_ID_HEADER, rid))
    if token:
        md.append(("authorization", f"Bearer {token}"))
    if tracing.ENABLED:
        tracing.inject(md)
    return tuple(md)


def channel(addr: str, credentials: grpc.ChannelCredentials | None = None) -> grpc.aio.Channel:
    """A channel to a Govflow service; over TLS with ``credentials`` (govflow/tls.py
    ``channel_credentials``), which then verify the server's certificate."""
    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.keepalive_time_ms", 30000),
    ]
    if credentials is not None:
        return grpc.aio.secure_channel(addr, credentials, options=options)
    return grpc.aio.insecure_channel(addr, options=options)
