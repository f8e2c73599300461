"""The bare baselines on Temporal: a workflow that runs N no-op activities (and can park
to take no-op Updates), and the worker process that runs it: a bare worker with the SDK's
default settings (default client, data converter, sandbox, concurrency and cache), in its
own process. Issue 25 fixes the instant-approval baseline as this workflow with three
regular no-op activities (the applicant, the materials, the result)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import signal

from temporalio import activity, workflow

BARE_TASK_QUEUE = "govflow-bench-bare"
# The fixed baseline of figures 1 and 2: three regular activity calls.
BASELINE_ACTIVITIES = 3


@dataclasses.dataclass
class BareInput:
    activities: int
    park: bool = False


@activity.defn(name="bench_noop")
async def bench_noop(step: int) -> int:
    return step


@workflow.defn(name="BenchBareWorkflow")
class BareWorkflow:
    def __init__(self) -> None:
        self.finished = False

    @workflow.run
    async def run(self, inp: BareInput) -> str:
        for i in range(inp.activities):
            await workflow.execute_activity("bench_noop", i,
                                            start_to_close_timeout=dt.timedelta(seconds=30))
        if inp.park:
            await workflow.wait_condition(lambda: self.finished)
        return workflow.now().isoformat()

    @workflow.update(name="noop")
    async def noop(self) -> str:
        return "ok"

    @workflow.signal(name="finish")
    def finish(self) -> None:
        self.finished = True


async def _main() -> None:
    from temporalio.client import Client
    from temporalio.worker import Worker

    from govflow.settings import Settings

    settings = Settings.from_env()
    client = await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace)
    worker = Worker(client, task_queue=BARE_TASK_QUEUE, workflows=[BareWorkflow],
                    activities=[bench_noop])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with worker:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(_main())
