"""The bench's stack and callers: one ``Bench`` per stack, the operations the figures share.

A ``Bench`` holds a started stack (benchmarks/harness.py), the stubs of its services and
the callers' tokens; it submits applications, starts bare workflows, claims tasks, reads
histories, loads a server and waits for the stack to go quiet. Each figure's measurement
lives in its own module (throughput.py, latency.py, decision.py, reads.py, scale.py, ...)
and is handed a ``Bench``.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from benchmarks import harness
from benchmarks.bare import BARE_TASK_QUEUE, BASELINE_ACTIVITIES, BareInput
from benchmarks.params import Params
from govflow.certificates.v1 import certificates_pb2_grpc
from govflow.identity.v1 import identity_pb2 as ipb
from govflow.identity.v1 import identity_pb2_grpc
from govflow.matters.v1 import matters_pb2 as mpb
from govflow.matters.v1 import matters_pb2_grpc
from govflow.service_client import ServiceToken
from govflow_cli.demo_data import DEMO_PASSWORD, AddedPerson, add_senior, person

INSTANT = "matters/senior-citizen-card"
OFFICER = "matters/individual-business-registration"
AGENCY = "agencies/sz-amr"


class Bench:
    """One stack, logged-in callers and the measurements that need them."""

    def __init__(self, stack: harness.BenchStack, p: Params, say: Callable[[str], None]
                 ) -> None:
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

    # ------------------------------------------------ batches (figures 1, 7, 9 and 11)
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

    # ------------------------------------------ officer decisions (figures 3 and 11)
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

    # ------------------------------- loads, quiet, the inbox (figures 4, 6 and 11)
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


def _local_activity_type(attrs: Any) -> str:
    try:
        payload = attrs.details["data"].payloads[0]
        return str(json.loads(payload.data).get("activity_type", "?"))
    except Exception:
        return "?"
