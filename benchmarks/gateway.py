"""Figure 8: ``GetApplication`` over Connect JSON through the HTTP gateway against the
same call over native gRPC to the matters service, side by side in one run.

Each round alternates short slices of the two (the gateway first, then native first, ...)
with the same number of calls in flight, so both meet the same moments of a shared
machine; the figure is the median of the rounds' ratios of rates. The CPU each serving
process spends per call is shown beside: the gateway's is what the front-end path adds.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from benchmarks import harness
from benchmarks.http_client import HttpConnection
from benchmarks.stats import percentile, ratio, spread
from govflow.matters.v1 import matters_pb2 as mpb

PATH = "/govflow.matters.v1.MattersService/GetApplication"
GOAL = 0.7


async def _load(stack: harness.BenchStack, calls: list[Callable[[], Awaitable[object]]],
                seconds: float, processes: tuple[str, ...]) -> tuple[int, float, dict[str, float]]:
    """One caller per entry of ``calls`` (each its own connection, for HTTP) calling in
    a loop for ``seconds``: the calls made, the time taken and the CPU seconds each of
    ``processes`` spent meanwhile."""
    pids = stack.pids()
    cpu0 = {n: harness.cpu_seconds(pids[n]) for n in processes}
    stop = time.perf_counter() + seconds
    count = 0

    async def loop(call: Callable[[], Awaitable[object]]) -> None:
        nonlocal count
        while time.perf_counter() < stop:
            await call()
            count += 1

    t0 = time.perf_counter()
    await asyncio.gather(*[loop(c) for c in calls])
    took = time.perf_counter() - t0
    return count, took, {n: harness.cpu_seconds(pids[n]) - cpu0[n] for n in processes}


async def figure(bench: Any) -> dict[str, Any]:
    """Figure 8 on the bench's stack (``benchmarks.bench.Bench``), reading the warm-up's
    application as its applicant."""
    p, stack, app = bench.p, bench.stack, bench.sample_app
    assert app is not None
    md = await bench.applicant_md(app.name)
    token = md[0][1]
    req = mpb.GetApplicationRequest(name=app.name)
    body = json.dumps({"name": app.name}).encode()
    headers = {"Content-Type": "application/json", "Authorization": token}
    host, _, port = stack.gateway_addr.rpartition(":")
    binary = req.SerializeToString()
    binary_headers = {**headers, "Content-Type": "application/proto"}
    conns = [HttpConnection(host, int(port)) for _ in range(p.read_concurrency)]
    binary_conns = [HttpConnection(host, int(port)) for _ in range(p.read_concurrency)]

    def connect_call(conn: HttpConnection, proto: bool = False
                     ) -> Callable[[], Awaitable[object]]:
        async def call() -> object:
            status, out = await (conn.post(PATH, binary, binary_headers) if proto
                                 else conn.post(PATH, body, headers))
            if status != 200:
                raise RuntimeError(f"gateway answered {status}: {out[:200]!r}")
            # What a front end does with the answer.
            return mpb.GetApplicationResponse.FromString(out) if proto else json.loads(out)
        return call

    async def native() -> object:
        return await bench.matters.GetApplication(req, metadata=md)

    sides: dict[str, tuple[list[Callable[[], Awaitable[object]]], tuple[str, ...]]] = {
        "connect_json": ([connect_call(c) for c in conns], ("gateway", "matters")),
        "native_grpc": ([native] * p.read_concurrency, ("matters",)),
        # Shown beside: the same path with the binary codec (connect-web's
        # useBinaryFormat), which the gateway passes through without JSON.
        "connect_proto": ([connect_call(c, True) for c in binary_conns], ("gateway", "matters")),
    }
    # Every connection warm; the sizes of the answer both ways.
    for c in (*sides["connect_json"][0], *sides["connect_proto"][0]):
        await c()
    json_bytes = len((await conns[0].post(PATH, body, headers))[1])
    # mypy, next line: native() answers the response message
    proto_bytes = len((await native()).SerializeToString())  # type: ignore[attr-defined]
    rounds = p.read_rounds or p.rounds
    slice_s = p.read_seconds / p.read_slices
    rps: dict[str, list[float]] = {k: [] for k in sides}
    cpu_us: dict[str, dict[str, list[float]]] = {k: {n: [] for n in procs}
                                                 for k, (_, procs) in sides.items()}
    per_round: list[float] = []
    per_round_proto: list[float] = []
    try:
        for r in range(rounds):
            acc: dict[str, list[Any]] = {k: [0, 0.0, dict.fromkeys(procs, 0.0)]
                                         for k, (_, procs) in sides.items()}
            order = list(sides)
            for i in range(p.read_slices):
                for k in (order if (i + r) % 2 == 0 else order[::-1]):  # each side first in turn
                    calls, procs = sides[k]
                    n, took, cpu = await _load(stack, calls, slice_s, procs)
                    a = acc[k]
                    a[0] += n
                    a[1] += took
                    for name, sec in cpu.items():
                        a[2][name] += sec
            for k, (n, took, cpu) in acc.items():
                rps[k].append(n / took)
                for name, sec in cpu.items():
                    cpu_us[k][name].append(1e6 * sec / max(n, 1))
            per_round.append(ratio(rps["connect_json"][-1], rps["native_grpc"][-1]))
            per_round_proto.append(ratio(rps["connect_proto"][-1], rps["native_grpc"][-1]))
            bench.say(f"  gateway round {r + 1}/{rounds}: Connect JSON "
                      f"{rps['connect_json'][-1]:.0f}/s against native gRPC "
                      f"{rps['native_grpc'][-1]:.0f}/s ({per_round[-1]:.2f}); Connect binary "
                      f"{rps['connect_proto'][-1]:.0f}/s ({per_round_proto[-1]:.2f})")
    finally:
        for conn in (*conns, *binary_conns):
            await conn.close()
    rr = percentile(per_round, 50)
    return {
        "unit": "requests/s", "rpc": "GetApplication", "concurrency": p.read_concurrency,
        "rounds": rounds, "slices_per_round": p.read_slices, "seconds_per_round": p.read_seconds,
        "connect_json": spread(rps["connect_json"]), "native_grpc": spread(rps["native_grpc"]),
        "ratio": rr, "per_round_ratios": per_round,
        "connect_proto": spread(rps["connect_proto"]),
        "ratio_connect_proto": percentile(per_round_proto, 50),
        "per_round_ratios_connect_proto": per_round_proto,
        "response_bytes": {"json": json_bytes, "proto": proto_bytes},
        # CPU each serving process spends per call (all its threads), p50 of rounds.
        "cpu_us_per_call_p50": {k: {n: percentile(v, 50) for n, v in per.items()}
                                for k, per in cpu_us.items()},
        "client": "the bench process: a minimal keep-alive HTTP/1.1 client (one connection "
                  "per caller, JSON parsed) against grpc.aio",
        "goal": f">= {GOAL}", "met": rr >= GOAL}
