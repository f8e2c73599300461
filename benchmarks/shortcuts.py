"""Figure 11: what each shortcut on a private library API is worth, with against without.

Two stacks side by side on the same machine, each with its own dev server (file-wal):
"on" as shipped; "off" with ``bench_shortcuts_off`` naming every shortcut, each then
replaced by the public path it stands in for:

- ``prepared`` (govflow/db.py): ``Prepared`` statements run through
  ``Connection.execute``. It lives in the services alone, so it is measured on figure 4's
  read paths (the serving process's CPU per call) and on the services' CPU per workflow in
  figure 1.

(The worker's ``ContextFreeRunner`` was the other one; it went when this figure showed it
worth under 5% of figure 3 in two runs.)

Rounds alternate between the stacks (the order flips every round; the read paths in
slices, as figure 4's). On a shared machine the CPU per operation of each process is the
steadier signal; the rates are shown beside it.
"""

from __future__ import annotations

import pathlib
from collections.abc import Awaitable, Callable
from typing import Any

from benchmarks import harness
from benchmarks.bench import AGENCY
from benchmarks.stats import percentile, ratio, spread
from govflow.certificates.v1 import certificates_pb2 as cpb
from govflow.matters.v1 import matters_pb2 as mpb

SHORTCUTS = ("prepared",)
OFF: dict[str, object] = {"bench_shortcuts_off": ",".join(SHORTCUTS)}
# Which processes each shortcut runs in: its part of the CPU per workflow.
PROCESSES = {"prepared": ("identity", "certificates", "matters")}
CPU_PROCESSES = ("temporal", "identity", "certificates", "matters", "worker")
READ_SERVER = {"GetApplication": "matters", "ListTasks": "matters",
               "VerifyCertificate": "certificates"}
# A shortcut on a private API stays only if it is worth at least this much of its figure.
WORTH = 0.05


async def _read_calls(bench: Any) -> dict[str, Callable[[], Awaitable[object]]]:
    """The three read paths of figure 4 on ``bench``'s stack, as figure 4 calls them."""
    app = bench.sample_app
    citizen = await bench.applicant_md(app.name)
    officer = await bench.md("chen-jing", AGENCY)
    await bench.fill_inbox(officer, 20)
    get_req = mpb.GetApplicationRequest(name=app.name)
    list_req = mpb.ListTasksRequest(page_size=20)
    verify_req = cpb.VerifyCertificateRequest(name=app.result_certificate)
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "GetApplication": lambda: bench.matters.GetApplication(get_req, metadata=citizen),
        "ListTasks": lambda: bench.matters.ListTasks(list_req, metadata=officer),
        "VerifyCertificate": lambda: bench.certificates.VerifyCertificate(
            verify_req, metadata=citizen),
    }
    for call in calls.values():
        await call()  # warm (and fill the read caches, as figure 4 does)
    return calls


