"""What an officer's Update does to an application's tasks: claim, decide, reassign.

The validators (workflows/officer_checks.py) have refused wrong roles, foreign agencies,
unclaimed or decided tasks and self-dealing before an Update is accepted; here the task
changes and the Update answers at once. Its read-model writes (the task, then its timeline
event) follow as regular activities scheduled in the same workflow task, so they are as
durable as the decision, and the inbox and timeline catch up a few milliseconds after the
answer. The main path takes up a decided step only once the decided task's own write has
landed (``ApplicationWorkflow.writing``), so the Update's workflow task carries the
decision alone; the run waits for every such write before it ends.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows import officer_checks
    from workflows.activity_policy import ACTIVITY_TIMEOUT, RETRY
    from workflows.models import OfficerAction, TaskRecord
    from workflows.outcomes import OPEN_TASK
    from workflows.timeline_wording import DECISION_ZH, named

if TYPE_CHECKING:
    from workflows.application import ApplicationWorkflow


def task_for(wf: ApplicationWorkflow, action: OfficerAction) -> TaskRecord:
    """The task ``action`` names, if this officer may act on it at all."""
    task = wf.tasks.get(action.task)
    if task is None:
        raise ApplicationError("no such task", type="NOT_FOUND")
    officer_checks.officer_may_act(task, action, wf.inp.applicant, wf.inp.submitted_by,
                                   wf.interested)
    return task


def claim(wf: ApplicationWorkflow, action: OfficerAction) -> TaskRecord:
    task = wf.tasks[action.task]
    if task.status != "OPEN" and task.assignee != action.officer:
        raise ApplicationError("the task was claimed by someone else", type="FAILED_PRECONDITION")
    if task.status == "CLAIMED":
        return task
    task.status, task.assignee = "CLAIMED", action.officer
    write_after_answer(wf, task, "task_claimed", f"{task.display_name}：已认领",
                       f"{step_name_en(wf, task)} claimed", actor=action.officer)
    return task


def decide(wf: ApplicationWorkflow, action: OfficerAction) -> TaskRecord:
    task = wf.tasks[action.task]
    # Re-checked here: two decisions may pass their validators before either runs.
    if task.status != "CLAIMED" or task.assignee != action.officer:
        raise ApplicationError("the task was decided by someone else", type="FAILED_PRECONDITION")
    task.status, task.decision = "DECIDED", action.decision
    task.reasons = list(action.missing_materials or action.reasons)
    text = f"{step_name_en(wf, task)}: {action.decision.lower().replace('_', ' ')}"
    text_zh = f"{task.display_name}：{named(DECISION_ZH, action.decision)}"
    if action.reasons or action.missing_materials:
        text += " (" + "; ".join([*action.reasons, *action.missing_materials]) + ")"
        text_zh += "（" + "；".join([*action.reasons,
                                     *wf.materials.names(action.missing_materials)]) + "）"
    write_after_answer(wf, task, "task_decided", text_zh, text, actor=action.officer)
    return task


def reassign(wf: ApplicationWorkflow, action: OfficerAction) -> TaskRecord:
    task = wf.tasks[action.task]
    if task.status not in OPEN_TASK:
        raise ApplicationError("the task is closed", type="FAILED_PRECONDITION")
    task_was = task.assignee
    task.status, task.assignee = "CLAIMED", action.assignee
    write_after_answer(wf, task, "task_reassigned",
                       f"{task.display_name}：由 {task_was or '（未认领）'} 改派给 {action.assignee}",
                       f"{step_name_en(wf, task)}: {task_was or 'nobody'} -> {action.assignee}",
                       actor=action.officer)
    return task


def step_name_en(wf: ApplicationWorkflow, task: TaskRecord) -> str:
    """The English name of the task's step (its display name, Chinese, when none is given)."""
    return next((s.name_en for s in wf.inp.matter.steps if s.code == task.step),
                task.display_name)


def write_after_answer(wf: ApplicationWorkflow, task: TaskRecord, kind: str, message: str,
                       message_en: str, *, actor: str) -> None:
    """The task's write, then its timeline event's, scheduled now and awaited by the run
    (``wf.background``); the task is in ``wf.writing`` until its write lands."""
    snapshot = dataclasses.replace(task, reasons=list(task.reasons))
    ev = wf.timeline.new(kind, message, message_en, actor=actor)
    wf.update_answered = True
    wf.writing[task.name] = wf.writing.get(task.name, 0) + 1

    async def write() -> None:
        try:
            await workflow.execute_activity("upsert_task", snapshot,
                                            start_to_close_timeout=ACTIVITY_TIMEOUT,
                                            retry_policy=RETRY)
        finally:
            left = wf.writing.pop(task.name) - 1
            if left:
                wf.writing[task.name] = left
        await workflow.execute_activity("record_event", ev,
                                        start_to_close_timeout=ACTIVITY_TIMEOUT,
                                        retry_policy=RETRY)

    wf.background.append(asyncio.create_task(write()))
