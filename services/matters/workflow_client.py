"""Matters as Temporal's client: the connection (made on first use, so the service starts
before Temporal), the start of an application's and a follow-up's workflow, and the
Updates that carry officers' and applicants' actions, their refusals mapped to errors."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import (
    WorkflowIDConflictPolicy,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, TLSConfig

from govflow import temporal_data
from govflow.errors import (
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from workflows import request_ids, search_keys
from workflows.application import ApplicationWorkflow
from workflows.models import (
    ApplicationInput,
    FollowUpInput,
)

# The workflow's refusal types (ApplicationError.type) and the errors they become.
_ERRORS = {"PERMISSION_DENIED": PermissionDenied, "FAILED_PRECONDITION": FailedPrecondition,
           "NOT_FOUND": NotFound}


class TemporalLink:
    """Connects to Temporal on first use, so the service starts even before Temporal."""

    def __init__(self, address: str, namespace: str, task_queue: str,
                 tls: TLSConfig | bool = False) -> None:
        self.address, self.namespace, self.task_queue = address, namespace, task_queue
        self.tls = tls
        self._client: Client | None = None

    async def client(self) -> Client:
        if self._client is None:
            try:
                # Each start, Update and signal carries the served call's request id.
                self._client = await temporal_data.connect(
                    self.address, self.namespace, interceptors=[request_ids.ClientInterceptor()],
                    tls=self.tls)
            except Exception as exc:
                raise Unavailable("the workflow engine is not reachable; retry shortly",
                                  reason="TEMPORAL_UNAVAILABLE") from exc
        return self._client

    async def start_application(self, wid: str, inp: ApplicationInput) -> None:
        """Starts ``ApplicationWorkflow`` (an existing run with the id is kept), with every
        search attribute set from the start and a memo."""
        client = await self.client()
        spec = inp.matter
        try:
            await client.start_workflow(
                ApplicationWorkflow.run, inp, id=wid, task_queue=self.task_queue,
                # A retried submit after a crash finds the workflow running: no second one.
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                search_attributes=search_keys.at_start(inp),
                memo={"matter": spec.display_name, "applicant": inp.applicant,
                      "matter_version": spec.version},
            )
        except RPCError as exc:
            raise Unavailable("could not start the application's workflow; retry with the "
                              "same request_id", reason="WORKFLOW_START_FAILED") from exc

    async def start_follow_up(self, inp: FollowUpInput) -> None:
        """Starts the supervisor's follow-up of a low rating (once per application)."""
        from workflows.follow_up import FollowUpWorkflow

        client = await self.client()
        await client.start_workflow(
            FollowUpWorkflow.run, inp, id=f"followup-{inp.application_id}",
            task_queue=self.task_queue, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)

    async def update(self, wid: str, update: str, action: object, result_type: type) -> Any:
        """Sends an Update and waits for the workflow's answer; its refusal becomes the
        error it names (FAILED_PRECONDITION by default, reason ``<UPDATE>_<TYPE>``)."""
        client = await self.client()
        handle = client.get_workflow_handle(wid)
        try:
            return await handle.execute_update(update, action, result_type=result_type)
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            if isinstance(cause, ApplicationError):
                err_cls: type[DomainError] = _ERRORS.get(cause.type or "", FailedPrecondition)
                if cause.type == "INVALID_ARGUMENT":
                    field = "materials" if update == "supply_materials" else (
                        "assignee" if update == "reassign_task" else "decision")
                    raise InvalidArgument(cause.message, fields={field: cause.message}) from exc
                raise err_cls(cause.message, reason=f"{update.upper()}_{cause.type}") from exc
            raise FailedPrecondition(str(cause), reason="UPDATE_REFUSED") from exc
        except RPCError as exc:
            # The workflow may have closed while the Update was on its way (e.g. a second
            # withdrawal racing the end of the first): that is a state, not an outage.
            if await _closed(handle):
                raise FailedPrecondition("the application is no longer open",
                                         reason="APPLICATION_CLOSED") from exc
            raise Unavailable("the workflow engine did not answer; retry",
                              reason="TEMPORAL_UNAVAILABLE") from exc


async def _closed(handle: WorkflowHandle[Any, Any]) -> bool:
    try:
        desc = await handle.describe()
    except RPCError as exc:
        return "not found" in str(exc).lower()
    return desc.status is not None and desc.status.name != "RUNNING"
