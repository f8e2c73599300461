"""``govflow bench --quick`` runs the whole benchmark end to end and writes every figure.

Timings are never asserted (they depend on the machine and its load); only that the run
succeeds and that the JSON and Markdown hold every figure with numbers in it."""

from __future__ import annotations

import json
import math
import pathlib
import statistics
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]

FIGURES = ("throughput", "latency", "decision", "reads", "certificate_verify", "scale",
           "storage_modes", "gateway", "observability", "catalogue")


def _number(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def test_quick_bench_writes_every_figure(tmp_path: pathlib.Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--quick",
                           "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "1/9" in proc.stdout and "9/9" in proc.stdout  # progress was shown
    result = json.loads((tmp_path / "latest-quick.json").read_text())
    assert (tmp_path / "latest-quick.md").read_text().startswith("# govflow bench (quick")
    assert result["meta"]["mode"] == "quick"
    f = result["figures"]
    assert set(FIGURES) <= set(f)
    for name in ("throughput",):
        assert _number(f[name]["govflow"]["median"]) and _number(f[name]["baseline"]["median"])
        assert _number(f[name]["ratio"]) and f[name]["activities"] > 0
    # The fixed baseline (issue 25): three regular no-op activities; the same-count bare
    # workflow only as a secondary line.
    assert f["throughput"]["baseline_activities"] == 3
    assert _number(f["throughput"]["same_count"]["ratio"])
    for side in ("govflow", "baseline"):
        for q in ("p50", "p95", "p99"):
            assert _number(f["latency"]["to_workflow_completed"][side][q])
            assert _number(f["decision"][side][q])
    assert _number(f["latency"]["ratio_p50"]) and _number(f["decision"]["ratio_p50"])
    assert _number(f["reads"]["baseline"]["median"])
    assert set(f["reads"]["paths"]) == {"GetApplication", "ListTasks", "VerifyCertificate"}
    for path in f["reads"]["paths"].values():
        # Each round pairs the path with its baseline; the figure is the rounds' median.
        assert len(path["per_round_ratios"]) == f["reads"]["rounds"] >= 2
        assert _number(path["ratio"])
        assert path["ratio"] == pytest.approx(statistics.median(path["per_round_ratios"]))
        assert {"auth_us", "database_us", "serialisation_us"} <= set(path["breakdown_us"])
        assert all(_number(v) for v in path["breakdown_us"].values())
    assert _number(f["certificate_verify"]["ratio"])
    scale = f["scale"]
    assert _number(scale["kib_per_parked_application_worker_and_services"])
    assert len(scale["queries_ms"]) == 2
    # The small side is the copy taken at the small size: it holds fewer open tasks.
    held = scale["open_tasks_in_database"]
    assert held["small_copy"] < held["real"]
    assert held["real"] - held["small_copy"] >= scale["parked_large"] - scale["parked_small"]
    for q in scale["queries_ms"].values():
        assert _number(q["p99_ratio"])
        small, large = scale["parked_small"], scale["parked_large"]
        beside = f"at_{small}_beside_{large}"
        for size in (f"at_{small}", f"at_{large}", beside):
            # Each size's p99 is the median of its rounds' (taken once the stack is quiet).
            assert len(q[size]["rounds_p99"]) >= 2
            assert q[size]["p99"] == pytest.approx(statistics.median(q[size]["rounds_p99"]))
        # The ratio pairs the large size with the small copy round by round.
        assert q["per_round_ratios"] == pytest.approx(
            [a / b for a, b in zip(q[f"at_{large}"]["rounds_p99"], q[beside]["rounds_p99"],
                                   strict=True)])
        assert q["p99_ratio"] == pytest.approx(statistics.median(q["per_round_ratios"]))
    assert set(f["storage_modes"]["modes"]) == {"memory", "file-wal", "file-default"}
    for mode in f["storage_modes"]["modes"].values():
        assert _number(mode["baseline"]["median"])
    gateway = f["gateway"]
    assert gateway["rpc"] == "GetApplication"
    for side in ("connect_json", "native_grpc", "connect_proto"):
        assert _number(gateway[side]["median"])
    # Rounds of alternating slices; the figure is the median of the rounds' ratios.
    assert len(gateway["per_round_ratios"]) == gateway["rounds"] >= 2
    assert gateway["ratio"] == pytest.approx(statistics.median(gateway["per_round_ratios"]))
    assert set(gateway["cpu_us_per_call_p50"]["connect_json"]) == {"gateway", "matters"}
    assert all(_number(v) for per in gateway["cpu_us_per_call_p50"].values()
               for v in per.values())
    assert "| 8 | GetApplication over Connect JSON" in (tmp_path / "latest-quick.md").read_text()
    obs = f["observability"]
    for side in ("metrics_and_tracing_on", "both_off"):
        assert _number(obs[side]["median"])
    assert len(obs["per_round_ratios"]) == obs["rounds"] >= 2 and _number(obs["ratio"])
    # The "on" side really was on: its endpoints were scraped and its spans exported.
    assert obs["scrapes"] > 0 and obs["scrape_failures"] == 0 and obs["spans_exported"] > 0
    assert "| 9 | instant-approval throughput, metrics" in (tmp_path / "latest-quick.md").read_text()
    cat = f["catalogue"]  # figure 10: the generated catalogue loaded, then queried at both sizes
    assert cat["matters"]["small"] >= 7 and cat["matters"]["large"] >= cat["matters"]["small"] + 600
    assert cat["agencies_loaded"] >= 40 and cat["load"]["matters"] >= 600
    assert _number(cat["load"]["matters_seconds"]) and isinstance(cat["load"]["met"], bool)
    assert len(cat["queries"]) >= 5
    for q in cat["queries"].values():
        assert len(q["per_round_ratios"]) == cat["rounds"] >= 2 and _number(q["p99_ratio"])
        assert q["p99_ratio"] == pytest.approx(statistics.median(q["per_round_ratios"]))
        assert q["returned"]["large"] >= q["returned"]["small"]
    assert "| 10 | ListMatters p99, keyword" in (tmp_path / "latest-quick.md").read_text()
    for fig in f.values():
        assert isinstance(fig["met"], bool) and fig["goal"]
    # Figure 11: each shortcut on a private API with against without, on two stacks.
    sc = f["shortcuts"]
    assert sc["off"] == {"bench_shortcuts_off": "prepared"}
    for label in ("on", "off"):
        assert _number(sc["throughput"][label]["median"])
        assert _number(sum(sc["cpu_ms_per_workflow_p50"][label].values()))
    assert set(sc["reads"]) == {"GetApplication", "ListTasks", "VerifyCertificate"}
    for path in sc["reads"].values():
        assert len(path["per_round_cpu_ratios"]) == sc["rounds"] >= 2
        assert path["cpu_ratio"] == pytest.approx(statistics.median(path["per_round_cpu_ratios"]))
        assert _number(path["worth"])
    assert set(sc["shortcuts"]) == {"prepared"}
    for shortcut in sc["shortcuts"].values():
        assert _number(shortcut["worth"]) and isinstance(shortcut["stays"], bool)
    assert "| 11 | ... `Prepared`: ListTasks" in (tmp_path / "latest-quick.md").read_text()
