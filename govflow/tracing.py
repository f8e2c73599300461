"""OpenTelemetry traces, off by default (``otlp_endpoint`` empty).

When on, one trace follows a request: W3C ``traceparent`` in from HTTP (the gateway) and
gRPC metadata (the one call wrapper of govflow/grpckit.py, a SERVER span per call), out on
every call to another service (``grpckit.outgoing_metadata``), and through Temporal with
the SDK's OpenTelemetry interceptor (the matters service's client starts the workflow in
the caller's trace; the worker's workflow and activity spans follow). The trace id is in
every log line of the call (``trace_id``).

When off, nothing here runs on a call: the wrappers are chosen when a handler is wrapped,
outgoing calls test one module flag, and the OpenTelemetry SDK is never imported.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from govflow import log

# True once ``configure`` or ``enable`` ran; read on every outgoing call, nothing else.
ENABLED = False

_propagator: Any = None
_tracer: Any = None


def configure(process: str, endpoint: str) -> bool:
    """Turns tracing on for this process, exporting spans over OTLP/gRPC to ``endpoint``
    (e.g. ``http://otel-collector:4317``); an empty endpoint leaves it off."""
    if not endpoint:
        return False
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": f"govflow-{process}"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    enable(provider)
    return True


def enable(provider: Any) -> None:
    """Turns tracing on with ``provider`` (an SDK TracerProvider; tests pass one with an
    in-memory exporter). Set as the global provider, which the Temporal interceptor uses."""
    global ENABLED, _propagator, _tracer
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    trace.set_tracer_provider(provider)
    _propagator = TraceContextTextMapPropagator()
    _tracer = provider.get_tracer("govflow")
    ENABLED = True
    log.trace_ids(True)


def disable() -> None:
    """Off again for what is wrapped or connected from now on (tests)."""
    global ENABLED
    ENABLED = False
    log.trace_ids(False)


def temporal_interceptors() -> list[Any]:
    """The Temporal SDK's OpenTelemetry interceptor while tracing is on (client and worker:
    the workflow, each activity, and the context carried in Temporal's headers)."""
    if not ENABLED:
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor()]


def inject(metadata: list[tuple[str, str]]) -> None:
    """Adds the current span's ``traceparent`` (and ``tracestate``) to ``metadata``."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    metadata.extend(carrier.items())


@contextlib.contextmanager
def server_span(name: str, headers: Any,
                attributes: dict[str, str]) -> Iterator[Any]:
    """A SERVER span for one incoming call, the child of the caller's ``traceparent``
    when it sent one; ``headers``: (key, value) pairs (gRPC metadata) or None."""
    from opentelemetry.trace import SpanKind

    carrier = {k: v for k, v in headers or () if k in ("traceparent", "tracestate")}
    parent = _propagator.extract(carrier) if carrier else None
    with _tracer.start_as_current_span(name, context=parent, kind=SpanKind.SERVER,
                                       attributes=attributes) as span:
        yield span


def current_trace_id() -> str:
    """The current span's trace id as 32 hex digits ("" outside a span)."""
    from opentelemetry import trace

    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else ""
