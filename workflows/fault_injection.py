"""Test-only: hold named activities after their side effect, so a worker killed then dies
inside them (``GOVFLOW_FAULT_HOLD_ACTIVITY``; inert when empty). The activity's work is
done but its completion never reaches Temporal: the retry on another worker must be
harmless, which is what tests/faults/ proves for every activity kind."""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from govflow import log

logger = log.get_logger("govflow.faults")


class HoldActivities(Interceptor):
    def __init__(self, names: frozenset[str]) -> None:
        self.names = names

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Hold(next, self.names)


class _Hold(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, names: frozenset[str]) -> None:
        super().__init__(next)
        self.names = names

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        result = await super().execute_activity(input)
        info = activity.info()
        if info.activity_type in self.names:
            # One line per held activity: the tests wait for these before the kill.
            logger.warning("fault.holding", activity=info.activity_type,
                           workflow_id=info.workflow_id, attempt=info.attempt)
            await asyncio.Event().wait()  # until the process is killed
        return result
