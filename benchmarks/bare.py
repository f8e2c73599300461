"""The bare baselines on Temporal: a workflow that runs N no-op activities (and can park
to take no-op Updates), and the worker process that runs it with the real worker's
settings (same sandbox, concurrency and cache)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import signal

from temporalio import activity, workflow

BARE_TASK_QUEUE = "govflow-bench-bare"


@dataclasses.dataclass
class BareInput:
    activities: int
    # After this many activities the workflow notes workflow.now() (the moment the real
    # workflow records certificate_issued); 0: never.
    mark_after: int = 0
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
        mark = ""
        for i in range(inp.activities):
            await workflow.execute_activity("bench_noop", i,
                                            start_to_close_timeout=dt.timedelta(seconds=30))
            if i + 1 == inp.mark_after:
                mark = workflow.now().isoformat()
        if inp.park:
            await workflow.wait_condition(lambda: self.finished)
        return mark or workflow.now().isoformat()

    @workflow.update(name="noop")
    async def noop(self) -> str:
        return "ok"

    @workflow.signal(name="finish")
    def finish(self) -> None:
        self.finished = True


async def _main() -> None:
    from temporalio.worker import Worker

    from govflow import temporal_data
    from govflow.settings import Settings
    from workflows.worker import sandbox_runner

    settings = Settings.from_env()
    client = await temporal_data.connect(settings.temporal_address, settings.temporal_namespace)
    worker = Worker(client, task_queue=BARE_TASK_QUEUE, workflows=[BareWorkflow],
                    activities=[bench_noop], workflow_runner=sandbox_runner(client.data_converter),
                    max_concurrent_activities=settings.worker_max_concurrent_activities,
                    max_cached_workflows=settings.worker_max_cached_workflows)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with worker:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(_main())
