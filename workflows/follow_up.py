"""FollowUpWorkflow: a low rating (1 or 2) opens a follow-up task for the agency's
supervisor. Its own module, so the application workflow's module — imported afresh by the
sandbox for every application — does not define it too (that was ~30% of that import)."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.activity_policy import ACTIVITY_TIMEOUT, RETRY
    from workflows.models import FollowUpInput, OfficerAction, TaskRecord
    from workflows.officer_checks import officer_may_act


@workflow.defn(name="FollowUpWorkflow")
class FollowUpWorkflow:
    """A low rating (1 or 2) opens a follow-up task for the agency's supervisor."""

    @workflow.init
    def __init__(self, inp: FollowUpInput) -> None:
        self.inp = inp
        now = workflow.now()
        # Five working days, counted by the matters service when it started this workflow
        # (a recorded input: a calendar published later never changes the replay).
        self.task = TaskRecord(
            name=f"tasks/{inp.application_id}-follow-up", application_id=inp.application_id,
            matter=inp.matter, step="follow-up",
            display_name=f"Follow up a rating of {inp.score}: {inp.comment[:80]}",
            role="supervisor", agency=inp.agency, status="OPEN", due_time=inp.due_time,
            due_provisional=inp.due_provisional, create_time=now.isoformat(), kind="follow_up",
            workflow_id=workflow.info().workflow_id)

    @workflow.run
    async def run(self, inp: FollowUpInput) -> str:
        await self.write()
        await workflow.wait_condition(lambda: self.task.status == "DECIDED")
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.task.decision

    async def write(self) -> None:
        await workflow.execute_activity("upsert_task", self.task,
                                        start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=RETRY)

    @workflow.update(name="claim_task")
    async def claim_task(self, action: OfficerAction) -> TaskRecord:
        if self.task.status == "OPEN":
            self.task.status, self.task.assignee = "CLAIMED", action.officer
            await self.write()
        return self.task

    @claim_task.validator
    def validate_claim(self, action: OfficerAction) -> None:
        officer_may_act(self.task, action, self.inp.applicant, "")
        if self.task.status != "OPEN" and self.task.assignee != action.officer:
            raise ApplicationError(f"the task is {self.task.status.lower()}",
                                   type="FAILED_PRECONDITION")

    @workflow.update(name="decide_task")
    async def decide_task(self, action: OfficerAction) -> TaskRecord:
        if self.task.status != "CLAIMED":
            raise ApplicationError("the task is already decided", type="FAILED_PRECONDITION")
        self.task.status, self.task.decision = "DECIDED", action.decision
        self.task.reasons = list(action.reasons)
        await self.write()
        return self.task

    @decide_task.validator
    def validate_decide(self, action: OfficerAction) -> None:
        officer_may_act(self.task, action, self.inp.applicant, "")
        if self.task.status != "CLAIMED" or self.task.assignee != action.officer:
            raise ApplicationError("claim the task before deciding it", type="FAILED_PRECONDITION")
