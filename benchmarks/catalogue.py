"""Figure 10: the catalogue at scale (issue 27, item 1).

Two matters services side by side, each its own process and SQLite database (WAL), with
one identity service for the admin's token: the small one holds the demo's matters (7 or
so), the large one those and the generated province catalogue (632 matters across 63
agencies, services/matters/catalogue_generator.py), loaded the way ``govflow seed
--catalogue province`` loads it (CreateAgency, then PublishMatter, four at a time). The
figure reports how long that load took (goal: under 10 s for 600 matters), then asks
both services the same ListMatters queries (keywords in Chinese and English, the
filters, a page of 20) one call at a time, taking turns call by call (which goes first
flips every round). Each query's figure is the median over rounds of the p99 at the
large catalogue over the p99 at the small one (goal: at most 2). Beside it, each matters
process's CPU per call (from /proc, median of rounds), steadier than a p99 when the
machine is shared.
"""

from __future__ import annotations

import dataclasses
import pathlib
import sys
import time
from typing import Any

import grpc

from benchmarks import harness
from benchmarks.stats import percentile, ratio
from govflow.identity.v1 import identity_pb2_grpc
from govflow.matters.v1 import matters_pb2 as mpb
from govflow.matters.v1 import matters_pb2_grpc
from govflow.service_client import ServiceToken
from govflow.settings import Settings
from govflow_cli import cli
from govflow_cli.province_catalogue import seed_province
from govflow_cli.supervisor import Stack
from services.matters.catalogue import bundled_definitions

# The same queries at both sizes: (name, filter); each asks for a page of 20.
QUERIES = [
    ("first page, no filter", ""),
    ("keyword 许可 (Chinese)", "keyword=许可"),
    ("keyword 'permit' (English)", "keyword=permit"),
    ("agency", "agency=agencies/sz-amr"),
    ("level, applicant kind, instant approval",
     "level=city AND applicant_kind=person AND instant_approval=true"),
    ("life events", "life_event=true"),
]
PAGE_SIZE = 20
GOAL_LOAD_SECONDS = 10.0
GOAL_RATIO = 2.0


@dataclasses.dataclass(frozen=True)
class CatalogueParams:
    rounds: int
    samples: int  # calls per query, size and round
    limit: int = 0  # 0: the whole generated catalogue


QUICK = CatalogueParams(rounds=2, samples=30)
FULL = CatalogueParams(rounds=7, samples=200)


def _large_settings(small: Settings, data_dir: pathlib.Path) -> Settings:
    """The second matters service: its own port, metrics ports and database."""
    port = harness.free_port()
    return dataclasses.replace(
        small, data_dir=data_dir, matters_port=port, matters_addr=f"127.0.0.1:{port}",
        matters_metrics_port=harness.free_port(),
        matters_temporal_metrics_port=harness.free_port())


