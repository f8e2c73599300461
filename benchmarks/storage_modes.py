"""Figure 7: the dev server's storage modes. Figure 1 again on a dev server in memory, on a
file with WAL (the embedded default) and on a file with SQLite's defaults, each mode on a
stack of its own after the main one has closed: the real stack on every mode in the full
run, the bare workflow only in the quick one.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from typing import Any

from benchmarks import harness, throughput
from benchmarks.bench import Bench
from benchmarks.params import Params
from benchmarks.stats import spread


async def figure(p: Params, tmp: pathlib.Path, say: Callable[[str], None],
                 measured: dict[str, Any], activities: list[str]) -> dict[str, Any]:
    """Figure 7 on each of ``p.storage_modes`` not in ``measured`` (figure 1's result by
    mode, taken on the main stack), each stack's data under ``tmp``; ``activities`` are
    the real path's (from the main stack's warm-up) for the bare-only runs."""
    storage = dict(measured)
    for mode in p.storage_modes:
        if mode in storage:
            continue
        s = await harness.start(tmp / mode, mode, say, services=p.storage_real)
        try:
            b = Bench(s, p, say)
            if p.storage_real:
                await b.warm_up()
                storage[mode] = await throughput.figure(b, p.rounds, p.batch, same_count=False)
            else:
                b.activities = activities
                storage[mode] = await bare_only(b, p.rounds, p.batch)
        finally:
            await s.close()
    return {
        "unit": "applications/s", "modes": {
            m: {"govflow": storage[m]["govflow"], "baseline": storage[m]["baseline"],
                "ratio": storage[m]["ratio"]} for m in p.storage_modes},
        "real_stack_on_every_mode": p.storage_real,
        "default": "file-wal", "goal": "justify the embedded default",
        "met": storage["file-wal"]["baseline"]["median"] >= max(
            storage[m]["baseline"]["median"] for m in p.storage_modes if m != "memory")}


async def bare_only(bench: Bench, rounds: int, batch: int) -> dict[str, Any]:
    """Figure 1's bare side alone (a stack without the services)."""
    bare = []
    for r in range(rounds):
        bare.append(await bench.bare_batch(batch))
        bench.say(f"  throughput round {r + 1}/{rounds} bare: {bare[-1]:.1f} wf/s")
    return {"govflow": spread([]), "baseline": spread(bare), "ratio": float("nan")}
