"""OpenTelemetry: one trace follows an instant approval from the citizen's call through
matters, the workflow and each activity into identity and certificates (the SDK's
in-memory span exporter); the trace id is in the access lines. Tracing is off by default."""

from __future__ import annotations

import pathlib
import uuid
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from structlog.testing import capture_logs
from temporalio.testing import WorkflowEnvironment

from govflow import log, tracing
from govflow.matters.v1 import matters_pb2 as mpb
from govflow.settings import Settings
from tests.e2e.helpers import new_senior, wait_done
from tests.stack import running_stack


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.enable(provider)
    try:
        yield exporter
    finally:
        tracing.disable()


def test_tracing_is_off_by_default() -> None:
    assert Settings().otlp_endpoint == ""
    assert not tracing.configure("test", "")
    assert not tracing.ENABLED and tracing.temporal_interceptors() == []


async def test_an_instant_approval_is_one_trace(
        tmp_path: pathlib.Path, temporal_env: WorkflowEnvironment,
        spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch) -> None:
    # Access lines through structlog, where capture_logs sees them.
    monkeypatch.setattr(log, "_rpc_line", None)
    async with running_stack(tmp_path, temporal_env.client) as stack:
        _senior, md = await new_senior(stack)
        spans.clear()
        tracer = trace.get_tracer("test")
        with tracer.start_as_current_span("citizen") as root, capture_logs() as lines:
            md_traced = list(md)
            tracing.inject(md_traced)
            sub = await stack.matters.SubmitApplication(mpb.SubmitApplicationRequest(
                matter="matters/senior-citizen-card", request_id=uuid.uuid4().hex),
                metadata=tuple(md_traced))
            app = await wait_done(stack, md, sub.application.name)
            # Any line logged in a span has its trace id.
            assert log.add_trace_id(None, "info", {})["trace_id"] == format(
                root.get_span_context().trace_id, "032x")
        assert app.status == mpb.APPLICATION_STATUS_COMPLETED
    trace_id = root.get_span_context().trace_id
    mine = [s for s in spans.get_finished_spans() if s.context.trace_id == trace_id]
    by_id = {s.context.span_id: s for s in mine}

    def path(span: ReadableSpan) -> list[str]:
        out = [span.name]
        while span.parent is not None and span.parent.span_id in by_id:
            span = by_id[span.parent.span_id]
            out.append(span.name)
        return out[::-1]

    names = [s.name for s in mine]
    submit = "govflow.matters.v1.MattersService/SubmitApplication"
    assert submit in names
    assert any(n.startswith("StartWorkflow:ApplicationWorkflow") for n in names), names
    assert any(n.startswith("RunWorkflow:ApplicationWorkflow") for n in names), names
    # Every span of the trace hangs under the citizen's call, through the submit.
    for span in mine:
        chain = path(span)
        assert chain[0] == "citizen", chain
        assert span.name == "citizen" or chain[1] == submit, chain
    # Activities run in the workflow's trace and call the services in it: the certificate
    # is issued by certificates, under an activity, under the workflow.
    issued = [path(s) for s in mine
              if s.name == "govflow.certificates.v1.CertificatesService/IssueCertificate"]
    assert issued, names
    # (The SDK parents workflow-side spans to the workflow's start: a workflow outlives
    # any one worker, so it has no long-lived span of its own.)
    assert issued[0][2:] == ["StartWorkflow:ApplicationWorkflow",
                             "StartActivity:issue_certificate", "RunActivity:issue_certificate",
                             "govflow.certificates.v1.CertificatesService/IssueCertificate"]
    assert any(s.name.startswith("govflow.identity.v1.IdentityService/") for s in mine), names
    # The access lines of the trace carry its id, those of the activities' calls too.
    traced = {line["rpc"] for line in lines
              if line.get("trace_id") == format(trace_id, "032x")}
    assert {"SubmitApplication", "IssueCertificate", "GetPerson"} <= traced, traced
