"""Small statistics for the benchmark: percentiles, medians with spread, ratios."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    xs = sorted(values)
    k = (len(xs) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median of per-round values with their spread (min, max, relative IQR)."""
    if not values:
        return {"median": float("nan"), "min": float("nan"), "max": float("nan"), "n": 0}
    med = statistics.median(values)
    iqr = percentile(values, 75) - percentile(values, 25)
    return {"median": med, "min": min(values), "max": max(values),
            "iqr_pct": 100 * iqr / med if med else float("nan"), "n": len(values)}


def latency(values_ms: Sequence[float]) -> dict[str, float]:
    return {"p50": percentile(values_ms, 50), "p95": percentile(values_ms, 95),
            "p99": percentile(values_ms, 99), "mean": statistics.fmean(values_ms) if values_ms else
            float("nan"), "n": len(values_ms)}


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")
