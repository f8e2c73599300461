"""The checks every officer action on a task shares, in the application workflow and the
follow-up workflow alike. Pure and deterministic: passed through the workflow sandbox."""

from __future__ import annotations

from collections.abc import Collection

from temporalio.exceptions import ApplicationError

from workflows.models import OfficerAction, TaskRecord


def officer_may_act(task: TaskRecord, action: OfficerAction, applicant: str, submitted_by: str,
                    interested: Collection[str] = ()) -> None:
    """Raises ApplicationError typed with the gRPC status the caller gets: NOT_FOUND for
    another agency's task, PERMISSION_DENIED for a missing role or self-dealing."""
    if action.agency != task.agency:
        raise ApplicationError("no such task", type="NOT_FOUND")
    if task.role not in action.roles:
        raise ApplicationError(f"the task needs the {task.role} role", type="PERMISSION_DENIED")
    if action.officer in (submitted_by, applicant):
        raise ApplicationError("officers may not decide their own applications",
                               type="PERMISSION_DENIED")
    if action.officer in interested:
        raise ApplicationError("officers may not decide applications of an organisation they "
                               "represent", type="PERMISSION_DENIED")
