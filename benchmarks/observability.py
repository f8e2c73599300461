"""Figure 9: instant-approval throughput with metrics and tracing on against both off.

Two stacks side by side on the same machine, each with its own dev server (file-wal):
"off" has every metrics port at 0 and no OTLP endpoint; "on" serves every metrics
endpoint, which this process scrapes every ``SCRAPE_SECONDS`` as Prometheus would
(business collectors included), and exports every span over OTLP/gRPC to a sink in this
process that accepts and drops them. Rounds alternate between the two (the order flips
every round); the figure is the ratio of the median rates (on / off).
"""

from __future__ import annotations

import asyncio
import pathlib
import threading
import urllib.request
from collections.abc import Callable
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from benchmarks import harness
from benchmarks.stats import percentile, ratio, spread
from govflow import metrics

SCRAPE_SECONDS = 5.0
# The processes an application's work runs in (figure 1's, without the bare worker).
CPU_PROCESSES = ("temporal", "identity", "certificates", "matters", "worker", "gateway")
OFF: dict[str, object] = {**{name: 0 for name in harness.METRICS_PORTS}, "otlp_endpoint": ""}


def on_settings(sink_port: int) -> dict[str, object]:
    """The "on" stack: metrics on their (free) ports, spans to the sink."""
    return {"otlp_endpoint": f"http://127.0.0.1:{sink_port}"}


class SpanSink(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP trace receiver that counts the spans it is sent and keeps none."""

    def __init__(self) -> None:
        self.spans = 0

    async def Export(self, request: Any, context: Any) -> Any:  # noqa: N802 (the RPC's name)
        self.spans += sum(len(ss.spans) for rs in request.resource_spans
                          for ss in rs.scope_spans)
        return trace_service_pb2.ExportTraceServiceResponse()


class Scraper:
    """Fetches every metrics endpoint of a stack every SCRAPE_SECONDS, in a thread."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.scrapes = 0
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:  # at once, then every SCRAPE_SECONDS
            for url in self.urls:
                try:
                    with urllib.request.urlopen(url, timeout=5) as resp:
                        resp.read()
                    self.scrapes += 1
                except OSError:
                    self.failures += 1
            if self._stop.wait(SCRAPE_SECONDS):
                return

    def __enter__(self) -> Scraper:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


async def figure(p: Any, tmp: pathlib.Path, say: Callable[[str], None],
                 make_bench: Callable[[harness.BenchStack], Any]) -> dict[str, Any]:
    sink = SpanSink()
    server = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(  # type: ignore[no-untyped-call]  # generated OTLP stub
        sink, server)
    sink_port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    stacks: dict[str, harness.BenchStack] = {}
    rounds = p.observability_rounds or p.rounds
    try:
        stacks["off"] = await harness.start(tmp / "observability-off", "file-wal", say,
                                            overrides=OFF)
        stacks["on"] = await harness.start(tmp / "observability-on", "file-wal", say,
                                           overrides=on_settings(sink_port))
        benches = {label: make_bench(stack) for label, stack in stacks.items()}
        for bench in benches.values():
            await bench.warm_up()
            await bench.prepare_seniors(rounds * p.batch)
        rates: dict[str, list[float]] = {"on": [], "off": []}
        # CPU ms per workflow of the stack's processes, per round: steadier than the rates
        # on a shared machine (the other stack idles meanwhile).
        cpu: dict[str, list[float]] = {"on": [], "off": []}
        urls = [f"http://{addr}/metrics" for _job, addr in metrics.endpoints(stacks["on"].settings)]
        with Scraper(urls) as scraper:
            for n in range(rounds):
                order = ["on", "off"] if n % 2 == 0 else ["off", "on"]
                for label in order:
                    before = stacks[label].cpu()
                    rates[label].append(await benches[label].real_batch(p.batch))
                    after = stacks[label].cpu()
                    cpu[label].append(sum(1000 * (after[n] - before[n]) / p.batch
                                          for n in CPU_PROCESSES if n in after))
                    say(f"  observability round {n + 1}/{rounds} {label}: "
                        f"{rates[label][-1]:.1f} wf/s")
        await asyncio.sleep(6)  # the batch span processor exports every 5 s
    finally:
        for stack in stacks.values():
            await stack.close()
        await server.stop(0)
    on, off = spread(rates["on"]), spread(rates["off"])
    r = ratio(on["median"], off["median"])
    return {"unit": "applications/s", "batch": p.batch, "rounds": rounds,
            "metrics_and_tracing_on": on, "both_off": off,
            "per_round_ratios": [ratio(a, b) for a, b in zip(rates["on"], rates["off"],
                                                              strict=True)],
            "cpu_ms_per_workflow_p50": {label: percentile(v, 50) for label, v in cpu.items()},
            "scrapes": scraper.scrapes, "scrape_failures": scraper.failures,
            "scrape_interval_s": SCRAPE_SECONDS, "spans_exported": sink.spans,
            "ratio": r, "goal": ">= 0.95", "met": r >= 0.95}
