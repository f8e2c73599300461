"""govflow/tracing.py hands span attributes over after a span starts (the SDK's check of
an attributes mapping is slow in the workflow sandbox): its spans must be the SDK's own."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from govflow import tracing

ATTRIBUTES = {"rpc.system": "grpc", "rpc.method": "GetPerson", "attempt": 2}


@pytest.fixture
def provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    exported = InMemorySpanExporter()
    made = TracerProvider()
    made.add_span_processor(SimpleSpanProcessor(exported))
    return made, exported


def shape(span: ReadableSpan) -> tuple[object, ...]:
    assert span.status is not None
    return (span.name, span.kind, dict(span.attributes or {}), span.parent is not None,
            span.status.status_code, [e.name for e in span.events])


def run(tracer: trace.Tracer) -> None:
    with tracer.start_as_current_span("parent", kind=trace.SpanKind.SERVER,
                                      attributes=ATTRIBUTES) as parent:
        assert trace.get_current_span() is parent
        tracer.start_span("child", attributes={"k": "v"}).end()
        with pytest.raises(ValueError), tracer.start_as_current_span(
                "failed", set_status_on_exception=False):
            raise ValueError("x")
        with pytest.raises(ValueError), tracer.start_as_current_span("failed-status"):
            raise ValueError("y")


def test_late_attributes_make_the_sdks_spans(
        provider: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    made, exporter = provider
    run(made.get_tracer("sdk"))
    sdk = [shape(s) for s in exporter.get_finished_spans()]
    exporter.clear()
    late = tracing._attributes_after_start(made.get_tracer("late"))
    assert isinstance(late, trace.Tracer)
    run(late)
    assert [shape(s) for s in exporter.get_finished_spans()] == sdk
    assert len(sdk) == 4


def test_the_temporal_interceptor_uses_it(
        provider: tuple[TracerProvider, InMemorySpanExporter],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # As tracing.enable leaves it, without making this provider the process's global one
    # (only the first is kept, and tests/e2e/test_tracing.py needs its own).
    monkeypatch.setattr(tracing, "ENABLED", True)
    monkeypatch.setattr(tracing, "_provider", provider[0])
    (interceptor,) = tracing.temporal_interceptors()
    assert type(interceptor.tracer).__name__ == "LateAttributesTracer"
    interceptor.tracer.start_span("RunWorkflow:X", attributes={"temporalWorkflowID": "w"}).end()
    (span,) = provider[1].get_finished_spans()
    assert dict(span.attributes or {}) == {"temporalWorkflowID": "w"}
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name == "temporalio.contrib.opentelemetry._interceptor"
