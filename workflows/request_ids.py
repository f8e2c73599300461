"""One request id from the caller through the workflow into every activity's log lines.

The matters service's Temporal client puts the request id of the call it serves (the
client's ``x-request-id``, or the one the service made) into a Temporal header of each
workflow start, Update and signal; the worker's workflow interceptor carries the header of
whatever runs — the run itself, an Update or a signal handler — into the activities it
schedules; the activity interceptor makes it the activity's request id, which the
activities' own calls to the services send on as ``x-request-id``. Headers are part of
the history, so replay sees the same values.
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from typing import Any

from temporalio import client, worker
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadConverter

from govflow import log

HEADER = "govflow-request-id"
_CONVERTER = PayloadConverter.default
# The request id of the workflow code running now (the run, or one handler's task).
_current: contextvars.ContextVar[str] = contextvars.ContextVar("govflow_workflow_request_id",
                                                               default="")


def _with(headers: Mapping[str, Payload], request_id: str) -> Mapping[str, Payload]:
    if not request_id:
        return headers
    return {**headers, HEADER: _CONVERTER.to_payloads([request_id])[0]}


def _read(headers: Mapping[str, Payload]) -> str:
    payload = headers.get(HEADER)
    if payload is None:
        return ""
    value = _CONVERTER.from_payloads([payload])[0]
    return value if isinstance(value, str) else ""


class ClientInterceptor(client.Interceptor):
    """For the matters service's client: the served call's request id rides along."""

    def intercept_client(self, next: client.OutboundInterceptor) -> client.OutboundInterceptor:
        return _ClientOutbound(next)


class _ClientOutbound(client.OutboundInterceptor):
    async def start_workflow(self, input: client.StartWorkflowInput) -> Any:
        input.headers = _with(input.headers, log.request_id_var.get())
        return await super().start_workflow(input)

    async def start_workflow_update(self, input: client.StartWorkflowUpdateInput) -> Any:
        input.headers = _with(input.headers, log.request_id_var.get())
        return await super().start_workflow_update(input)

    async def signal_workflow(self, input: client.SignalWorkflowInput) -> None:
        input.headers = _with(input.headers, log.request_id_var.get())
        await super().signal_workflow(input)


class WorkerInterceptor(worker.Interceptor):
    """For the worker: workflows pass the id on to activities, activities log under it."""

    def intercept_activity(self, next: worker.ActivityInboundInterceptor
                           ) -> worker.ActivityInboundInterceptor:
        return _ActivityInbound(next)

    def workflow_interceptor_class(self, input: worker.WorkflowInterceptorClassInput
                                   ) -> type[worker.WorkflowInboundInterceptor]:
        return _WorkflowInbound


class _ActivityInbound(worker.ActivityInboundInterceptor):
    async def execute_activity(self, input: worker.ExecuteActivityInput) -> Any:
        request_id = _read(input.headers)
        if not request_id:
            return await super().execute_activity(input)
        token = log.request_id_var.set(request_id)
        try:
            return await super().execute_activity(input)
        finally:
            log.request_id_var.reset(token)


class _WorkflowInbound(worker.WorkflowInboundInterceptor):
    def init(self, outbound: worker.WorkflowOutboundInterceptor) -> None:
        super().init(_WorkflowOutbound(outbound))

    async def execute_workflow(self, input: worker.ExecuteWorkflowInput) -> Any:
        _current.set(_read(input.headers))
        return await super().execute_workflow(input)

    async def handle_signal(self, input: worker.HandleSignalInput) -> None:
        request_id = _read(input.headers)
        if request_id:
            _current.set(request_id)
        await super().handle_signal(input)

    async def handle_update_handler(self, input: worker.HandleUpdateInput) -> Any:
        request_id = _read(input.headers)
        if request_id:
            _current.set(request_id)
        return await super().handle_update_handler(input)


class _WorkflowOutbound(worker.WorkflowOutboundInterceptor):
    def start_activity(self, input: worker.StartActivityInput) -> Any:
        input.headers = _with(input.headers, _current.get())
        return super().start_activity(input)

    def start_local_activity(self, input: worker.StartLocalActivityInput) -> Any:
        input.headers = _with(input.headers, _current.get())
        return super().start_local_activity(input)

    async def start_child_workflow(self, input: worker.StartChildWorkflowInput) -> Any:
        input.headers = _with(input.headers, _current.get())
        return await super().start_child_workflow(input)
