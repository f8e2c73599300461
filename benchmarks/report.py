"""The bench's report: the run's result written as JSON (every round kept) and as Markdown
(one table of every figure), under a stamped name and as ``latest-<mode>``."""

from __future__ import annotations

import datetime as dt
import json
import pathlib
from typing import Any

from benchmarks import catalogue, shortcuts
from benchmarks.stats import ratio


def write(result: dict[str, Any], out_dir: pathlib.Path, started: dt.datetime,
          partial: str) -> pathlib.Path:
    """Writes ``result`` to ``out_dir`` as ``bench-<mode><partial>-<stamp>`` and
    ``latest-<mode><partial>`` (``.json`` and ``.md``), prints the Markdown and returns
    the stamped JSON's path."""
    mode = result["meta"]["mode"]
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    for name in (f"bench-{mode}{partial}-{stamp}", f"latest-{mode}{partial}"):
        (out_dir / f"{name}.json").write_text(json.dumps(result, indent=2, default=_json))
        (out_dir / f"{name}.md").write_text(markdown(result))
    print(markdown(result))
    return out_dir / f"bench-{mode}{partial}-{stamp}.json"


def _json(o: object) -> object:
    return str(o)


def _f(x: float, digits: int = 1) -> str:
    return "n/a" if x != x else f"{x:,.{digits}f}"


