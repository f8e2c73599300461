"""Figure 3: an officer's decision round trip. Chen Jing decides claimed acceptance tasks
(``DecideTask``, approve) one at a time against a no-op Update of a parked
BenchBareWorkflow, the two alternating, each after the previous one's follow-up has
settled; the same back to back is shown beside, and where the time goes (the Update's
workflow task from the history, one call through the matters service).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from benchmarks.bare import BareInput
from benchmarks.bench import Bench
from benchmarks.stats import latency, percentile, ratio
from govflow.matters.v1 import matters_pb2 as mpb

# A decision sets off its follow-up in the workflow (the task's and timeline's writes,
# the next step's task and timer: a few hundred milliseconds of the worker's time).
# Each measured decision waits this long after the one before, so it measures one
# round trip, not the previous one's follow-up; the same wait comes before every bare
# Update. The back-to-back figure, without it, is reported beside.
DECISION_SETTLE_SECONDS = 0.5


async def figure(bench: Bench) -> dict[str, Any]:
    """Figure 3 on ``bench``'s stack: each decision against a no-op Update of a parked
    bare workflow, one at a time, settled and back to back, with where the time goes."""
    n = bench.p.decisions
    officer, tasks = await bench.claimed_tasks(2 * n)
    names = ["applications/" + t.removeprefix("tasks/").removesuffix("-acceptance-sz-amr")
             for t in tasks]
    await asyncio.sleep(1.0)  # let the claims' own activities settle
    parked = await bench.bare_start(BareInput(0, park=True))

    async def sample(tasks: list[str], settle: float) -> tuple[list[float], list[float]]:
        real_ms: list[float] = []
        bare_ms: list[float] = []

        async def real(task: str) -> None:
            t0 = time.perf_counter()
            await bench.matters.DecideTask(mpb.DecideTaskRequest(
                name=task, decision=mpb.DECISION_APPROVE), metadata=officer)
            real_ms.append(1000 * (time.perf_counter() - t0))

        async def bare(_: str) -> None:
            t0 = time.perf_counter()
            await parked.execute_update("noop", result_type=str)
            bare_ms.append(1000 * (time.perf_counter() - t0))

        for i, task in enumerate(tasks):
            for fn in ((real, bare) if i % 2 == 0 else (bare, real)):
                await asyncio.sleep(settle)
                await fn(task)
        return real_ms, bare_ms

    async def hop_ms() -> list[float]:
        """One authenticated call through the matters service after the same pause
        (the officer reads the application): the hop the real path has and the bare
        one does not (bench -> matters -> Temporal against bench -> Temporal)."""
        out = []
        for name in names[:n]:
            await asyncio.sleep(DECISION_SETTLE_SECONDS)
            t0 = time.perf_counter()
            await bench.matters.GetApplication(mpb.GetApplicationRequest(name=name),
                                               metadata=officer)
            out.append(1000 * (time.perf_counter() - t0))
        return out

    real_ms, bare_ms = await sample(tasks[:n], DECISION_SETTLE_SECONDS)
    burst_real, burst_bare = await sample(tasks[n:], 0.0)
    hop = await hop_ms()
    await parked.signal("finish")
    bench.say(f"  decisions: DecideTask p50 {percentile(real_ms, 50):.1f} ms, "
              f"no-op Update p50 {percentile(bare_ms, 50):.1f} ms (back to back: "
              f"{percentile(burst_real, 50):.0f} vs {percentile(burst_bare, 50):.0f} ms)")
    # Where the time goes: the worker's share is the workflow task that runs the Update
    # (started -> completed in the history), the rest is the two gRPC hops and the service.
    real_wft = [ms for t in tasks[:n] for ms in await bench.update_task_ms(
        bench.wid(t.removeprefix("tasks/").split("-acceptance-")[0]), "decide_task")]
    bare_wft = await bench.update_task_ms(parked.id, "noop")
    g, b = latency(real_ms), latency(bare_ms)
    r = ratio(g["p50"], b["p50"])
    breakdown = {"update_workflow_task_ms_p50": {"govflow": percentile(real_wft, 50),
                                                 "baseline": percentile(bare_wft[:n], 50)},
                 "service_hop_ms_p50": percentile(hop, 50)}
    bench.say(f"  decisions: the Update's workflow task p50 {percentile(real_wft, 50):.1f} ms"
              f" (bare {percentile(bare_wft[:n], 50):.1f} ms); one call through the matters"
              f" service after the same pause (GetApplication) {percentile(hop, 50):.1f} ms")
    gb, bb = latency(burst_real), latency(burst_bare)
    return {"unit": "ms", "govflow": g, "baseline": b, "ratio_p50": r,
            "ratio_p95": ratio(g["p95"], b["p95"]), "goal": "p50 ratio <= 1.5",
            "met": r <= 1.5, "settle_seconds": DECISION_SETTLE_SECONDS,
            "breakdown": breakdown,
            "back_to_back": {"govflow": gb, "baseline": bb,
                             "ratio_p50": ratio(gb["p50"], bb["p50"])}}
