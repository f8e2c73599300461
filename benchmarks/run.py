"""One bench run: starts the stacks, runs the figures asked for, each against its baseline
in interleaved rounds, and writes the report.

1 throughput (benchmarks/throughput.py), 2 closed-loop latency (latency.py) and 3 officer
decisions (decision.py) go through the real services and worker against BenchBareWorkflow
on the same dev server; 4 read paths (reads.py) go against the echo server; 5 certificate
verification (certificate_verify.py) runs in this process; 6 (scale.py) parks applications
on officer tasks and compares list queries at two sizes; 7 (storage_modes.py) repeats 1 on
each storage mode; 8 reads an application over Connect JSON through the HTTP gateway
against native gRPC (gateway.py); 9 is figure 1's instant approvals with metrics (scraped)
and tracing (exported) on against both off, on two stacks side by side (observability.py);
10 loads the province's catalogue and queries it at two sizes (catalogue.py); 11
("shortcuts") measures each shortcut on a private library API with against without, on
two stacks side by side (shortcuts.py). The sizes are in params.py, the stack's callers in
bench.py, the report's format in report.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import pathlib
import platform
import shutil
import tempfile
import time
from typing import Any

from benchmarks import (
    catalogue,
    certificate_verify,
    decision,
    gateway,
    harness,
    latency,
    observability,
    reads,
    report,
    scale,
    shortcuts,
    storage_modes,
    throughput,
)
from benchmarks.bench import Bench
from benchmarks.params import FIGURES, Params


class Progress:
    """Prints a progress line with the seconds since the run began."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def __call__(self, text: str) -> None:
        print(f"[{time.monotonic() - self.t0:7.1f}s] {text}", flush=True)


async def run(p: Params, out_dir: pathlib.Path, only: frozenset[str] = FIGURES) -> dict[str, Any]:
    """Runs the figures in ``only`` with the sizes ``p`` and writes the report to ``out_dir``."""
    say = Progress()
    started = dt.datetime.now(dt.UTC)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="govflow-bench-"))
    figures: dict[str, Any] = {}
    storage: dict[str, Any] = {}
    settings_used: dict[str, Any] = {}
    try:
        say(f"govflow bench ({p.mode} mode); stack data in {tmp}")
        stack = await harness.start(tmp / "file-wal", "file-wal", say)
        settings_used = {"worker_max_concurrent_activities":
                         stack.settings.worker_max_concurrent_activities,
                         "worker_max_cached_workflows": stack.settings.worker_max_cached_workflows}
        try:
            bench = Bench(stack, p, say)
            await bench.warm_up()
            if "throughput" in only or "storage" in only:
                say(f"1/9 throughput of instant approvals ({p.rounds} rounds of {p.batch})")
                figures["throughput"] = await throughput.figure(bench, p.rounds, p.batch)
                storage["file-wal"] = figures["throughput"]
            if "latency" in only:
                say(f"2/9 closed-loop latency ({p.latency_samples} samples each)")
                figures["latency"] = await latency.figure(bench)
            if "decision" in only:
                say(f"3/9 officer decision round trip ({p.decisions} each)")
                figures["decision"] = await decision.figure(bench)
            if "reads" in only:
                say(f"4/9 read paths ({p.read_rounds or p.rounds} rounds of {p.read_seconds}s each)")
                figures["reads"] = await reads.figure(bench)
            if "verify" in only:
                say("5/9 certificate verification in-process")
                figures["certificate_verify"] = certificate_verify.figure(p, say)
            if "scale" in only:
                say(f"6/9 scale: {p.scale_base} then {p.scale_n} parked applications")
                figures["scale"] = await scale.figure(bench)
            if "gateway" in only:
                say(f"8/9 GetApplication over Connect JSON through the gateway against native "
                    f"gRPC ({p.read_rounds or p.rounds} rounds of {p.read_seconds}s a side)")
                figures["gateway"] = await gateway.figure(bench)
        finally:
            await stack.close()
        if "storage" in only:
            say("7/9 dev server storage modes (figure 1 on each)")
            figures["storage_modes"] = await storage_modes.figure(p, tmp, say, storage,
                                                                  bench.activities)
        if "observability" in only:
            say(f"9/9 instant approvals with metrics and tracing on against both off "
                f"({p.observability_rounds or p.rounds} rounds of {p.batch}, two stacks side by side)")
            figures["observability"] = await observability.figure(
                p, tmp, say, lambda s: Bench(s, p, say))
        if "catalogue" in only:
            say("10/10 catalogue at scale: the province's matters loaded, then ListMatters at "
                "the demo's size and at 600+ matters, taking turns")
            figures["catalogue"] = await catalogue.catalogue_figure(p.mode == "quick", tmp, say)
        if "shortcuts" in only:
            say(f"11 shortcuts on private APIs, with against without "
                f"({p.read_rounds or p.rounds} rounds of {p.batch}, the read paths; "
                "two stacks side by side)")
            figures["shortcuts"] = await shortcuts.figure(p, tmp, say, lambda s: Bench(s, p, say))
        if "throughput" not in only:
            figures.pop("throughput", None)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result = {
        "meta": {"mode": p.mode, "started": started.isoformat(),
                 "duration_s": round(time.monotonic() - say.t0, 1),
                 "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                             "platform": platform.platform()},
                 "params": dataclasses.asdict(p), "worker": settings_used,
                 "embedded_storage": "file-wal", "figures_run": sorted(only)},
        "figures": figures,
    }
    partial = "" if only == FIGURES else "-" + "-".join(sorted(only))
    written = report.write(result, out_dir, started, partial)
    say(f"wrote {written} and .md")
    return result