async def _query_ms(stub: matters_pb2_grpc.MattersServiceStub, flt: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        await stub.ListMatters(mpb.ListMattersRequest(filter=flt, page_size=PAGE_SIZE))
        out.append((time.perf_counter() - t0) * 1000)
    return out


async def catalogue_figure(quick: bool, tmp: pathlib.Path, say: Any) -> dict[str, Any]:
    """Loads the catalogues and times the queries; see the module's docstring."""
    p = QUICK if quick else FULL
    small_dir, large_dir = tmp / "catalogue-small", tmp / "catalogue-large"
    small_dir.mkdir(parents=True, exist_ok=True)
    large_dir.mkdir(parents=True, exist_ok=True)
    small = harness.bench_settings(small_dir)
    procs = Stack(small)
    procs_large: Stack | None = None
    py = sys.executable
    channels: list[grpc.aio.Channel] = []
    try:
        procs.spawn("identity", [py, "-m", "services.identity.server"])
        procs.spawn("matters", [py, "-m", "services.matters.server"])
        for addr, name in ((small.identity_addr, "identity"), (small.matters_addr, "matters")):
            await cli.wait_healthy(addr, 90, cli.HEALTH_NAMES[name])
        # Its ports are picked once the first ones are bound, so no two are the same.
        large = _large_settings(small, large_dir)
        procs_large = Stack(large)
        procs_large.spawn("matters", [py, "-m", "services.matters.server"])
        await cli.wait_healthy(large.matters_addr, 90, cli.HEALTH_NAMES["matters"])
        pids = {"small": dict(procs.procs)["matters"].pid,
                "large": dict(procs_large.procs)["matters"].pid}
        channels = [grpc.aio.insecure_channel(a) for a in
                    (small.identity_addr, small.matters_addr, large.matters_addr)]
        identity_ch, small_ch, large_ch = channels
        md = await ServiceToken(identity_pb2_grpc.IdentityServiceStub(identity_ch),
                                small.admin_client_id, small.admin_client_secret).metadata()
        stubs = {"small": matters_pb2_grpc.MattersServiceStub(small_ch),
                 "large": matters_pb2_grpc.MattersServiceStub(large_ch)}
        for stub in stubs.values():
            for _, text in bundled_definitions():
                await stub.PublishMatter(mpb.PublishMatterRequest(definition_yaml=text),
                                         metadata=md)
        load = await seed_province(identity_ch, large_ch, small.admin_client_id,
                                   small.admin_client_secret, limit=p.limit)
        say(f"   loaded {load.matters} matters in {load.matters_seconds:.1f} s "
            f"({load.agencies} agencies in {load.agencies_seconds:.1f} s)")
        sizes = {}
        for side, stub in stubs.items():
            listed = 0
            token = ""
            while True:
                page = await stub.ListMatters(mpb.ListMattersRequest(page_size=100,
                                                                     page_token=token))
                listed += len(page.matters)
                token = page.next_page_token
                if not token:
                    break
            sizes[side] = listed
        # Warm both (the first call after a publish reads the catalogue again).
        for stub in stubs.values():
            for _, flt in QUERIES:
                await _query_ms(stub, flt, 5)
        per_query: dict[str, Any] = {}
        for name, flt in QUERIES:
            hits = {side: len((await stub.ListMatters(mpb.ListMattersRequest(
                filter=flt, page_size=PAGE_SIZE))).matters) for side, stub in stubs.items()}
            rounds: dict[str, list[float]] = {"small": [], "large": []}
            cpu: dict[str, list[float]] = {"small": [], "large": []}
            for r in range(p.rounds):
                order = ("small", "large") if r % 2 == 0 else ("large", "small")
                times: dict[str, list[float]] = {"small": [], "large": []}
                cpu0 = {side: harness.cpu_seconds(pid) for side, pid in pids.items()}
                for _ in range(p.samples):  # call by call, so both meet the same machine
                    for side in order:
                        times[side] += await _query_ms(stubs[side], flt, 1)
                for side, ms in times.items():
                    rounds[side].append(percentile(ms, 99))
                    cpu[side].append((harness.cpu_seconds(pids[side]) - cpu0[side]) * 1e6
                                     / p.samples)
            per_round = [ratio(a, b) for a, b in zip(rounds["large"], rounds["small"],
                                                     strict=True)]
            per_ratio = percentile(per_round, 50)
            per_query[name] = {
                "filter": flt, "returned": hits,
                "p99_ms": {side: percentile(v, 50) for side, v in rounds.items()},
                "rounds_p99_ms": rounds, "per_round_ratios": per_round, "p99_ratio": per_ratio,
                # The serving process's CPU per call (all its threads), median of rounds:
                # steadier than a p99 on a shared machine.
                "server_cpu_us_per_call": {side: percentile(v, 50) for side, v in cpu.items()},
                "goal": f"<= {GOAL_RATIO:g}", "met": per_ratio <= GOAL_RATIO}
        per_600 = load.matters_seconds * 600 / max(load.matters, 1)
        return {
            "matters": sizes, "agencies_loaded": load.agencies,
            "load": {"matters": load.matters, "matters_seconds": load.matters_seconds,
                     "agencies_seconds": load.agencies_seconds,
                     "seconds_per_600_matters": per_600,
                     "goal": f"< {GOAL_LOAD_SECONDS:g} s for 600",
                     "met": per_600 < GOAL_LOAD_SECONDS},
            "queries": per_query, "page_size": PAGE_SIZE, "rounds": p.rounds,
            "samples": p.samples,
            "goal": f"load < {GOAL_LOAD_SECONDS:g} s for 600; each query's p99 ratio <= "
                    f"{GOAL_RATIO:g}",
            "met": per_600 < GOAL_LOAD_SECONDS and all(q["met"] for q in per_query.values()),
        }
    finally:
        for ch in channels:
            await ch.close()
        if procs_large is not None:
            procs_large.stop()
        procs.stop()


def markdown_rows(figure: dict[str, Any] | None) -> list[str]:
    """The figure's rows of the summary table."""
    if not figure:
        return []
    yes = {True: "yes", False: "**no**"}
    load = figure["load"]
    n_small, n_large = figure["matters"]["small"], figure["matters"]["large"]
    rows = [f"| 10 | catalogue load at start: {load['matters']} matters published "
            f"(+ {figure['agencies_loaded']} agencies in {load['agencies_seconds']:.1f} s) | "
            f"{load['matters_seconds']:.1f} s ({load['seconds_per_600_matters']:.1f} s per 600) "
            f"| — | — | {load['goal']} | {yes[load['met']]} |"]
    for name, q in figure["queries"].items():
        rs = q["per_round_ratios"]
        rows.append(
            f"| 10 | ListMatters p99, {name} (page of {figure['page_size']}; returned "
            f"{q['returned']['large']} / {q['returned']['small']}) | {q['p99_ms']['large']:.2f} "
            f"ms at {n_large} | {q['p99_ms']['small']:.2f} ms at {n_small} | "
            f"{q['p99_ratio']:.2f} (rounds {min(rs):.2f}–{max(rs):.2f}) | {q['goal']} | "
            f"{yes[q['met']]} |")
    cpu = {name: q["server_cpu_us_per_call"] for name, q in figure["queries"].items()}
    rows.append("| 10 | ... matters' CPU per call, median of rounds, by query | " + ", ".join(
        f"{c['large']:.0f}" for c in cpu.values()) + f" µs at {n_large} | " + ", ".join(
        f"{c['small']:.0f}" for c in cpu.values()) + f" µs at {n_small} | — | (shown) | |")
    return rows
