"""What a bench run is asked to do: the sizes of the quick and full runs, and the figures
by the names ``--only`` takes."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Params:
    mode: str
    rounds: int  # interleaved rounds of figures 1, 4 (unless read_rounds), 5 and 7
    batch: int  # applications per throughput round (figures 1 and 7)
    latency_samples: int  # closed-loop samples per side (figure 2)
    decisions: int  # officer decisions per side (figure 3)
    read_seconds: float  # length of one read-path measurement (figure 4)
    read_concurrency: int
    verify_iterations: int  # per round (figure 5)
    scale_base: int  # applications parked for the small size (figure 6)
    scale_n: int  # ... and the large one
    scale_queries: int  # queries per kind, size and round
    storage_modes: tuple[str, ...]
    # Of scale_n, how many are parked through the real workflow; the rest are copies of
    # real parked rows written straight into the matters read model (see scale()).
    scale_real: int = 0
    # Figure 7 with the real stack on every mode (full), or the bare workflow only (quick).
    storage_real: bool = True
    # Interleaved rounds of figure 4 (0: ``rounds``). Its per-round ratios spread widely on
    # a shared machine (0.39-0.70 in one run of three rounds), so the full run takes more
    # of them for its median.
    read_rounds: int = 0
    # Slices a side in one round of a read path against its baseline (figure 4): the
    # two alternate slice by slice, read_seconds a side in all.
    read_slices: int = 6
    # Rounds of figure 6's queries at each size, each once the stack is quiet.
    scale_rounds: int = 3
    # Interleaved rounds of figure 9 (0: ``rounds``). Its rounds are a batch of seconds a
    # side, and the gap it measures (a few percent) is smaller than one round's spread on
    # a shared machine: with three, the median read 0.89-1.12 over a day's runs of an
    # unchanged stack, so the full run takes more of them for its medians.
    observability_rounds: int = 0


QUICK = Params("quick", rounds=2, batch=8, latency_samples=5, decisions=3, read_seconds=0.5,
               read_concurrency=8, verify_iterations=2000, scale_base=10, scale_n=60,
               scale_queries=15, storage_modes=("file-wal", "memory", "file-default"),
               scale_real=30, storage_real=False, read_slices=2, scale_rounds=2)
FULL = Params("full", rounds=3, batch=40, latency_samples=30, decisions=40, read_seconds=3.0,
              read_concurrency=16, verify_iterations=20000, scale_base=100, scale_n=10000,
              scale_queries=200, storage_modes=("file-wal", "memory", "file-default"),
              scale_real=1000, read_rounds=5, observability_rounds=20)

# The figures by the names ``--only`` takes (all by default).
FIGURES = frozenset({"throughput", "latency", "decision", "reads", "verify", "scale", "storage",
                     "gateway", "observability", "catalogue", "shortcuts"})
