"""The figures of ``govflow bench``, each against its baseline in interleaved rounds.

1 throughput, 2 closed-loop latency and 3 officer decisions go through the real services
and worker against BenchBareWorkflow on the same dev server; 4 read paths go against the
echo server; 5 certificate verification runs in this process; 6 parks applications on
officer tasks and compares list queries at two sizes; 7 repeats 1 on each storage mode;
8 reads an application over Connect JSON through the HTTP gateway against native gRPC
(benchmarks/gateway.py); 9 is figure 1's instant approvals with metrics (scraped) and
tracing (exported) on against both off, on two stacks side by side
(benchmarks/observability.py); 11 ("shortcuts") measures each shortcut on a private library
API with against without, on two stacks side by side (benchmarks/shortcuts.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
import json
import os
import pathlib
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from benchmarks import harness
from benchmarks.bare import BARE_TASK_QUEUE, BASELINE_ACTIVITIES, BareInput
from benchmarks.catalogue import catalogue_figure
from benchmarks.catalogue import markdown_rows as catalogue_rows
from benchmarks.echo_server import GET as ECHO_GET
from benchmarks.echo_server import METHOD as ECHO_METHOD
from benchmarks.echo_server import PUT as ECHO_PUT
from benchmarks.gateway import figure as gateway_figure
from benchmarks.observability import figure as observability_figure
from benchmarks.shortcuts import figure as shortcuts_figure
from benchmarks.shortcuts import markdown_lines as shortcuts_lines
from benchmarks.stats import latency, percentile, ratio, spread
from govflow.certificates.v1 import certificates_pb2 as cpb
from govflow.certificates.v1 import certificates_pb2_grpc
from govflow.identity.v1 import identity_pb2 as ipb
from govflow.identity.v1 import identity_pb2_grpc
from govflow.matters.v1 import matters_pb2 as mpb
from govflow.matters.v1 import matters_pb2_grpc
from govflow.service_client import ServiceToken
from govflow_cli import cli
from govflow_cli.demo_data import DEMO_PASSWORD, AddedPerson, add_senior, person
from govflow_cli.supervisor import Stack

INSTANT = "matters/senior-citizen-card"
OFFICER = "matters/individual-business-registration"
AGENCY = "agencies/sz-amr"


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


QUICK = Params("quick", rounds=2, batch=8, latency_samples=5, decisions=3, read_seconds=0.5,
               read_concurrency=8, verify_iterations=2000, scale_base=10, scale_n=60,
               scale_queries=15, storage_modes=("file-wal", "memory", "file-default"),
               scale_real=30, storage_real=False, read_slices=2, scale_rounds=2)
FULL = Params("full", rounds=3, batch=40, latency_samples=30, decisions=40, read_seconds=3.0,
              read_concurrency=16, verify_iterations=20000, scale_base=100, scale_n=10000,
              scale_queries=200, storage_modes=("file-wal", "memory", "file-default"),
              scale_real=1000, read_rounds=5)


class Progress:
    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def __call__(self, text: str) -> None:
        print(f"[{time.monotonic() - self.t0:7.1f}s] {text}", flush=True)


class Bench:
    """One stack, logged-in callers and the measurements that need them."""

    def __init__(self, stack: harness.BenchStack, p: Params, say: Progress) -> None:
        self.stack, self.p, self.say = stack, p, say
        if stack.channels:  # not on a bare-only stack
            self.identity = identity_pb2_grpc.IdentityServiceStub(stack.channels["identity"])
            self.matters = matters_pb2_grpc.MattersServiceStub(stack.channels["matters"])
            self.certificates = certificates_pb2_grpc.CertificatesServiceStub(
                stack.channels["certificates"])
        self._tokens: dict[tuple[str, str], tuple[float, tuple[tuple[str, str], ...]]] = {}
        self.activities: list[str] = []
        self.sample_app: mpb.Application | None = None
        # The senior card is one per holder: each instant approval is a new senior's, made
        # and logged in before the measurement (prepare_seniors); who applied, by name.
        self.seniors: list[AddedPerson] = []
        self.applicants: dict[str, str] = {}  # application -> the applicant's ID number

    async def md(self, key: str, agency: str = "") -> tuple[tuple[str, str], ...]:
        return await self.login(person(key).id_number, agency)

    async def login(self, id_number: str, agency: str = "") -> tuple[tuple[str, str], ...]:
        cached = self._tokens.get((id_number, agency))
        if cached and time.monotonic() - cached[0] < 600:  # tokens live 900 s
            return cached[1]
        resp = await self.identity.Login(ipb.LoginRequest(
            id_number=id_number, password=DEMO_PASSWORD, agency=agency))
        md = (("authorization", f"Bearer {resp.tokens.access_token}"),)
        self._tokens[(id_number, agency)] = (time.monotonic(), md)
        return md

    async def prepare_seniors(self, n: int) -> None:
        """``n`` more new seniors for instant approvals, logged in (outside any timing)."""
        settings = self.stack.settings
        admin = await ServiceToken(self.identity, settings.admin_client_id,
                                   settings.admin_client_secret).metadata()
        turns = asyncio.Semaphore(8)

        async def one() -> AddedPerson:
            async with turns:
                senior = await add_senior(self.identity, self.certificates, admin)
                await self.login(senior.id_number)
                return senior

        self.seniors += await asyncio.gather(*[one() for _ in range(n)])

    async def submit(self, matter: str) -> str:
        """Submits for ``matter``: an instant approval as the next prepared senior (one
        made now if none is left), anything else as Wang Fang."""
        if matter == INSTANT:
            if not self.seniors:
                await self.prepare_seniors(1)
            id_number = self.seniors.pop(0).id_number
        else:
            id_number = person("wang-fang").id_number
        resp = await self.matters.SubmitApplication(mpb.SubmitApplicationRequest(
            matter=matter, request_id=uuid.uuid4().hex), metadata=await self.login(id_number))
        self.applicants[resp.application.name] = id_number
        # mypy, next line: an untyped value from generated code or the library
        return resp.application.name  # type: ignore[no-any-return]

    async def applicant_md(self, name: str) -> tuple[tuple[str, str], ...]:
        """The token of the applicant of ``name`` (submitted through submit())."""
        return await self.login(self.applicants[name])

    @staticmethod
    def wid(name: str) -> str:
        return "application-" + name.removeprefix("applications/")

    async def real_done(self, name: str) -> None:
        await self.stack.client.get_workflow_handle(self.wid(name)).result()

    async def bare_start(self, inp: BareInput) -> Any:
        return await self.stack.client.start_workflow(
            "BenchBareWorkflow", inp, id=f"bench-bare-{uuid.uuid4().hex[:12]}",
            task_queue=BARE_TASK_QUEUE, result_type=str)

    # ---------------------------------------------------------------- warm-up
    async def warm_up(self) -> None:
        """Runs one application and reads its history: which activities (regular and local)
        the real path runs."""
        await self.prepare_seniors(1)
        name = await self.submit(INSTANT)
        await self.real_done(name)
        history = await self.stack.client.get_workflow_handle(self.wid(name)).fetch_history()
        acts: list[str] = []
        for ev in history.events:
            if ev.HasField("activity_task_scheduled_event_attributes"):
                acts.append(ev.activity_task_scheduled_event_attributes.activity_type.name)
            elif ev.HasField("marker_recorded_event_attributes") and \
                    ev.marker_recorded_event_attributes.marker_name == "core_local_activity":
                acts.append("local:" + _local_activity_type(ev.marker_recorded_event_attributes))
        self.activities = acts
        app = (await self.matters.GetApplication(mpb.GetApplicationRequest(name=name),
                                                 metadata=await self.applicant_md(name))).application
        assert app.status == mpb.APPLICATION_STATUS_COMPLETED, app
        self.sample_app = app
        for n in (BASELINE_ACTIVITIES, len(acts)):
            await (await self.bare_start(BareInput(n))).result()
        self.say(f"warm-up: the real path runs {len(acts)} activities "
                 f"({sum(a.startswith('local:') for a in acts)} local), {len(history.events)} "
                 "history events")

    # ---------------------------------------------------------------- figure 1
    async def real_batch(self, n: int) -> float:
        t0 = time.perf_counter()
        names = await asyncio.gather(*[self.submit(INSTANT) for _ in range(n)])
        await asyncio.gather(*[self.real_done(x) for x in names])
        return n / (time.perf_counter() - t0)

    async def bare_batch(self, n: int, activities: int = BASELINE_ACTIVITIES) -> float:
        t0 = time.perf_counter()
        handles = await asyncio.gather(*[self.bare_start(BareInput(activities))
                                         for _ in range(n)])
        await asyncio.gather(*[h.result() for h in handles])
        return n / (time.perf_counter() - t0)

    async def same_count_batch(self, n: int) -> float:
        """The secondary baseline: as many no-op activities as the real path's history holds
        (regular and local alike)."""
        return await self.bare_batch(n, max(1, len(self.activities)))

    # Processes whose CPU a round is charged with (the bench process's own client work and
    # the idle echo server are left out).
    CPU_PROCESSES = ("temporal", "identity", "certificates", "matters", "worker", "bare-worker")

    async def throughput(self, rounds: int, batch: int, *, same_count: bool = True
                         ) -> dict[str, Any]:
        """Figure 1: instant approvals a second against the fixed baseline (BareWorkflow
        with three regular no-op activities, on its bare worker), in interleaved rounds;
        with ``same_count`` the same-count bare workflow runs in each round too, as a
        secondary line."""
        sides: dict[str, list[float]] = {"real": [], "bare": [], "same_count": []}
        fns = {"real": self.real_batch, "bare": self.bare_batch,
               "same_count": self.same_count_batch}
        # CPU ms per workflow of each process, per round: less noisy than the rates on a
        # shared machine, and it says which process a change made cheaper.
        cpu: dict[str, list[dict[str, float]]] = {"real": [], "bare": []}
        await self.prepare_seniors(rounds * batch - len(self.seniors))
        for r in range(rounds):
            order = ["real", "bare"] if r % 2 == 0 else ["bare", "real"]
            if same_count:
                order.append("same_count")
            for label in order:
                before = self.stack.cpu()
                sides[label].append(await fns[label](batch))
                after = self.stack.cpu()
                if label in cpu:
                    cpu[label].append({n: 1000 * (after[n] - before[n]) / batch
                                       for n in self.CPU_PROCESSES if n in after})
                self.say(f"  throughput round {r + 1}/{rounds} {label}: "
                         f"{sides[label][-1]:.1f} wf/s")
        cpu_ms = {label: {n: percentile([c[n] for c in per], 50) for n in per[0]}
                  for label, per in cpu.items() if per}
        for label, per_process in cpu_ms.items():
            self.say(f"  throughput CPU ms per workflow, {label}: {sum(per_process.values()):.0f}"
                     " (" + ", ".join(f"{n} {v:.0f}" for n, v in per_process.items() if v >= 0.5)
                     + ")")
        real, bare = sides["real"], sides["bare"]
        rs, bs = spread(real), spread(bare)
        out: dict[str, Any] = {
            "unit": "applications/s", "batch": batch, "rounds": rounds,
            "activities": len(self.activities),
            "local_activities": sum(a.startswith("local:") for a in self.activities),
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

    async def bare_only(self, rounds: int, batch: int) -> dict[str, Any]:
        bare = []
        for r in range(rounds):
            bare.append(await self.bare_batch(batch))
            self.say(f"  throughput round {r + 1}/{rounds} bare: {bare[-1]:.1f} wf/s")
        return {"govflow": _nan_spread(), "baseline": spread(bare), "ratio": float("nan")}

    # ---------------------------------------------------------------- figure 2
    async def latency(self) -> dict[str, Any]:
        """Figure 2: closed loop, one at a time, measured by the caller: from the submission
        until the workflow has ended (the certificate issued and the grants released),
        against starting the fixed baseline until it has ended; interleaved."""
        real_ms: list[float] = []
        bare_ms: list[float] = []
        await self.prepare_seniors(self.p.latency_samples - len(self.seniors))

        async def real() -> None:
            t0 = time.perf_counter()
            name = await self.submit(INSTANT)
            await self.real_done(name)
            real_ms.append(1000 * (time.perf_counter() - t0))

        async def bare() -> None:
            t0 = time.perf_counter()
            h = await self.bare_start(BareInput(BASELINE_ACTIVITIES))
            await h.result()
            bare_ms.append(1000 * (time.perf_counter() - t0))

        for i in range(self.p.latency_samples):
            for fn in ((real, bare) if i % 2 == 0 else (bare, real)):
                await fn()
            if (i + 1) % max(1, self.p.latency_samples // 5) == 0:
                self.say(f"  latency sample {i + 1}/{self.p.latency_samples}: real "
                         f"{real_ms[-1]:.0f} ms, bare {bare_ms[-1]:.0f} ms")
        g, b = latency(real_ms), latency(bare_ms)
        r50 = ratio(g["p50"], b["p50"])
        return {"unit": "ms", "to_workflow_completed": {"govflow": g, "baseline": b},
                "ratio_p50": r50, "ratio_p95": ratio(g["p95"], b["p95"]),
                "ratio_p99": ratio(g["p99"], b["p99"]), "goal": "p50 ratio <= 1.0",
                "met": r50 <= 1.0}

    # ---------------------------------------------------------------- figure 3
    # A decision sets off its follow-up in the workflow (the task's and timeline's writes,
    # the next step's task and timer: a few hundred milliseconds of the worker's time).
    # Each measured decision waits this long after the one before, so it measures one
    # round trip, not the previous one's follow-up; the same wait comes before every bare
    # Update. The back-to-back figure, without it, is reported beside.
    DECISION_SETTLE_SECONDS = 0.5

    async def claimed_tasks(self, n: int) -> tuple[tuple[tuple[str, str], ...], list[str]]:
        """``n`` officer applications, their acceptance tasks claimed by chen-jing: her
        metadata and the task names (figures 3 and 11)."""
        officer = await self.md("chen-jing", AGENCY)
        names = await asyncio.gather(*[self.submit(OFFICER) for _ in range(n)])
        tasks = [f"tasks/{x.removeprefix('applications/')}-acceptance-sz-amr" for x in names]

        async def claim(task: str) -> None:
            deadline = time.monotonic() + 120
            while True:
                try:
                    await self.matters.ClaimTask(mpb.ClaimTaskRequest(name=task), metadata=officer)
                    return
                except grpc.aio.AioRpcError as err:
                    if err.code() != grpc.StatusCode.NOT_FOUND or time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.2)

        await asyncio.gather(*[claim(t) for t in tasks])
        return officer, tasks

    async def decisions(self) -> dict[str, Any]:
        n = self.p.decisions
        officer, tasks = await self.claimed_tasks(2 * n)
        names = ["applications/" + t.removeprefix("tasks/").removesuffix("-acceptance-sz-amr")
                 for t in tasks]
        await asyncio.sleep(1.0)  # let the claims' own activities settle
        parked = await self.bare_start(BareInput(0, park=True))

        async def sample(tasks: list[str], settle: float) -> tuple[list[float], list[float]]:
            real_ms: list[float] = []
            bare_ms: list[float] = []

            async def real(task: str) -> None:
                t0 = time.perf_counter()
                await self.matters.DecideTask(mpb.DecideTaskRequest(
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
                await asyncio.sleep(self.DECISION_SETTLE_SECONDS)
                t0 = time.perf_counter()
                await self.matters.GetApplication(mpb.GetApplicationRequest(name=name),
                                                  metadata=officer)
                out.append(1000 * (time.perf_counter() - t0))
            return out

        real_ms, bare_ms = await sample(tasks[:n], self.DECISION_SETTLE_SECONDS)
        burst_real, burst_bare = await sample(tasks[n:], 0.0)
        hop = await hop_ms()
        await parked.signal("finish")
        self.say(f"  decisions: DecideTask p50 {percentile(real_ms, 50):.1f} ms, "
                 f"no-op Update p50 {percentile(bare_ms, 50):.1f} ms (back to back: "
                 f"{percentile(burst_real, 50):.0f} vs {percentile(burst_bare, 50):.0f} ms)")
        # Where the time goes: the worker's share is the workflow task that runs the Update
        # (started -> completed in the history), the rest is the two gRPC hops and the service.
        real_wft = [ms for t in tasks[:n] for ms in await self.update_task_ms(
            self.wid(t.removeprefix("tasks/").split("-acceptance-")[0]), "decide_task")]
        bare_wft = await self.update_task_ms(parked.id, "noop")
        g, b = latency(real_ms), latency(bare_ms)
        r = ratio(g["p50"], b["p50"])
        breakdown = {"update_workflow_task_ms_p50": {"govflow": percentile(real_wft, 50),
                                                     "baseline": percentile(bare_wft[:n], 50)},
                     "service_hop_ms_p50": percentile(hop, 50)}
        self.say(f"  decisions: the Update's workflow task p50 {percentile(real_wft, 50):.1f} ms"
                 f" (bare {percentile(bare_wft[:n], 50):.1f} ms); one call through the matters"
                 f" service after the same pause (GetApplication) {percentile(hop, 50):.1f} ms")
        gb, bb = latency(burst_real), latency(burst_bare)
        return {"unit": "ms", "govflow": g, "baseline": b, "ratio_p50": r,
                "ratio_p95": ratio(g["p95"], b["p95"]), "goal": "p50 ratio <= 1.5",
                "met": r <= 1.5, "settle_seconds": self.DECISION_SETTLE_SECONDS,
                "breakdown": breakdown,
                "back_to_back": {"govflow": gb, "baseline": bb,
                                 "ratio_p50": ratio(gb["p50"], bb["p50"])}}

    async def update_task_ms(self, workflow_id: str, update: str) -> list[float]:
        """Started -> completed of each workflow task that accepted an Update named so."""
        history = await self.stack.client.get_workflow_handle(workflow_id).fetch_history()
        out: list[float] = []
        started = None
        events = list(history.events)
        for i, ev in enumerate(events):
            if ev.HasField("workflow_task_started_event_attributes"):
                started = ev.event_time.ToDatetime()
            elif ev.HasField("workflow_task_completed_event_attributes") and started:
                nxt = events[i + 1] if i + 1 < len(events) else None
                if nxt is not None and nxt.HasField(
                        "workflow_execution_update_accepted_event_attributes") and \
                        nxt.workflow_execution_update_accepted_event_attributes \
                        .accepted_request.input.name == update:
                    out.append((ev.event_time.ToDatetime() - started).total_seconds() * 1000)
        return out

    # ---------------------------------------------------------------- figure 4
    async def _load(self, call: Callable[[], Awaitable[object]], server: str,
                    seconds: float | None = None) -> tuple[int, float, float]:
        """Calls made with ``read_concurrency`` in flight for ``seconds`` (``read_seconds``
        unless given), the time they took, and the CPU seconds the ``server`` process
        spent meanwhile (all its threads)."""
        pid = self.stack.pids()[server]
        cpu0 = harness.cpu_seconds(pid)
        stop = time.perf_counter() + (self.p.read_seconds if seconds is None else seconds)
        count = 0

        async def loop() -> None:
            nonlocal count
            while time.perf_counter() < stop:
                await call()
                count += 1

        t0 = time.perf_counter()
        await asyncio.gather(*[loop() for _ in range(self.p.read_concurrency)])
        return count, time.perf_counter() - t0, harness.cpu_seconds(pid) - cpu0

    async def _paired(self, real: Callable[[], Awaitable[object]], real_server: str,
                      base: Callable[[], Awaitable[object]]) -> tuple[tuple[float, float],
                                                                      tuple[float, float]]:
        """One round of a read path against its baseline: ``read_slices`` short slices a
        side, alternating (real first, then baseline first, ...), so both sides meet the
        same moments of a shared machine. Returns (rate, server CPU µs per call) a side."""
        sides = {"real": [0, 0.0, 0.0], "base": [0, 0.0, 0.0]}
        slice_s = self.p.read_seconds / self.p.read_slices
        for i in range(self.p.read_slices):
            order = (("real", real, real_server), ("base", base, "echo"))
            for side, call, server in (order if i % 2 == 0 else order[::-1]):
                n, took, cpu = await self._load(call, server, slice_s)
                acc = sides[side]
                acc[0] += n
                acc[1] += took
                acc[2] += cpu

        def rate_cpu(acc: list[Any]) -> tuple[float, float]:
            return acc[0] / acc[1], 1e6 * acc[2] / max(acc[0], 1)

        return rate_cpu(sides["real"]), rate_cpu(sides["base"])

    async def reads(self) -> dict[str, Any]:
        assert self.sample_app is not None
        citizen = await self.applicant_md(self.sample_app.name)
        officer = await self.md("chen-jing", AGENCY)
        app, cert = self.sample_app.name, self.sample_app.result_certificate
        get_req = mpb.GetApplicationRequest(name=app)
        list_req = mpb.ListTasksRequest(page_size=20)
        inbox = await self.fill_inbox(officer, 20)
        self.say(f"  reads: the officer's inbox holds {inbox} open tasks (ListTasks reads a "
                 "page of 20)")
        quiet, waited = await self.quiet(20.0)
        self.say(f"  reads: the stack is quiet after {waited:.1f} s (the inbox's workflows "
                 "done with their first steps)" if quiet else
                 f"  reads: the stack is still busy after {waited:.0f} s; measuring anyway")
        verify_req = cpb.VerifyCertificateRequest(name=cert)
        echo_ch = grpc.aio.insecure_channel(self.stack.echo_addr)
        echo: Any = echo_ch.unary_unary(ECHO_METHOD)
        echo_payload = get_req.SerializeToString()
        calls: dict[str, Callable[[], Awaitable[Any]]] = {
            "GetApplication": lambda: self.matters.GetApplication(get_req, metadata=citizen),
            "ListTasks": lambda: self.matters.ListTasks(list_req, metadata=officer),
            "VerifyCertificate": lambda: self.certificates.VerifyCertificate(
                verify_req, metadata=citizen),
            "echo": lambda: echo(echo_payload),
        }
        # The matched baseline of each path: the bare server returns exactly the bytes the
        # real call returned, for a request of the real call's size, and the client parses
        # them into the same message type — gRPC and protobuf's own cost for that payload.
        put: Any = echo_ch.unary_unary(ECHO_PUT)
        for k, (req, resp_type) in {
                "GetApplication": (get_req, mpb.GetApplicationResponse),
                "ListTasks": (list_req, mpb.ListTasksResponse),
                "VerifyCertificate": (verify_req, cpb.VerifyCertificateResponse)}.items():
            real = await calls[k]()
            key = req.SerializeToString()
            await put(key + b"\0" + real.SerializeToString())
            get: Any = echo_ch.unary_unary(ECHO_GET, response_deserializer=resp_type.FromString)
            calls[f"echo:{k}"] = functools.partial(get, key)
        for call in calls.values():  # warm every path once
            await call()
        rps: dict[str, list[float]] = {k: [] for k in calls}
        # The serving process's CPU per call (all its threads), per round: it says how
        # much work a call is, with less of the machine's noise than the rates.
        cpu_us: dict[str, list[float]] = {k: [] for k in calls}
        server = {"GetApplication": "matters", "ListTasks": "matters",
                  "VerifyCertificate": "certificates"}
        paths = list(server)
        rounds = self.p.read_rounds or self.p.rounds
        for r in range(rounds):
            # Each path is measured against its matched baseline in alternating slices
            # (see _paired); the paths take turns first. The tiny echo is shown beside.
            for k in paths[r % len(paths):] + paths[:r % len(paths)]:
                (rate, per_call), (brate, bper_call) = await self._paired(
                    calls[k], server[k], calls[f"echo:{k}"])
                rps[k].append(rate)
                cpu_us[k].append(per_call)
                rps[f"echo:{k}"].append(brate)
                cpu_us[f"echo:{k}"].append(bper_call)
            n, took, cpu = await self._load(calls["echo"], "echo")
            rps["echo"].append(n / took)
            cpu_us["echo"].append(1e6 * cpu / max(n, 1))
            self.say("  reads round " + f"{r + 1}/{rounds}: " + ", ".join(
                f"{k} {rps[k][-1]:.0f}/s against {rps['echo:' + k][-1]:.0f}/s "
                f"({ratio(rps[k][-1], rps['echo:' + k][-1]):.2f})" for k in paths)
                + f"; tiny echo {rps['echo'][-1]:.0f}/s")
        single = {}
        for k, call in calls.items():  # unloaded latency, for the breakdown
            t = []
            for _ in range(50 if self.p.mode == "full" else 10):
                t0 = time.perf_counter()
                await call()
                t.append(1e6 * (time.perf_counter() - t0))
            single[k] = percentile(t, 50)
        await echo_ch.close()
        breakdown = await self.read_breakdown(citizen, officer, app, cert)
        out: dict[str, Any] = {"unit": "requests/s", "concurrency": self.p.read_concurrency,
                               "seconds_per_round": self.p.read_seconds, "rounds": rounds,
                               "slices_per_round": self.p.read_slices,
                               "baseline": spread(rps["echo"]),
                               "baseline_single_call_us": single["echo"], "paths": {},
                               "baselines": "each path against the bare server returning the "
                               "same response bytes (parsed into the same type); the tiny "
                               "echo (the request's bytes back) is shown beside it"}
        for k in ("GetApplication", "ListTasks", "VerifyCertificate"):
            s = spread(rps[k])
            matched = spread(rps[f"echo:{k}"])
            # Each round pairs the path with its baseline in alternating slices, so the
            # figure is the median of the rounds' ratios (the ratio of the two medians,
            # whose rounds may have met different moments of the machine, is kept beside).
            per_round = [ratio(a, b) for a, b in zip(rps[k], rps[f"echo:{k}"], strict=True)]
            rr = percentile(per_round, 50)
            br = breakdown[k]
            br["single_call_us"] = single[k]
            br["matched_echo_single_call_us"] = single[f"echo:{k}"]
            br["transport_checks_logging_us"] = single[k] - br["auth_us"] - br[
                "database_us"] - br["serialisation_us"]
            out["paths"][k] = {"govflow": s, "baseline": matched, "ratio": rr,
                               "ratio_to_tiny_echo": ratio(s["median"],
                                                           out["baseline"]["median"]),
                               "response_bytes": len((await calls[k]()).SerializeToString()),
                               "per_round_ratios": per_round,
                               "ratio_of_medians": ratio(s["median"], matched["median"]),
                               # The bare server's CPU per call over the service's (p50 of
                               # rounds): shown beside the goal's ratio of rates.
                               "server_cpu_us_per_call_p50": {
                                   "govflow": percentile(cpu_us[k], 50),
                                   "baseline": percentile(cpu_us[f"echo:{k}"], 50)},
                               "cpu_ratio": ratio(percentile(cpu_us[f"echo:{k}"], 50),
                                                  percentile(cpu_us[k], 50)),
                               "breakdown_us": br, "goal": ">= 0.5", "met": rr >= 0.5}
        out["met"] = all(v["met"] for v in out["paths"].values())
        out["goal"] = ">= 0.5 each"
        return out

    async def quiet(self, limit: float) -> tuple[bool, float]:
        """Waits until the stack's processes together spend under a tenth of a core for
        half a second (the workflows just started have parked), at most ``limit`` seconds.
        Returns whether it got quiet, and the wait. The read rounds then measure the
        reads, not that follow-up."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < limit:
            before = sum(self.stack.cpu().values())
            await asyncio.sleep(0.5)
            if sum(self.stack.cpu().values()) - before < 0.05:
                return True, time.monotonic() - t0
        return False, time.monotonic() - t0

    async def fill_inbox(self, officer: Any, want: int) -> int:
        """Submits applications that wait on chen-jing's agency until the inbox shows at
        least ``want`` open tasks (an empty inbox would measure an empty page)."""
        req = mpb.ListTasksRequest(page_size=100, filter="status=OPEN")

        async def count() -> int:
            return len((await self.matters.ListTasks(req, metadata=officer)).tasks)

        have = await count()
        if have < want:
            await asyncio.gather(*[self.submit(OFFICER) for _ in range(want - have)])
        deadline = time.monotonic() + 120
        while (have := await count()) < want and time.monotonic() < deadline:
            await asyncio.sleep(0.3)
        return have

    async def read_breakdown(self, citizen: Any, officer: Any, app: str,
                             cert: str) -> dict[str, dict[str, float]]:
        """Times, in this process, the three parts each read does in its service: token
        verification, the database call and the proto build and serialisation (profiling
        the pieces with the services' own code and databases; no instrumentation in the
        services themselves)."""
        from govflow import auth
        from govflow.db import Database
        from govflow.service_client import JwksSource
        from services.certificates.api import certificate_pb
        from services.certificates.service import Certificates
        from services.matters import reads
        from services.matters.api import build_task, get_application_response

        settings = self.stack.settings
        jwks = JwksSource(settings.identity_addr)
        n = 300 if self.p.mode == "full" else 50

        async def timed(fn: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
            """Median µs per call (the machine may be shared: the median resists that)."""
            result = await fn()
            samples = []
            for _ in range(n):
                t0 = time.perf_counter()
                result = await fn()
                samples.append(1e6 * (time.perf_counter() - t0))
            return percentile(samples, 50), result

        async def timed_sync(fn: Callable[[], Any]) -> float:
            async def wrapped() -> Any:
                return fn()
            return (await timed(wrapped))[0]

        out: dict[str, dict[str, float]] = {}
        mdb = Database(settings.database_url("matters"))
        cdb = Database(settings.database_url("certificates"))
        try:
            applications = reads.ApplicationReader(mdb, get_application_response)
            certs = Certificates(cdb)
            for path, token_md, audience in (("GetApplication", citizen, "govflow.matters"),
                                             ("ListTasks", officer, "govflow.matters"),
                                             ("VerifyCertificate", citizen,
                                              "govflow.certificates")):
                verifier = auth.TokenVerifier(audience, jwks)
                token = token_md[0][1].removeprefix("Bearer ")
                auth_us, principal = await timed(lambda: verifier.verify(token))
                if path == "GetApplication":
                    # As the service answers a repeated read: the owner and version query,
                    # then the response built earlier (the first call built and cached it).
                    await applications.get(principal, app)
                    db_us, (_, response) = await timed(lambda: mdb.read(
                        applications.query(principal, app)))
                    ser_us = await timed_sync(response.SerializeToString)
                elif path == "ListTasks":
                    # As the service reads a page: the agency's inbox version, and the
                    # page's response made before while it is unchanged (the first call
                    # made it).
                    pages: reads.VersionedCache[Any] = reads.VersionedCache(64)
                    db_us, listed = await timed(lambda: mdb.read(reads.list_tasks(
                        principal, {}, offset=0, limit=20, build=build_task,
                        respond=lambda tasks: mpb.ListTasksResponse(tasks=tasks),
                        cache=pages)))
                    ser_us = await timed_sync(listed.SerializeToString)
                else:
                    db_us, result = await timed(lambda: certs.verify_read(
                        principal, cert, purpose="", application=""))
                    # The response made of a verification served again is reused too.
                    verified = cpb.VerifyCertificateResponse(
                        valid=not result.failures,
                        certificate=certificate_pb(result.certificate, certs.clock()))
                    ser_us = await timed_sync(verified.SerializeToString)
                out[path] = {"auth_us": auth_us, "database_us": db_us, "serialisation_us": ser_us}
        finally:
            await jwks.close()
            mdb.dispose()
            cdb.dispose()
        return out

    # ---------------------------------------------------------------- figure 6
    async def count_parked(self) -> int:
        resp = await self.stack.client.count_workflows(
            'WorkflowType="ApplicationWorkflow" AND GovflowMatter="individual-business-registration"'
            ' AND GovflowStatus="IN_REVIEW" AND ExecutionStatus="Running"')
        return int(resp.count)

    async def park(self, target: int, base: int) -> float:
        """Submits applications until ``target`` more than ``base`` wait on an officer task,
        keeping at most a few hundred on their way; returns the seconds it took."""
        t0 = time.monotonic()
        submitted, last_say = 0, t0
        window = 300
        while True:
            parked = await self.count_parked() - base
            if parked >= target:
                break
            room = min(window - (submitted - parked), target - submitted, 100)
            if room > 0:
                await asyncio.gather(*[self.submit(OFFICER) for _ in range(room)])
                submitted += room
            else:
                await asyncio.sleep(0.3)
            if time.monotonic() - last_say > 10:
                last_say = time.monotonic()
                el = last_say - t0
                self.say(f"  parking: {parked}/{target} parked, {submitted} submitted, "
                         f"{parked / el:.1f}/s")
        # The task row and step_opened come two activities after IN_REVIEW: let them land.
        await asyncio.sleep(3.0)
        return time.monotonic() - t0

    async def list_rounds(self, sides: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
        """Figure 6's two queries against each of ``sides`` (matters stubs by name):
        ``scale_rounds`` rounds, every round once the stack is quiet, each side in turn
        within a round (the order alternating by round), ``scale_queries`` of each query a
        side. A side's p50/p95/p99 are the medians of its rounds'; the rounds' p99s are
        kept, in round order, so sides can be compared round by round."""
        officer = await self.md("chen-jing", AGENCY)

        def calls(stub: Any) -> dict[str, Callable[[], Awaitable[object]]]:
            return {
                "ListTasks status=OPEN": lambda: stub.ListTasks(mpb.ListTasksRequest(
                    filter="status=OPEN", page_size=20), metadata=officer),
                "ListApplications matter AND status": lambda: stub.ListApplications(
                    mpb.ListApplicationsRequest(
                        filter=f"matter={OFFICER} AND status=IN_REVIEW", page_size=20),
                    metadata=officer),
            }

        reqs = {side: calls(stub) for side, stub in sides.items()}
        for side_calls in reqs.values():
            for call in side_calls.values():
                await call()
        rounds: dict[str, dict[str, list[dict[str, float]]]] = {
            side: {k: [] for k in side_calls} for side, side_calls in reqs.items()}
        quiet_rounds = 0
        order = list(reqs)
        for i in range(self.p.scale_rounds):
            quiet_rounds += (await self.quiet(10.0))[0]
            for side in (order if i % 2 == 0 else order[::-1]):
                times: dict[str, list[float]] = {k: [] for k in reqs[side]}
                for _ in range(self.p.scale_queries):
                    for k, call in reqs[side].items():
                        t0 = time.perf_counter()
                        await call()
                        times[k].append(1000 * (time.perf_counter() - t0))
                for k, v in times.items():
                    rounds[side][k].append(latency(v))
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for side, kinds in rounds.items():
            out[side] = {}
            for k, rs in kinds.items():
                out[side][k] = {q: statistics.median(r[q] for r in rs)
                                for q in ("p50", "p95", "p99")}
                out[side][k].update(n=sum(int(r["n"]) for r in rs),
                                    rounds_p99=[r["p99"] for r in rs],
                                    rounds_quiet=quiet_rounds)
        return out

    async def scale(self) -> dict[str, Any]:
        base0 = await self.count_parked()
        small, real_n, large = self.p.scale_base, min(self.p.scale_real, self.p.scale_n), \
            self.p.scale_n
        self.say(f"  parking {small} applications on officer tasks")
        await self.park(small, base0)
        q_small = (await self.list_rounds({"real": self.matters}))["real"]
        rss_small = self.stack.rss()
        # The sizes cannot take turns in one database, so the small one is kept: a copy of
        # matters' database as it stands now, served by a second matters process, which
        # then takes turns with the real one round by round at the larger sizes (the
        # machine's other tenants meet both alike).
        small_server = await self.start_small_matters()
        try:
            small_stub = matters_pb2_grpc.MattersServiceStub(small_server[1])
            self.say(f"  parking up to {real_n} through the real workflow")
            took = await self.park(real_n, base0)
            await asyncio.sleep(2.0)
            rss_real = self.stack.rss()
            at_real = await self.list_rounds({"real": self.matters, "copy": small_stub})
            at_large = at_real
            if large > real_n:
                self.say(f"  topping up the read model to {large} parked applications")
                await asyncio.to_thread(self.copy_parked, large - real_n)
                at_large = await self.list_rounds({"real": self.matters, "copy": small_stub})
            counts = {side: await asyncio.to_thread(_open_tasks, path) for side, path in (
                ("real", self.stack.settings.database_url("matters")),
                ("small_copy", small_server[2]))}
        finally:
            await small_server[1].close()
            small_server[0].stop()
        added = real_n - small
        per_app = {k: (rss_real[k] - rss_small[k]) / added for k in rss_small}
        queries = {}
        for k in q_small:
            big, beside = at_large["real"][k], at_large["copy"][k]
            per_round = [ratio(a, b) for a, b in zip(big["rounds_p99"], beside["rounds_p99"],
                                                      strict=True)]
            r = statistics.median(per_round)
            queries[k] = {f"at_{small}": q_small[k], f"at_{real_n}": at_real["real"][k],
                          f"at_{large}": big, f"at_{small}_beside_{large}": beside,
                          f"at_{small}_beside_{real_n}": at_real["copy"][k],
                          "per_round_ratios": per_round, "p99_ratio": r,
                          "p99_ratio_unpaired": ratio(big["p99"], q_small[k]["p99"]),
                          "goal": "<= 2", "met": r <= 2}
        return {"parked_small": small, "parked_real": real_n, "parked_large": large,
                "parking_seconds": took, "parking_rate_per_s": (real_n - small) / took
                if real_n > small else float("nan"),
                "how": f"{real_n} applications parked through the real workflow (submitted by "
                       "wang-fang, waiting on their acceptance task with reminder and "
                       f"escalation timers); memory is measured over them. "
                       + (f"The other {large - real_n} are copies of those rows (application, "
                          "submitted event, open task) written straight into the matters "
                          "read model, for the query figures at full size. "
                          if large > real_n else "")
                       + f"The {small}-application baseline is a copy of matters' database "
                         f"taken at {small}, served by a second matters process that takes "
                         "turns with the real one, round by round; the p99 ratio is the "
                         "median of the rounds' ratios.",
                "rss_mib": {f"at_{small}": rss_small, f"at_{real_n}": rss_real},
                "mib_per_parked_application": per_app,
                "kib_per_parked_application_worker_and_services": 1024 * sum(
                    per_app[k] for k in ("worker", "identity", "certificates", "matters")),
                "open_tasks_in_database": counts,
                "queries_ms": queries, "goal": "p99 within 2x of the small size",
                "met": all(q["met"] for q in queries.values())}

    async def start_small_matters(self) -> tuple[Stack, grpc.aio.Channel, str]:
        """A second matters service on a copy of matters' database as it is now (SQLite's
        online backup, consistent while the service writes), on its own port."""
        settings = self.stack.settings
        copy = settings.data_dir / "matters-small.sqlite3"

        def backup() -> None:
            src = _sqlite(settings.database_url("matters"))
            dst = sqlite3.connect(copy)
            try:
                src.backup(dst)
            finally:
                dst.close()
                src.close()

        await asyncio.to_thread(backup)
        port = harness.free_port()
        small = dataclasses.replace(settings, matters_port=port,
                                    matters_addr=f"127.0.0.1:{port}",
                                    matters_database_url=f"sqlite:///{copy}")
        procs = Stack(small)
        procs.spawn("matters-small", [sys.executable, "-m", "services.matters.server"])
        try:
            await cli.wait_healthy(small.matters_addr, 90, cli.HEALTH_NAMES["matters"])
        except BaseException:
            procs.stop()
            raise
        return procs, grpc.aio.insecure_channel(small.matters_addr), small.matters_database_url

    def copy_parked(self, n: int) -> None:
        """Writes ``n`` copies of a real parked application (row, submitted event, open
        acceptance task, new ids, spread due times) into the matters read model."""
        from sqlmodel import select

        from govflow.db import Database
        from services.matters.store import ApplicationEventRow, ApplicationRow, TaskRow

        db = Database(self.stack.settings.database_url("matters"))
        try:
            with db.session() as s:
                task = s.exec(select(TaskRow).where(TaskRow.status == "OPEN",
                                                    TaskRow.step == "acceptance")).first()
                assert task is not None, "no parked application to copy"
                app = s.get(ApplicationRow, task.application_id)
                assert app is not None
                tdata, adata = task.model_dump(), app.model_dump()
                for start in range(0, n, 1000):
                    for i in range(start, min(n, start + 1000)):
                        new_id = f"bench{uuid.uuid4().hex[:11]}"
                        shift = dt.timedelta(seconds=i)
                        s.add(ApplicationRow(**{**adata, "id": new_id,
                                                "request_id": f"bench-{new_id}",
                                                "create_time": app.create_time - shift}))
                        s.add(ApplicationEventRow(application_id=new_id, event_id="0000-submitted",
                                                  kind="submitted", message="Submitted (copy)",
                                                  time=app.create_time - shift,
                                                  status="SUBMITTED", actor=app.submitted_by))
                        s.add(TaskRow(**{**tdata, "name": f"tasks/{new_id}-acceptance-sz-amr",
                                         "application_id": new_id, "workflow_id": "",
                                         "due_time": (task.due_time or app.create_time) + shift}))
                    s.commit()
        finally:
            db.dispose()


def _sqlite(url: str) -> sqlite3.Connection:
    """A plain connection to a service's SQLite database (the bench runs them on SQLite)."""
    assert url.startswith("sqlite:///"), f"not a SQLite database: {url}"
    return sqlite3.connect(url.removeprefix("sqlite:///"))


def _open_tasks(url: str) -> int:
    """Open tasks in a matters SQLite database (to show what each side of figure 6 holds)."""
    conn = _sqlite(url)
    try:
        return int(conn.execute("SELECT count(*) FROM tasks WHERE status = 'OPEN'").fetchone()[0])
    finally:
        conn.close()


def _nan_spread() -> dict[str, float]:
    return spread([])


def _local_activity_type(attrs: Any) -> str:
    try:
        payload = attrs.details["data"].payloads[0]
        return str(json.loads(payload.data).get("activity_type", "?"))
    except Exception:
        return "?"


# -------------------------------------------------------------------- figure 5
def certificate_verify(p: Params, say: Progress) -> dict[str, Any]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from services.certificates import domain

    now = dt.datetime.now(dt.UTC)
    key = Ed25519PrivateKey.generate()
    pub = key.public_key()
    payload = domain.canonical(domain.build_payload(
        certificate_id="0123456789abcdef", type_code="senior-citizen-card",
        holder="persons/0123456789abcdef", issuer_code="sz-cab",
        fields={"holder_name": "Wang Fang", "birth_date": "1958-03-15", "region": "440304"},
        valid_from=now - dt.timedelta(days=1), valid_until=now + dt.timedelta(days=365),
        status_list_index=7, kid="sz-cab.1"))
    signature = domain.sign(key, payload)
    raw = domain.b64url_decode(signature)
    trusted = frozenset({"agencies/sz-cab"})
    assert not domain.verify(payload, signature, pub, status=domain.ACTIVE, now=now,
                             key_issuer="agencies/sz-cab", trusted_issuers=trusted,
                             expected_payload=payload)

    def govflow() -> None:
        domain.verify(payload, signature, pub, status=domain.ACTIVE, now=now,
                      key_issuer="agencies/sz-cab", trusted_issuers=trusted,
                      expected_payload=payload)

    def bare() -> None:
        pub.verify(raw, payload)

    def rate(fn: Callable[[], None]) -> float:
        t0 = time.perf_counter()
        for _ in range(p.verify_iterations):
            fn()
        return p.verify_iterations / (time.perf_counter() - t0)

    g: list[float] = []
    b: list[float] = []
    for r in range(p.rounds):
        for fn, out in (((govflow, g), (bare, b)) if r % 2 == 0 else ((bare, b), (govflow, g))):
            out.append(rate(fn))
    gs, bs = spread(g), spread(b)
    rr = ratio(gs["median"], bs["median"])
    say(f"  certificate verify: domain.verify {gs['median']:.0f}/s, bare Ed25519 "
        f"{bs['median']:.0f}/s")
    return {"unit": "verifications/s", "payload_bytes": len(payload), "govflow": gs,
            "baseline": bs, "ratio": rr, "goal": ">= 0.5", "met": rr >= 0.5}


# -------------------------------------------------------------------- the run
# The figures by the names ``--only`` takes (all by default).
FIGURES = frozenset({"throughput", "latency", "decision", "reads", "verify", "scale", "storage",
                     "gateway", "observability", "catalogue", "shortcuts"})

async def run(p: Params, out_dir: pathlib.Path, only: frozenset[str] = FIGURES) -> dict[str, Any]:
    say = Progress()
    started = dt.datetime.now(dt.UTC)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="govflow-bench-"))
    figures: dict[str, Any] = {}
    storage: dict[str, Any] = {}
    settings_used: dict[str, Any] = {}
    try:
        say(f"govflow bench ({p.mode} mode); stack data in {tmp}")
        stack = await harness.start(tmp / "file-wal", "file-wal", say)
        settings_used = {"worker_max_concurrent_activities":
                         stack.settings.worker_max_concurrent_activities,
                         "worker_max_cached_workflows": stack.settings.worker_max_cached_workflows}
        try:
            bench = Bench(stack, p, say)
            await bench.warm_up()
            if "throughput" in only or "storage" in only:
                say(f"1/9 throughput of instant approvals ({p.rounds} rounds of {p.batch})")
                figures["throughput"] = await bench.throughput(p.rounds, p.batch)
                storage["file-wal"] = figures["throughput"]
            if "latency" in only:
                say(f"2/9 closed-loop latency ({p.latency_samples} samples each)")
                figures["latency"] = await bench.latency()
            if "decision" in only:
                say(f"3/9 officer decision round trip ({p.decisions} each)")
                figures["decision"] = await bench.decisions()
            if "reads" in only:
                say(f"4/9 read paths ({p.read_rounds or p.rounds} rounds of {p.read_seconds}s each)")
                figures["reads"] = await bench.reads()
            if "verify" in only:
                say("5/9 certificate verification in-process")
                figures["certificate_verify"] = certificate_verify(p, say)
            if "scale" in only:
                say(f"6/9 scale: {p.scale_base} then {p.scale_n} parked applications")
                figures["scale"] = await bench.scale()
            if "gateway" in only:
                say(f"8/9 GetApplication over Connect JSON through the gateway against native "
                    f"gRPC ({p.read_rounds or p.rounds} rounds of {p.read_seconds}s a side)")
                figures["gateway"] = await gateway_figure(bench)
        finally:
            await stack.close()
        if "storage" in only:
            say("7/9 dev server storage modes (figure 1 on each)")
            for mode in p.storage_modes:
                if mode in storage:
                    continue
                s = await harness.start(tmp / mode, mode, say, services=p.storage_real)
                try:
                    b = Bench(s, p, say)
                    if p.storage_real:
                        await b.warm_up()
                        storage[mode] = await b.throughput(p.rounds, p.batch, same_count=False)
                    else:
                        b.activities = bench.activities
                        storage[mode] = await b.bare_only(p.rounds, p.batch)
                finally:
                    await s.close()
            figures["storage_modes"] = {
                "unit": "applications/s", "modes": {
                    m: {"govflow": storage[m]["govflow"], "baseline": storage[m]["baseline"],
                        "ratio": storage[m]["ratio"]} for m in p.storage_modes},
                "real_stack_on_every_mode": p.storage_real,
                "default": "file-wal", "goal": "justify the embedded default",
                "met": storage["file-wal"]["baseline"]["median"] >= max(
                    storage[m]["baseline"]["median"] for m in p.storage_modes if m != "memory")}
        if "observability" in only:
            say(f"9/9 instant approvals with metrics and tracing on against both off "
                f"({p.rounds} rounds of {p.batch}, two stacks side by side)")
            figures["observability"] = await observability_figure(
                p, tmp, say, lambda s: Bench(s, p, say))
        if "catalogue" in only:
            say("10/10 catalogue at scale: the province's matters loaded, then ListMatters at "
                "the demo's size and at 600+ matters, taking turns")
            figures["catalogue"] = await catalogue_figure(p.mode == "quick", tmp, say)
        if "shortcuts" in only:
            say(f"11 shortcuts on private APIs, with against without "
                f"({p.read_rounds or p.rounds} rounds of {p.batch}, the read paths, "
                "decisions; two stacks side by side)")
            figures["shortcuts"] = await shortcuts_figure(p, tmp, say, lambda s: Bench(s, p, say))
        if "throughput" not in only:
            figures.pop("throughput", None)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result = {
        "meta": {"mode": p.mode, "started": started.isoformat(),
                 "duration_s": round(time.monotonic() - say.t0, 1),
                 "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                             "platform": platform.platform()},
                 "params": dataclasses.asdict(p), "worker": settings_used,
                 "embedded_storage": "file-wal", "figures_run": sorted(only)},
        "figures": figures,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    partial = "" if only == FIGURES else "-" + "-".join(sorted(only))
    for name in (f"bench-{p.mode}{partial}-{stamp}", f"latest-{p.mode}{partial}"):
        (out_dir / f"{name}.json").write_text(json.dumps(result, indent=2, default=_json))
        (out_dir / f"{name}.md").write_text(markdown(result))
    print(markdown(result))
    say(f"wrote {out_dir / f'bench-{p.mode}{partial}-{stamp}.json'} and .md")
    return result


def _json(o: object) -> object:
    return str(o)


def _f(x: float, digits: int = 1) -> str:
    return "n/a" if x != x else f"{x:,.{digits}f}"


def markdown(result: dict[str, Any]) -> str:
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
        lines += shortcuts_lines(o)
    for mode, v in f.get("storage_modes", {"modes": {}})["modes"].items():
        lines.append(f"| 7 | throughput, dev server {mode} | {_f(v['govflow']['median'])} wf/s | "
                     f"{_f(v['baseline']['median'])} wf/s | {_f(v['ratio'], 2)} | — | — |")
    lines += catalogue_rows(f.get("catalogue"))
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


def main(*, quick: bool, out: pathlib.Path, park: int = 0, park_real: int = 0,
         only: frozenset[str] = FIGURES) -> int:
    """Entry point of ``govflow bench`` (options parsed in govflow/cli.py)."""
    p = QUICK if quick else FULL
    if park:
        p = dataclasses.replace(p, scale_n=park)
    if park_real:
        p = dataclasses.replace(p, scale_real=park_real)
    try:
        asyncio.run(run(p, out, only))
    except KeyboardInterrupt:
        print("govflow bench: interrupted", file=sys.stderr)
        return 130
    return 0