def markdown(result: dict[str, Any]) -> str:
    """The run's report: one table of every figure against its baseline and goal, then the
    read-path breakdown and the scale figure's memory."""
    f = result["figures"]
    m = result["meta"]
    yes = {True: "yes", False: "**no**"}
    lines = [f"# govflow bench ({m['mode']}, {m['started'][:19]}Z, {m['machine']['cpus']} CPUs, "
             f"{m['duration_s']} s)", "",
             "| # | figure | Govflow | baseline | ratio | goal | met |",
             "|---|---|---|---|---|---|---|"]
    if t := f.get("throughput"):
        lines.append(
            f"| 1 | instant-approval throughput, {t['batch']}/round ({t['activities']} "
            f"activities, {t['local_activities']} local; baseline "
            f"{t.get('baseline_activities', 3)} regular) | {_f(t['govflow']['median'])} "
            f"wf/s ({_f(t['govflow']['min'])}–{_f(t['govflow']['max'])}) | "
            f"{_f(t['baseline']['median'])} wf/s ({_f(t['baseline']['min'])}–"
            f"{_f(t['baseline']['max'])}) | {_f(t['ratio'], 2)} | {t['goal']} | {yes[t['met']]} |")
        if c := t.get("cpu_ms_per_workflow_p50"):
            def total(label: str) -> str:
                per = c.get(label, {})
                parts = ", ".join(f"{n} {v:.0f}" for n, v in per.items() if v >= 0.5)
                return f"{sum(per.values()):.0f} ms ({parts})"
            lines.append(f"| 1 | ... CPU per workflow, p50 of rounds | {total('real')} | "
                         f"{total('bare')} | — | (shown) | |")
        if sc := t.get("same_count"):
            lines.append(f"| 1 | ... against the same count of no-op activities (secondary) | "
                         f"{_f(t['govflow']['median'])} wf/s | {_f(sc['baseline']['median'])} "
                         f"wf/s | {_f(sc['ratio'], 2)} | (shown) | |")
    if lat := f.get("latency"):
        g, b = lat["to_workflow_completed"]["govflow"], lat["to_workflow_completed"]["baseline"]
        lines.append(
            f"| 2 | closed-loop latency, submit → certificate issued and grants released, "
            f"p50/p95/p99 | "
            f"{_f(g['p50'], 0)}/{_f(g['p95'], 0)}/{_f(g['p99'], 0)} ms | "
            f"{_f(b['p50'], 0)}/{_f(b['p95'], 0)}/{_f(b['p99'], 0)} ms | "
            f"{_f(lat['ratio_p50'], 2)} (p99 {_f(lat['ratio_p99'], 2)}) | {lat['goal']} | "
            f"{yes[lat['met']]} |")
    if d := f.get("decision"):
        lines.append(
            f"| 3 | officer DecideTask vs no-op Update, p50/p95 | {_f(d['govflow']['p50'], 0)}"
            f"/{_f(d['govflow']['p95'], 0)} ms | {_f(d['baseline']['p50'], 0)}/"
            f"{_f(d['baseline']['p95'], 0)} ms | {_f(d['ratio_p50'], 2)} | {d['goal']} | "
            f"{yes[d['met']]} |")
        if bb := d.get("back_to_back"):
            lines.append(
                f"| 3 | ... back to back (the previous decision's follow-up still running) | "
                f"{_f(bb['govflow']['p50'], 0)}/{_f(bb['govflow']['p95'], 0)} ms | "
                f"{_f(bb['baseline']['p50'], 0)}/{_f(bb['baseline']['p95'], 0)} ms | "
                f"{_f(bb['ratio_p50'], 2)} | (shown) | |")
    r = f.get("reads")
    for k, v in (r["paths"] if r else {}).items():
        lines.append(f"| 4 | {k} (concurrency {r['concurrency']}, {v['response_bytes']:,} B) | "
                     f"{_f(v['govflow']['median'], 0)} req/s | echo of the same bytes "
                     f"{_f(v['baseline']['median'], 0)} req/s (tiny echo "
                     f"{_f(r['baseline']['median'], 0)}: {_f(v['ratio_to_tiny_echo'], 2)}) | "
                     f"{_f(v['ratio'], 2)} (rounds {_f(min(v['per_round_ratios']), 2)}–"
                     f"{_f(max(v['per_round_ratios']), 2)}) | {v['goal']} | {yes[v['met']]} |")
        if cpu := v.get("server_cpu_us_per_call_p50"):
            lines.append(f"| 4 | ... {k}: server CPU per call (all its threads), p50 of rounds"
                         f" | {_f(cpu['govflow'], 0)} µs | {_f(cpu['baseline'], 0)} µs | "
                         f"{_f(v['cpu_ratio'], 2)} | (shown) | |")
    if c := f.get("certificate_verify"):
        lines.append(f"| 5 | certificate verification in-process | "
                     f"{_f(c['govflow']['median'], 0)}/s | Ed25519 "
                     f"{_f(c['baseline']['median'], 0)}/s | {_f(c['ratio'], 2)} | {c['goal']} | "
                     f"{yes[c['met']]} |")
    s = f.get("scale")
    if s:
        n_small, n_large = s["parked_small"], s["parked_large"]
        for k, v in s["queries_ms"].items():
            large, beside = v[f"at_{n_large}"], v[f"at_{n_small}_beside_{n_large}"]
            rs = v["per_round_ratios"]
            lines.append(f"| 6 | {k} p99 at {n_large:,} parked (median of rounds) | "
                         f"{_f(large['p99'])} ms | {_f(beside['p99'])} ms at {n_small}, "
                         f"taking turns | {_f(v['p99_ratio'], 2)} (rounds {_f(min(rs), 2)}–"
                         f"{_f(max(rs), 2)}) | {v['goal']} | {yes[v['met']]} |")
        lines.append(f"| 6 | memory per parked application (worker + services) | "
                     f"{_f(s['kib_per_parked_application_worker_and_services'])} KiB | — | — | "
                     f"— | — |")
    if g := f.get("gateway"):
        lines.append(
            f"| 8 | GetApplication over Connect JSON via the gateway (concurrency "
            f"{g['concurrency']}, {g['response_bytes']['json']:,} B JSON) | "
            f"{_f(g['connect_json']['median'], 0)} req/s | native gRPC "
            f"{_f(g['native_grpc']['median'], 0)} req/s | {_f(g['ratio'], 2)} (rounds "
            f"{_f(min(g['per_round_ratios']), 2)}–{_f(max(g['per_round_ratios']), 2)}) | "
            f"{g['goal']} | {yes[g['met']]} |")
        lines.append(
            f"| 8 | ... the same over Connect binary (application/proto, "
            f"{g['response_bytes']['proto']:,} B) | {_f(g['connect_proto']['median'], 0)} req/s | "
            f"native gRPC | {_f(g['ratio_connect_proto'], 2)} | (shown) | |")
        cpu = g["cpu_us_per_call_p50"]
        lines.append(
            "| 8 | ... CPU per call by process, p50 of rounds | " + ", ".join(
                f"{n} {_f(v, 0)} µs" for n, v in cpu["connect_json"].items()) + " | " +
            ", ".join(f"{n} {_f(v, 0)} µs" for n, v in cpu["native_grpc"].items()) +
            " | — | (shown) | |")
        lines.append("| 8 | ... CPU per call by process, Connect binary | " + ", ".join(
            f"{n} {_f(v, 0)} µs" for n, v in cpu["connect_proto"].items()) +
            " | — | — | (shown) | |")
    if o := f.get("observability"):
        on, off = o["metrics_and_tracing_on"], o["both_off"]
        lines.append(
            f"| 9 | instant-approval throughput, metrics (scraped every "
            f"{o['scrape_interval_s']:g} s) and tracing (OTLP) on, {o['batch']}/round | "
            f"{_f(on['median'])} wf/s ({_f(on['min'])}–{_f(on['max'])}) | both off "
            f"{_f(off['median'])} wf/s ({_f(off['min'])}–{_f(off['max'])}) | "
            f"{_f(o['ratio'], 2)} (rounds {_f(min(o['per_round_ratios']), 2)}–"
            f"{_f(max(o['per_round_ratios']), 2)}) | {o['goal']} | {yes[o['met']]} |")
        c = o["cpu_ms_per_workflow_p50"]
        lines.append(f"| 9 | ... CPU per workflow, all processes, p50 of rounds | "
                     f"{_f(c['on'], 0)} ms | {_f(c['off'], 0)} ms | {_f(ratio(c['off'], c['on']), 2)} (off/on) | "
                     f"(shown) | |")
    if o := f.get("shortcuts"):
        lines += shortcuts.markdown_lines(o)
    for mode, v in f.get("storage_modes", {"modes": {}})["modes"].items():
        lines.append(f"| 7 | throughput, dev server {mode} | {_f(v['govflow']['median'])} wf/s | "
                     f"{_f(v['baseline']['median'])} wf/s | {_f(v['ratio'], 2)} | — | — |")
    lines += catalogue.markdown_rows(f.get("catalogue"))
    if r:
        lines += ["", "Read-path breakdown (µs per call, one call at a time):", "",
                  "| path | auth (token verify) | database | proto build + serialise | "
                  "transport, service checks, logging | whole call | echo of the same bytes |",
                  "|---|---|---|---|---|---|---|"]
        for k, v in r["paths"].items():
            br = v["breakdown_us"]
            lines.append(f"| {k} | {_f(br['auth_us'], 0)} | {_f(br['database_us'], 0)} | "
                         f"{_f(br['serialisation_us'], 0)} | "
                         f"{_f(br['transport_checks_logging_us'], 0)} | "
                         f"{_f(br['single_call_us'], 0)} | "
                         f"{_f(br.get('matched_echo_single_call_us', float('nan')), 0)} |")
        lines.append(f"| tiny echo | — | — | — | {_f(r['baseline_single_call_us'], 0)} | "
                     f"{_f(r['baseline_single_call_us'], 0)} | — |")
    if s:
        at_small, at_real = f"at_{s['parked_small']}", f"at_{s['parked_real']}"
        lines += ["", f"Scale: {s['how']} Parking {s['parked_real']:,} took "
                  f"{_f(s['parking_seconds'], 0)} s ({_f(s['parking_rate_per_s'])}/s); RSS MiB at "
                  f"{s['parked_small']} → {s['parked_real']}: " + ", ".join(
                      f"{k} {_f(s['rss_mib'][at_small][k], 0)} → "
                      f"{_f(s['rss_mib'][at_real][k], 0)}" for k in s["rss_mib"][at_small]), ""]
    return "\n".join(lines) + "\n"
