"""Figure 2: closed-loop latency, one application at a time, from the submission until
its workflow has ended, against starting the fixed baseline (BenchBareWorkflow) until it
has ended; the two alternate sample by sample.
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks.bare import BASELINE_ACTIVITIES, BareInput
from benchmarks.bench import INSTANT, Bench
from benchmarks.stats import latency, ratio


async def figure(bench: Bench) -> dict[str, Any]:
    """Figure 2: closed loop, one at a time, measured by the caller: from the submission
    until the workflow has ended (the certificate issued and the grants released),
    against starting the fixed baseline until it has ended; interleaved."""
    real_ms: list[float] = []
    bare_ms: list[float] = []
    await bench.prepare_seniors(bench.p.latency_samples - len(bench.seniors))

    async def real() -> None:
        t0 = time.perf_counter()
        name = await bench.submit(INSTANT)
        await bench.real_done(name)
        real_ms.append(1000 * (time.perf_counter() - t0))

    async def bare() -> None:
        t0 = time.perf_counter()
        h = await bench.bare_start(BareInput(BASELINE_ACTIVITIES))
        await h.result()
        bare_ms.append(1000 * (time.perf_counter() - t0))

    for i in range(bench.p.latency_samples):
        for fn in ((real, bare) if i % 2 == 0 else (bare, real)):
            await fn()
        if (i + 1) % max(1, bench.p.latency_samples // 5) == 0:
            bench.say(f"  latency sample {i + 1}/{bench.p.latency_samples}: real "
                      f"{real_ms[-1]:.0f} ms, bare {bare_ms[-1]:.0f} ms")
    g, b = latency(real_ms), latency(bare_ms)
    r50 = ratio(g["p50"], b["p50"])
    return {"unit": "ms", "to_workflow_completed": {"govflow": g, "baseline": b},
            "ratio_p50": r50, "ratio_p95": ratio(g["p95"], b["p95"]),
            "ratio_p99": ratio(g["p99"], b["p99"]), "goal": "p50 ratio <= 1.0",
            "met": r50 <= 1.0}