async def figure(p: Any, tmp: pathlib.Path, say: Callable[[str], None],
                 make_bench: Callable[[harness.BenchStack], Any]) -> dict[str, Any]:
    stacks: dict[str, harness.BenchStack] = {}
    try:
        stacks["on"] = await harness.start(tmp / "shortcuts-on", "file-wal", say)
        stacks["off"] = await harness.start(tmp / "shortcuts-off", "file-wal", say,
                                            overrides=OFF)
        benches = {label: make_bench(stack) for label, stack in stacks.items()}
        # As many rounds as figure 4 takes (5 in the full run): the worker's share of the CPU
        # per workflow moves by a few percent from round to round.
        rounds = p.read_rounds or p.rounds
        for bench in benches.values():
            await bench.warm_up()
            await bench.prepare_seniors(rounds * p.batch)

        # Figure 1's work: instant approvals, CPU ms per workflow by process.
        rates: dict[str, list[float]] = {"on": [], "off": []}
        cpu: dict[str, list[dict[str, float]]] = {"on": [], "off": []}
        for n in range(rounds):
            for label in (["on", "off"] if n % 2 == 0 else ["off", "on"]):
                before = stacks[label].cpu()
                rates[label].append(await benches[label].real_batch(p.batch))
                after = stacks[label].cpu()
                cpu[label].append({k: 1000 * (after[k] - before[k]) / p.batch
                                   for k in CPU_PROCESSES if k in after})
                say(f"  shortcuts round {n + 1}/{rounds} {label}: {rates[label][-1]:.1f} wf/s, "
                    f"CPU {sum(cpu[label][-1].values()):.0f} ms/wf (worker "
                    f"{cpu[label][-1]['worker']:.0f})")
        cpu_p50 = {label: {k: percentile([c[k] for c in per], 50) for k in per[0]}
                   for label, per in cpu.items()}
        # Per round, the shortcut's processes' CPU saved, as a share of the whole CPU per
        # workflow without the shortcuts (figure 1 is bound by the CPU on 2 cores).
        per_round_worth = {
            name: [(sum(off[k] for k in procs) - sum(on[k] for k in procs)) / sum(off.values())
                   for on, off in zip(cpu["on"], cpu["off"], strict=True)]
            for name, procs in PROCESSES.items()}

        # Figure 4's read paths: the serving process's CPU per call, and the rate.
        calls = {label: await _read_calls(bench) for label, bench in benches.items()}
        for label, bench in benches.items():
            quiet, waited = await bench.quiet(20.0)
            say(f"  shortcuts reads, {label} stack: quiet after {waited:.1f} s" if quiet else
                f"  shortcuts reads, {label} stack: still busy after {waited:.0f} s")
        slice_s = p.read_seconds / p.read_slices
        reads: dict[str, dict[str, dict[str, list[float]]]] = {
            path: {"rate": {"on": [], "off": []}, "cpu_us": {"on": [], "off": []}}
            for path in READ_SERVER}
        paths = list(READ_SERVER)
        for r in range(rounds):
            for path in paths[r % len(paths):] + paths[:r % len(paths)]:
                acc = {"on": [0, 0.0, 0.0], "off": [0, 0.0, 0.0]}
                for i in range(p.read_slices):
                    for label in (("on", "off") if i % 2 == 0 else ("off", "on")):
                        got = await benches[label]._load(calls[label][path], READ_SERVER[path],
                                                         slice_s)
                        acc[label] = [a + b for a, b in zip(acc[label], got, strict=True)]
                for label, (count, took, cpu_s) in acc.items():
                    reads[path]["rate"][label].append(count / took)
                    reads[path]["cpu_us"][label].append(1e6 * cpu_s / max(count, 1))
            say(f"  shortcuts reads round {r + 1}/{rounds}: " + ", ".join(
                f"{path} {reads[path]['cpu_us']['on'][-1]:.0f} against "
                f"{reads[path]['cpu_us']['off'][-1]:.0f} µs/call" for path in paths))
    finally:
        for stack in stacks.values():
            await stack.close()

    read_out: dict[str, Any] = {}
    for path, v in reads.items():
        cpu_ratios = [ratio(off, on) for on, off in zip(v["cpu_us"]["on"], v["cpu_us"]["off"],
                                                        strict=True)]
        read_out[path] = {
            "server": READ_SERVER[path],
            "server_cpu_us_per_call": {label: spread(x) for label, x in v["cpu_us"].items()},
            "rate": {label: spread(x) for label, x in v["rate"].items()},
            # CPU per call without over with (> 1: the shortcut saves), per round.
            "per_round_cpu_ratios": cpu_ratios,
            "cpu_ratio": percentile(cpu_ratios, 50),
            "per_round_rate_ratios": [ratio(on, off) for on, off in zip(
                v["rate"]["on"], v["rate"]["off"], strict=True)],
            # The share of the call's CPU the shortcut saves: 1 - with / without.
            "worth": 1 - 1 / percentile(cpu_ratios, 50),
        }
    prepared_fig1 = percentile(per_round_worth["prepared"], 50)
    prepared_fig4 = max(v["worth"] for v in read_out.values())
    shortcuts = {
        "prepared": {
            "figure": 4, "processes": PROCESSES["prepared"],
            "services_cpu_ms_per_workflow_p50": {
                label: sum(cpu_p50[label][k] for k in PROCESSES["prepared"]) for label in cpu_p50},
            "figure_1_per_round_worth": per_round_worth["prepared"],
            "figure_1_worth": prepared_fig1,
            "figure_4_worth_by_path": {path: v["worth"] for path, v in read_out.items()},
            "worth": max(prepared_fig1, prepared_fig4),
            "stays": max(prepared_fig1, prepared_fig4) >= WORTH},
    }
    return {"unit": "CPU per operation", "batch": p.batch, "rounds": rounds, "read_seconds": p.read_seconds, "off": OFF,
            "throughput": {label: spread(x) for label, x in rates.items()},
            "throughput_per_round_ratios": [ratio(on, off) for on, off in zip(
                rates["on"], rates["off"], strict=True)],
            "cpu_ms_per_workflow_p50": cpu_p50,
            "cpu_ms_per_workflow_rounds": cpu,
            "reads": read_out, "shortcuts": shortcuts,
            "goal": f"each shortcut worth >= {WORTH:.0%} of its figure",
            "met": all(s["stays"] for s in shortcuts.values())}


def markdown_lines(o: dict[str, Any]) -> list[str]:
    """Figure 11's rows of the bench's Markdown table."""
    def f(x: float, digits: int = 0) -> str:
        return "n/a" if x != x else f"{x:,.{digits}f}"

    yes = {True: "stays", False: "**goes**"}
    c = o["cpu_ms_per_workflow_p50"]
    prepared = o["shortcuts"]["prepared"]
    on, off = o["throughput"]["on"], o["throughput"]["off"]
    lines = [
        f"| 11 | instant approvals, {o['batch']}/round, shortcuts on against off | "
        f"{f(on['median'], 1)} wf/s, CPU {f(sum(c['on'].values()))} ms/wf | "
        f"{f(off['median'], 1)} wf/s, CPU {f(sum(c['off'].values()))} ms/wf | "
        f"{f(percentile(o['throughput_per_round_ratios'], 50), 2)} (rates) | (shown) | |",
        f"| 11 | ... `Prepared`: services' CPU per workflow, p50 | "
        f"{f(prepared['services_cpu_ms_per_workflow_p50']['on'])} ms | "
        f"{f(prepared['services_cpu_ms_per_workflow_p50']['off'])} ms | worth "
        f"{f(100 * prepared['figure_1_worth'], 1)}% | (shown) | |",
    ]
    for path, v in o["reads"].items():
        cpu = v["server_cpu_us_per_call"]
        lines.append(
            f"| 11 | ... `Prepared`: {path}, {v['server']} CPU per call, p50 of rounds | "
            f"{f(cpu['on']['median'])} µs | {f(cpu['off']['median'])} µs | worth "
            f"{f(100 * v['worth'], 1)}% (rates {f(percentile(v['per_round_rate_ratios'], 50), 2)}) "
            f"| >= {WORTH:.0%} | {yes[v['worth'] >= WORTH]} |")
    return lines
