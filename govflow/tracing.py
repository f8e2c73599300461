"""OpenTelemetry traces, off by default (``otlp_endpoint`` empty).

When on, one trace follows a request: W3C ``traceparent`` in from HTTP (the gateway) and
gRPC metadata (the one call wrapper of govflow/grpckit.py, a SERVER span per call), out on
every call to another service (``grpckit.outgoing_metadata``), and through Temporal with
the SDK's OpenTelemetry interceptor (the matters service's client starts the workflow in
the caller's trace; the worker's workflow and activity spans follow). The trace id is in
every log line of the call (``trace_id``).

When off, nothing here runs on a call: the wrappers are chosen when a handler is wrapped,
outgoing calls test one module flag, and the OpenTelemetry SDK is never imported. When on,
every trace is recorded unless the SDK's standard ``OTEL_TRACES_SAMPLER`` (and
``OTEL_TRACES_SAMPLER_ARG``) choose otherwise (docs/operations.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from govflow import log

# True once ``configure`` or ``enable`` ran; read on every outgoing call, nothing else.
ENABLED = False

_provider: Any = None
_propagator: Any = None
_tracer: Any = None
# OpenTelemetry's, bound by ``enable``: an import statement in a per-call function was
# the largest part of reading the trace id in py-spy.
_current_span: Any = None
_SERVER: Any = None


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
    in-memory exporter). Set as the global provider too (OpenTelemetry keeps a process's
    first); the Temporal interceptor takes its tracer from ``provider`` itself."""
    global ENABLED, _provider, _propagator, _tracer, _current_span, _SERVER
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    trace.set_tracer_provider(provider)  # only the first of a process's calls takes effect
    _provider = provider
    _current_span, _SERVER = trace.get_current_span, trace.SpanKind.SERVER
    _propagator = TraceContextTextMapPropagator()
    _tracer = _attributes_after_start(provider.get_tracer("govflow"))
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

    # The tracer the interceptor would take by default (same name), attributes set late.
    return [TracingInterceptor(_attributes_after_start(
        _provider.get_tracer(TracingInterceptor.__module__)))]


def _attributes_after_start(inner: Any) -> Any:
    """``inner`` (an SDK tracer) setting each span's attributes once the span has
    started, one by one, rather than handing them to the SDK's ``start_span``.

    The same spans with the same attributes (a sampler that reads attributes would not
    see them; none of the SDK's does). Why: handed a mapping, the SDK first checks it
    against ``collections.abc.Sequence``. In the worker under figure 9's "on" stack that
    check landed in ``ABCMeta.__subclasscheck__`` (through the workflow sandbox's own
    ``isinstance``) every time: py-spy put the workflow's span-making at 0.7 ms of the
    worker's CPU per instant approval, 0.3 ms with this (in a stack with traces alone the
    check was cheap: something there keeps invalidating the ABC caches). Set one at a
    time, each value is a str and takes the fast path. tests/unit/test_tracing_tracer.py
    holds the spans to the SDK's own."""
    from opentelemetry import trace

    class LateAttributesTracer(trace.Tracer):
        def start_span(self, name: str, context: Any = None,
                       kind: trace.SpanKind = trace.SpanKind.INTERNAL,
                       attributes: Any = None, links: Any = (), start_time: int | None = None,
                       record_exception: bool = True,
                       set_status_on_exception: bool = True) -> trace.Span:
            span: trace.Span = inner.start_span(name, context, kind, None, links, start_time,
                                                record_exception, set_status_on_exception)
            if attributes:
                span.set_attributes(attributes)
            return span

        # The API types this as its private _AgnosticContextManager (a context manager
        # that also decorates coroutines); callers here only use ``with``.
        @contextlib.contextmanager
        def start_as_current_span(  # type: ignore[override]  # see the comment above
                self, name: str, context: Any = None,
                kind: trace.SpanKind = trace.SpanKind.INTERNAL, attributes: Any = None,
                links: Any = (), start_time: int | None = None, record_exception: bool = True,
                set_status_on_exception: bool = True,
                end_on_exit: bool = True) -> Iterator[trace.Span]:
            span = self.start_span(name, context, kind, attributes, links, start_time,
                                   record_exception, set_status_on_exception)
            with trace.use_span(span, end_on_exit=end_on_exit,
                                record_exception=record_exception,
                                set_status_on_exception=set_status_on_exception) as current:
                yield current

    return LateAttributesTracer()


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
    carrier = {k: v for k, v in headers or () if k in ("traceparent", "tracestate")}
    parent = _propagator.extract(carrier) if carrier else None
    with _tracer.start_as_current_span(name, context=parent, kind=_SERVER,
                                       attributes=attributes) as span:
        yield span


def current_trace_id() -> str:
    """The current span's trace id as 32 hex digits ("" outside a span)."""
    ctx = _current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else ""
