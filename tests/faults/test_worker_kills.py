"""Fault 1: the worker is SIGKILLed inside each kind of activity, under load; a new worker
finishes every acknowledged application, each with one certificate and one task per step.

The kill lands inside the activity through the test-only hook GOVFLOW_FAULT_HOLD_ACTIVITY:
the named activity does its work (the certificate is issued, the event recorded, ...) and
then hangs, so its completion never reaches Temporal. After the kill, Temporal retries it
when its start-to-close timeout (30 s) runs out, on whichever worker is alive: the retry
must find the work done and do it no second time.

Rounds overlap to save time: round k starts a worker holding activity kind k, submits a
batch, waits until that kind is held, kills the worker, and goes on; the batches of earlier
rounds carry on on later workers (and may be held and killed again). A clean worker ends it.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.faults.procs import Figures, ProcStack
from tests.faults.workload import (
    check_exactly_once,
    new_seniors,
    submit_permits,
    submit_seniors,
    wait_completed,
    work_permit,
)

# Every activity kind the workload runs: the instant path's gather and issue (with the
# closing grant release and events), and the three-step path's task writes, its timeline
# flushed before each wait, and the officers' decision writes.
ACTIVITIES = ("gather", "issue_certificate", "record_events", "upsert_task", "record_event")
# Kinds only the three-step applications reach.
PERMIT_ONLY = frozenset({"record_events", "upsert_task", "record_event"})


async def kill_inside_each_activity(procs: ProcStack, *, seniors_per_round: int,
                                    permits_per_round: int, rounds: int = 1) -> Figures:
    stack = procs.stack
    assert stack is not None
    figures = Figures("worker SIGKILL inside each activity kind")
    pool = await new_seniors(stack, rounds * len(ACTIVITIES) * seniors_per_round)
    seniors: list[str] = []
    permits: list[str] = []
    officers: list[asyncio.Task[None]] = []
    procs.kill("worker")
    for _ in range(rounds):
        for activity in ACTIVITIES:
            await procs.start_worker({"GOVFLOW_FAULT_HOLD_ACTIVITY": activity})
            batch = await submit_seniors(stack, pool[len(seniors):len(seniors) + seniors_per_round])
            more = await submit_permits(stack, permits_per_round)
            seniors += batch
            permits += more
            officers += [asyncio.create_task(work_permit(stack, p, timeout=600)) for p in more]
            # Several of this kind held at once: the kill lands inside all of them.
            want = max(1, len(more)) if activity in PERMIT_ONLY else min(3, len(batch))
            held = await procs.wait_log("worker", "fault.holding", want, timeout=120)
            await asyncio.sleep(0.5)  # let more of them arrive
            assert any(h.get("activity") == activity for h in held), held
            procs.kill("worker")
            figures.injected += 1
    await procs.start_worker()
    done = await wait_completed(stack, seniors + permits, timeout=600)
    await asyncio.gather(*officers)
    figures.applications = len(seniors) + len(permits)
    figures.completed = len(done)
    figures.duplicates = await check_exactly_once(stack, done, seniors=seniors, permits=permits)
    print(figures.report())
    return figures


async def test_worker_killed_inside_each_activity_kind(running: ProcStack) -> None:
    figures = await kill_inside_each_activity(running, seniors_per_round=4, permits_per_round=1)
    assert figures.injected == len(ACTIVITIES)
    assert figures.completed == figures.applications == 5 * len(ACTIVITIES)
    assert figures.duplicates == 0


@pytest.mark.heavy
async def test_worker_killed_inside_each_activity_kind_heavy(running: ProcStack) -> None:
    """Bigger load and every kind killed twice: 2 x 5 kills, 2 x 5 x (8 + 2) applications."""
    figures = await kill_inside_each_activity(running, seniors_per_round=8, permits_per_round=2,
                                              rounds=2)
    assert figures.injected == 2 * len(ACTIVITIES)
    assert figures.completed == figures.applications
    assert figures.duplicates == 0
