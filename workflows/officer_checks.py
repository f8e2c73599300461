"""The checks of officers' actions on tasks, run by the Update validators before anything
is written to history: the one every action shares (the application workflow's and the
follow-up workflow's alike), then each action's own. Pure and deterministic: passed
through the workflow sandbox."""

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


def check_claim(task: TaskRecord, action: OfficerAction) -> None:
    """A claim: of an open task, or again by its assignee (answered as it stands)."""
    if task.status == "CLAIMED" and task.assignee == action.officer:
        return
    if task.status != "OPEN":
        raise ApplicationError(f"the task is {task.status.lower()}", type="FAILED_PRECONDITION")


def check_decision(task: TaskRecord, action: OfficerAction) -> None:
    """A decision: by the task's assignee, one of the three, with reasons for a rejection
    and the missing materials for a supplement request."""
    if task.status == "DECIDED":
        raise ApplicationError("the task is already decided", type="FAILED_PRECONDITION")
    if task.status != "CLAIMED" or task.assignee != action.officer:
        raise ApplicationError("claim the task before deciding it", type="FAILED_PRECONDITION")
    if action.decision not in ("APPROVE", "REJECT", "REQUEST_SUPPLEMENT"):
        raise ApplicationError(f"unknown decision {action.decision}", type="INVALID_ARGUMENT")
    if action.decision == "REJECT" and not action.reasons:
        raise ApplicationError("a rejection needs reasons", type="INVALID_ARGUMENT")
    if action.decision == "REQUEST_SUPPLEMENT" and not action.missing_materials:
        raise ApplicationError("a supplement request names the missing materials",
                               type="INVALID_ARGUMENT")


def check_reassignment(task: TaskRecord | None, action: OfficerAction,
                       excluded: Collection[str]) -> None:
    """A reassignment: by a supervisor or admin of the task's agency, of a task still open,
    to a person who is not among ``excluded`` (applicant, submitter, their organisation's
    representatives)."""
    if task is None or action.agency != task.agency:
        raise ApplicationError("no such task", type="NOT_FOUND")
    if not {"supervisor", "admin"} & set(action.roles):
        raise ApplicationError("only a supervisor or admin reassigns tasks",
                               type="PERMISSION_DENIED")
    if task.status not in ("OPEN", "CLAIMED"):
        raise ApplicationError(f"the task is {task.status.lower()}", type="FAILED_PRECONDITION")
    if not action.assignee.startswith("persons/"):
        raise ApplicationError("assignee must be persons/{id}", type="INVALID_ARGUMENT")
    if action.assignee in excluded:
        raise ApplicationError("officers may not decide their own applications",
                               type="PERMISSION_DENIED")
