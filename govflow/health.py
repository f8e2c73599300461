"""The standard gRPC health service, driven by a probe: a service's database check, the
worker's polling and Temporal check. SERVING only while the probe answers yes; every
change of status is logged once, with its reason (``health.changed``)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from grpc_health.v1 import health, health_pb2

from govflow import log

logger = log.get_logger("govflow.health")


class Unhealthy(Exception):
    """Raised by a health probe to fail with a reason of its own (the log line's
    ``reason``); any other exception fails it too, described by its type and message."""


def _failure_reason(exc: BaseException) -> str:
    if isinstance(exc, Unhealthy):
        return str(exc)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class HealthReporter:
    """Drives the standard health service from a probe (a service's database check, the
    worker's polling and Temporal check). Every change of status is logged, once, with its
    reason (``health.changed``)."""

    def __init__(
        self, service_names: Sequence[str], probe: Callable[[], Awaitable[bool]], interval: float
    ) -> None:
        self.servicer = health.aio.HealthServicer()
        self.names = ["", *service_names]
        self.probe = probe
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.serving = False
        # Why the status is what it is: the last failure's reason, or "" while serving.
        self.reason = "not checked yet"
        self._reported = False

    async def check_once(self) -> bool:
        timeout = max(self.interval, 1.0)
        reason = ""
        try:
            if not await asyncio.wait_for(self.probe(), timeout=timeout):
                reason = "the probe answered not healthy"
        except TimeoutError:
            reason = f"the probe did not answer in {timeout:g} s"
        except Exception as exc:
            reason = _failure_reason(exc)
        ok = not reason
        self._report(ok, reason)
        status = (
            health_pb2.HealthCheckResponse.SERVING if ok else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in self.names:
            await self.servicer.set(name, status)
        return ok

    def _report(self, ok: bool, reason: str) -> None:
        changed = ok != self.serving or not self._reported
        self.serving, self.reason, self._reported = ok, reason, True
        if not changed:
            return
        if ok:
            logger.info("health.changed", status="SERVING", services=self.names[1:])
        else:
            logger.warning("health.changed", status="NOT_SERVING", reason=reason,
                           services=self.names[1:])

    async def _loop(self) -> None:
        while not self._stopping:
            await self.check_once()
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        self._stopping = True
        if self._task:
            self._task.cancel()
            # Bounded: on Python 3.11 asyncio.wait_for (inside check_once) can swallow a
            # cancellation that lands as the probe finishes; the flag ends the loop then, and
            # a probe stuck in a thread must not hold up the shutdown.
            await asyncio.wait([self._task], timeout=max(self.interval, 1.0) + 1.0)
        if self.serving:
            self._report(False, "shutting down")
        await self.servicer.enter_graceful_shutdown()
