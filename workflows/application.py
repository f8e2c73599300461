"""ApplicationWorkflow: one durable workflow per application, from submission to a
signed result certificate (or reasons), without a counter visit.

The happy path reads top to bottom in ``carry``: verify the applicant, gather materials
from e-certificates (with pledges and uploads where allowed), approve by rule where the
matter allows, otherwise walk the officer steps (with reminders, escalation and supplement
rounds), then issue the result exactly once and, on the pledge path, check the pledge
later. Officers act through Updates (claim, decide, reassign) whose validators refuse
wrong roles, foreign agencies, unclaimed or decided tasks and self-dealing before anything
is written to history; applicants withdraw and supply materials the same way.

The parts, each in its own module:
- ``materials``   the applicant and the materials: gathered, judged, pledged, supplied
- ``steps``       an officer step: its tasks, reminder, escalation and outcome
- ``clocks``      the time limits in working days, recounted when a calendar is published
- ``timeline``    the events, kept and recorded in batches, and the status they set
- ``life_event``  a life event (一件事): its bundled matters as child workflows
- ``officer_updates``  what officers' Updates do to the tasks, and their writes
- ``officer_checks``  the Update validators' rules
This module holds the path, the ways it ends, the handlers and the calls it makes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    # The workflow's parts, passed through like the plain modules (workflows/worker.py
    # PASSED_THROUGH): the sandbox re-imports only this module for every workflow.
    from workflows import life_event, officer_checks, officer_updates, rules, steps
    from workflows.activity_policy import ACTIVITY_TIMEOUT, RETRY
    from workflows.clocks import Clocks, provisional_note
    from workflows.materials import Materials
    from workflows.models import (
        ApplicantAction,
        ApplicationInput,
        ApplicationResult,
        FinishRequest,
        IssueRequest,
        OfficerAction,
        TaskRecord,
    )
    from workflows.outcomes import (
        DECIDED,
        OPEN_TASK,
        WITHDRAW_ZH,
        CallRefused,
        Refused,
        Withdrawn,
    )
    from workflows.timeline import Timeline


@workflow.defn(name="ApplicationWorkflow")
class ApplicationWorkflow:
    @workflow.init
    def __init__(self, inp: ApplicationInput) -> None:
        self.inp = inp
        self.timeline = Timeline(inp.application_id)
        self.clocks = Clocks(inp)
        self.materials = Materials(self)
        # True once the application's end (grants released, closing events) went with
        # the result certificate's issue.
        self.closed = False
        self.tasks: dict[str, TaskRecord] = {}
        self.result_certificate = ""
        # The tasks of the step now open (their due time is the "step" clock's).
        self.step_tasks: list[str] = []
        self.withdraw_reason: str | None = None
        self.supplied: ApplicantAction | None = None
        # Who may not decide this application's tasks besides applicant and submitter
        # (ApplicantFacts.interested; only a validator reads it, so no replay concern).
        self.interested: list[str] = []
        # Read-model writes started by officer Updates that answered first; the run
        # awaits them before it ends.
        self.background: list[asyncio.Task[None]] = []
        # Set when an officer Update answered first: the next read-model write of the main
        # path is a regular activity, so the workflow task that completes the Update ends at
        # once instead of waiting for local activities the decision set off.
        self.update_answered = False
        # Writes of a task that officer Updates started and that have not landed yet, by
        # task (a claim's may still be running when the decision comes); a decided step
        # waits for them.
        self.writing: dict[str, int] = {}

    # ------------------------------------------------------------------ the path
    @workflow.run
    async def run(self, inp: ApplicationInput) -> ApplicationResult:
        try:
            result = await (life_event.carry_bundle(self) if inp.matter.bundle
                            else self.carry())
        except Refused as refused:
            result = await self.end("rejected", "申请未予批准：" + "；".join(refused.reasons_zh),
                                    "; ".join(refused.reasons), "REJECTED", refused.reasons)
        except Withdrawn:
            reason = self.withdraw_reason or "withdrawn by the applicant"
            result = await self.end("withdrawn",
                                    f"已撤回：{WITHDRAW_ZH.get(reason, reason)}；未签发任何证照",
                                    f"Withdrawn: {reason}; nothing was issued", "WITHDRAWN",
                                    [reason], actor=self.inp.submitted_by)
        except (ActivityError, CallRefused) as err:
            # A call that can never succeed (refused by a service for good): end the
            # application visibly as FAILED, with the reason, rather than a stuck workflow.
            result = await self.failed(err)
        try:
            while self.background:
                await self.background.pop(0)
        except (ActivityError, CallRefused) as err:
            result = await self.failed(err)
        if self.closed:
            await self.flush()  # grants released with the issue; anything since recorded
        else:
            # The applicant's consent was for this application only: it ends with it.
            # The closing events are recorded after the grants are released, in one call.
            release = not inp.matter.bundle
            released_event = self.timeline.new("consent_released", "", "") if release else None
            events = self.timeline.take()
            await self.main_activity("finish", FinishRequest(
                application_id=inp.application_id, release=release, events=events,
                released_event=released_event), result_type=int)
            self.timeline.recorded(events)
            self.timeline.publish_status()
        # An Update may still be writing its answer: let it finish first.
        await workflow.wait_condition(workflow.all_handlers_finished)
        return result

    async def carry(self) -> ApplicationResult:
        m = self.inp.matter
        due = await self.clocks.promised()
        note_zh, note_en = provisional_note(due)
        self.timeline.add("verification_started", "正在核验申请人身份" + note_zh,
                          "Checking the applicant's identity" + note_en, status="VERIFYING",
                          due_time=due.due.isoformat(), due_provisional=due.provisional)
        got = await self.materials.gather(m.materials, with_applicant=True)
        applicant = await self.materials.verify_applicant(got)
        materials = await self.materials.take(got.materials)
        facts = self.materials.facts(applicant, materials)
        if m.instant_approval and self.instant_decision(facts):
            result = await self.approve(facts)
        else:
            if not m.steps:
                raise Refused(["instant-approval rules not met and the matter has no manual steps"],
                              ["不符合即办规则，且本事项没有人工审核环节"])
            self.timeline.add("in_review", "等待工作人员审核", "Waiting for officers",
                              status="IN_REVIEW")
            index, round_no = 0, 1
            while index < len(m.steps):
                outcome, missing = await steps.run_step(self, m.steps[index], round_no)
                if outcome == "SUPPLEMENT":
                    supplied = await self.materials.ask(missing)
                    materials.update(await self.materials.pull_again(supplied))
                    facts = self.materials.facts(applicant, materials)
                    round_no += 1
                    continue
                index, round_no = index + 1, 1
            result = await self.approve(facts)
        if self.materials.pledged:
            await self.materials.check_pledges(result)
        return result

    def instant_decision(self, facts: dict[str, Any]) -> bool:
        ok, explanations = rules.evaluate_all(self.inp.matter.instant_rules, facts)
        used = {r.fact for r in self.inp.matter.instant_rules}
        receipt = {
            "rule_version": self.inp.matter.rule_version,
            "inputs": {k: facts.get(k) for k in sorted(used)},
            "outcome": "approved" if ok else "not_approved",
            "explanations": explanations,
        }
        self.check_withdrawn()
        if ok:
            self.timeline.add("instant_approved", "已自动审批通过（按规则）", "Approved by rule",
                              status="APPROVED", receipt=receipt)
        else:
            self.timeline.add("instant_rules_not_met",
                              "不符合即办规则，转人工审核：" + "；".join(explanations),
                              "; ".join(explanations), receipt=receipt)
        return ok

    async def approve(self, facts: dict[str, Any]) -> ApplicationResult:
        self.check_withdrawn()
        m = self.inp.matter
        if self.timeline.status != "APPROVED":
            self.timeline.add("approved", "申请已审批通过", "Application approved",
                              status="APPROVED")
        events = self.timeline.take()
        # The activity names the certificate in this event once it is issued.
        issued = self.timeline.new("certificate_issued", "", "", status="COMPLETED",
                                   current_steps=[])
        # Unless pledges are still to be checked, the application ends here: its grants
        # are released and its closing events recorded in the same call.
        closing = not self.materials.pledged
        req = IssueRequest(application_id=self.inp.application_id,
                           request_id=f"{workflow.info().workflow_id}/result",
                           certificate_type=m.result_certificate_type, holder=self.inp.applicant,
                           fields=rules.render_fields(m.result_fields, facts),
                           validity_days=m.result_validity_days, events=events,
                           issued_event=issued, finish=FinishRequest(
                               application_id=self.inp.application_id, release=True,
                               released_event=self.timeline.new("consent_released", "", ""))
                           if closing else None)
        try:
            name: str = await self.main_activity("issue_certificate", req, result_type=str,
                                                 withdrawable=True)
        except (ActivityError, CallRefused):
            # Not issued, so none of the events was recorded: they go with the ending.
            self.timeline.pending[:0] = events
            raise
        self.timeline.recorded([*events, issued])
        self.closed = closing
        self.result_certificate = name
        return ApplicationResult(status="COMPLETED", result_certificate=name)

    async def end(self, kind: str, message: str, message_en: str, status: str,
                  reasons: list[str], *, actor: str = "system") -> ApplicationResult:
        """Ends the application without a result: its open tasks cancelled, then the
        closing event."""
        await self.cancel_open_tasks()
        self.timeline.add(kind, message, message_en, status=status, current_steps=[],
                          actor=actor, reasons=reasons)
        return ApplicationResult(status=status, reasons=reasons)

    async def failed(self, err: ActivityError | CallRefused) -> ApplicationResult:
        if isinstance(err, CallRefused):
            cause = err.message
        else:
            cause = str(getattr(err.cause, "message", err.cause)) if err.cause is not None \
                else str(err)
        reason = f"{err.activity_type} could not be completed: {cause}"
        return await self.end("failed", f"办理失败：系统调用 {err.activity_type} 未能完成（{cause}）",
                              reason, "FAILED", [reason])

    async def cancel_open_tasks(self) -> None:
        for t in self.tasks.values():
            if t.status in OPEN_TASK:
                t.status = "CANCELLED"
                await self.write_task(t)

    # ------------------------------------------------------------------ officers' Updates
    # What each does is in officer_updates.py; what each refuses in officer_checks.py.
    @workflow.update(name="claim_task")
    async def claim_task(self, action: OfficerAction) -> TaskRecord:
        return officer_updates.claim(self, action)

    @claim_task.validator
    def validate_claim(self, action: OfficerAction) -> None:
        officer_checks.check_claim(officer_updates.task_for(self, action), action)

    @workflow.update(name="decide_task")
    async def decide_task(self, action: OfficerAction) -> TaskRecord:
        return officer_updates.decide(self, action)

    @decide_task.validator
    def validate_decide(self, action: OfficerAction) -> None:
        officer_checks.check_decision(officer_updates.task_for(self, action), action)

    @workflow.update(name="reassign_task")
    async def reassign_task(self, action: OfficerAction) -> TaskRecord:
        return officer_updates.reassign(self, action)

    @reassign_task.validator
    def validate_reassign(self, action: OfficerAction) -> None:
        officer_checks.check_reassignment(
            self.tasks.get(action.task), action,
            (self.inp.submitted_by, self.inp.applicant, *self.interested))

    # ------------------------------------------------------------------ applicant Updates
    @workflow.update(name="withdraw")
    async def withdraw(self, action: ApplicantAction) -> str:
        if self.timeline.status in DECIDED:
            raise ApplicationError(f"the application is already {self.timeline.status.lower()}",
                                   type="FAILED_PRECONDITION")
        self.withdraw_reason = action.reason or "withdrawn by the applicant"
        await workflow.wait_condition(lambda: self.timeline.recorded_status in DECIDED)
        return self.timeline.recorded_status

    @withdraw.validator
    def validate_withdraw(self, action: ApplicantAction) -> None:
        self.check_applicant(action)
        if self.timeline.status in DECIDED:
            raise ApplicationError(f"the application is already {self.timeline.status.lower()}",
                                   type="FAILED_PRECONDITION")

    @workflow.signal(name="withdraw")
    def withdraw_signal(self, reason: str) -> None:
        """From a life event to its bundled matters (workflows cannot send Updates)."""
        if self.timeline.status not in DECIDED:
            self.withdraw_reason = reason

    @workflow.update(name="supply_materials")
    async def supply_materials(self, action: ApplicantAction) -> str:
        if self.timeline.status != "SUPPLEMENT_REQUESTED":
            raise ApplicationError("no materials were asked for", type="FAILED_PRECONDITION")
        self.supplied = action
        await workflow.wait_condition(
            lambda: self.timeline.recorded_status != "SUPPLEMENT_REQUESTED")
        return self.timeline.recorded_status

    @supply_materials.validator
    def validate_supply(self, action: ApplicantAction) -> None:
        self.check_applicant(action)
        if self.timeline.status != "SUPPLEMENT_REQUESTED":
            raise ApplicationError("no materials were asked for", type="FAILED_PRECONDITION")
        if not action.materials:
            raise ApplicationError("supply at least one material", type="INVALID_ARGUMENT")

    def check_applicant(self, action: ApplicantAction) -> None:
        if action.caller != self.inp.submitted_by and action.acting_for != self.inp.applicant \
                and action.caller != self.inp.applicant:
            raise ApplicationError("no such application", type="NOT_FOUND")

    @workflow.query(name="status")
    def query_status(self) -> dict[str, Any]:
        promised = self.clocks.get("application")
        return {"status": self.timeline.status,
                "due_time": promised.due.isoformat() if promised else "",
                "due_provisional": self.clocks.any_provisional(),
                "result_certificate": self.result_certificate,
                "tasks": [dataclasses.asdict(t) for t in self.tasks.values()]}

    # ------------------------------------------------------------------ calendars
    @workflow.signal(name="calendar_published")
    async def calendar_published(self, calendar_year: str) -> None:
        """A holiday calendar year was published: recounts every provisional time limit,
        moves its timers and says so in the timeline (the matters service signals the
        applications whose GovflowDueProvisional is true)."""
        self.clocks.calendars_published += 1
        await workflow.wait_condition(lambda: not self.clocks.recomputing)
        self.clocks.recomputing = True
        try:
            changes, changes_zh = await self.clocks.recount(self.step_due_moved)
            if not changes:
                return
            promised = self.clocks.get("application")
            supplement = self.clocks.get("supplement")
            self.timeline.add("due_times_recomputed",
                              f"节假日安排 {calendar_year} 已发布，办理时限已重新计算："
                              + "；".join(changes_zh),
                              f"{calendar_year} published; due times recomputed: "
                              + "; ".join(changes),
                              due_time=promised.due.isoformat() if promised else "",
                              due_provisional=bool(promised and promised.provisional),
                              supplement_due_time=supplement.due.isoformat() if supplement
                              else "")
            await self.flush()  # the path is waiting: nothing else would record it now
        finally:
            self.clocks.recomputing = False

    async def step_due_moved(self, due: dt.datetime, provisional: bool) -> None:
        """The open step's due time moved: so do its open tasks'."""
        for name in self.step_tasks:
            task = self.tasks[name]
            if task.status in OPEN_TASK:
                task.due_time, task.due_provisional = due.isoformat(), provisional
                await self.write_task(task)

    # ------------------------------------------------------------------ waits and calls
    def check_withdrawn(self) -> None:
        if self.withdraw_reason is not None:
            raise Withdrawn()

    async def wait(self, cond: Callable[[], bool], timeout: dt.timedelta | None = None) -> bool:
        """Waits for ``cond``; False on timeout; raises Withdrawn when the applicant withdraws.
        What the path has to record is recorded first."""
        self.check_withdrawn()
        await self.flush()
        if timeout is not None and timeout <= dt.timedelta(0):
            return cond()
        try:
            await workflow.wait_condition(lambda: cond() or self.withdraw_reason is not None,
                                          timeout=timeout)
        except TimeoutError:
            return False
        self.check_withdrawn()
        return True

    async def wait_until(self, cond: Callable[[], bool],
                         deadline: Callable[[], dt.datetime]) -> bool:
        """Waits for ``cond`` until ``deadline()``; False when the deadline passes first.
        When a published calendar moves the deadline, the wait re-arms at the new one."""
        while True:
            version = self.clocks.version

            def woken(version: int = version) -> bool:
                return cond() or self.clocks.version != version

            await self.wait(woken, deadline() - workflow.now())
            if cond():
                return True
            if self.clocks.version == version:
                return False

    async def flush(self) -> None:
        """Records the pending timeline events in one call and publishes the status: before
        every wait, so what an applicant or officer reads is never behind a waiting
        workflow."""
        events = self.timeline.take()
        if events:
            await self.main_activity("record_events", events)
            self.timeline.recorded(events)
        self.timeline.publish_status()

    async def write_task(self, task: TaskRecord) -> None:
        await self.main_activity("upsert_task", task)

    async def main_activity(self, name: str, arg: Any, *, result_type: Any = None,
                            withdrawable: bool = False) -> Any:
        """Every call of the path is short and idempotent (reads, grants and writes keyed by
        the application, a certificate issued once by its request id, timeline events by
        their sequence id): local activities, so an instant approval runs in one workflow
        task with no activity task round trip through the server, and a worker that dies
        mid-way has the next one repeat them harmlessly. Update handlers keep regular
        activities: an Update is durably accepted only when its workflow task completes,
        which a pending local activity would hold back, so a worker crash then would lose
        an officer's decision instead of retrying its write. The first call after an
        officer Update that answered first is regular too (see update_answered). With
        ``withdrawable``, a withdrawal that came meanwhile stops the path here."""
        local = not self.update_answered
        self.update_answered = False
        if local and workflow.current_update_info() is None:
            try:
                result = await workflow.execute_local_activity(
                    name, arg, result_type=result_type, start_to_close_timeout=ACTIVITY_TIMEOUT,
                    retry_policy=RETRY)
            except ApplicationError as err:
                raise CallRefused(name, err) from err
        else:
            result = await workflow.execute_activity(
                name, arg, result_type=result_type, start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=RETRY)
        if withdrawable:
            self.check_withdrawn()
        return result
