"""Figure 1: instant approvals a second through the real services and worker, against the
fixed baseline (BenchBareWorkflow with three regular no-op activities on its bare worker)
on the same dev server, in interleaved rounds; the CPU each process spends per workflow is
kept beside the rates.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from benchmarks.bare import BASELINE_ACTIVITIES
from benchmarks.bench import Bench
from benchmarks.stats import percentile, ratio, spread

# Processes whose CPU a round is charged with (the bench process's own client work and
# the idle echo server are left out).
CPU_PROCESSES = ("temporal", "identity", "certificates", "matters", "worker", "bare-worker")


async def same_count_batch(bench: Bench, n: int) -> float:
    """The secondary baseline: as many no-op activities as the real path's history holds
    (regular and local alike)."""
    return await bench.bare_batch(n, max(1, len(bench.activities)))


async def figure(bench: Bench, rounds: int, batch: int, *, same_count: bool = True
                 ) -> dict[str, Any]:
    """Figure 1: instant approvals a second against the fixed baseline (BareWorkflow
    with three regular no-op activities, on its bare worker), in interleaved rounds;
    with ``same_count`` the same-count bare workflow runs in each round too, as a
    secondary line."""
    sides: dict[str, list[float]] = {"real": [], "bare": [], "same_count": []}
    fns: dict[str, Callable[[int], Awaitable[float]]] = {
        "real": bench.real_batch, "bare": bench.bare_batch,
        "same_count": lambda n: same_count_batch(bench, n)}
    # CPU ms per workflow of each process, per round: less noisy than the rates on a
    # shared machine, and it says which process a change made cheaper.
    cpu: dict[str, list[dict[str, float]]] = {"real": [], "bare": []}
    await bench.prepare_seniors(rounds * batch - len(bench.seniors))
    for r in range(rounds):
        order = ["real", "bare"] if r % 2 == 0 else ["bare", "real"]
        if same_count:
            order.append("same_count")
        for label in order:
            before = bench.stack.cpu()
            sides[label].append(await fns[label](batch))
            after = bench.stack.cpu()
            if label in cpu:
                cpu[label].append({n: 1000 * (after[n] - before[n]) / batch
                                   for n in CPU_PROCESSES if n in after})
            bench.say(f"  throughput round {r + 1}/{rounds} {label}: "
                      f"{sides[label][-1]:.1f} wf/s")
    cpu_ms = {label: {n: percentile([c[n] for c in per], 50) for n in per[0]}
              for label, per in cpu.items() if per}
    for label, per_process in cpu_ms.items():
        bench.say(f"  throughput CPU ms per workflow, {label}: {sum(per_process.values()):.0f}"
                  " (" + ", ".join(f"{n} {v:.0f}" for n, v in per_process.items() if v >= 0.5)
                  + ")")
    real, bare = sides["real"], sides["bare"]
    rs, bs = spread(real), spread(bare)
    out: dict[str, Any] = {
        "unit": "applications/s", "batch": batch, "rounds": rounds,
        "activities": len(bench.activities),
        "local_activities": sum(a.startswith("local:") for a in bench.activities),
        "baseline_activities": BASELINE_ACTIVITIES,
        "govflow": rs, "baseline": bs,
        "per_round_ratios": [ratio(a, b) for a, b in zip(real, bare, strict=True)],
        "cpu_ms_per_workflow_p50": cpu_ms,
        "ratio": ratio(rs["median"], bs["median"]), "goal": ">= 0.8",
        "met": ratio(rs["median"], bs["median"]) >= 0.8}
    if same_count:
        ss = spread(sides["same_count"])
        out["same_count"] = {"baseline": ss, "ratio": ratio(rs["median"], ss["median"])}
    return out
