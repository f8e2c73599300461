"""ApplicationWorkflow: one durable workflow per application, from submission to a
signed result certificate (or reasons), without a counter visit.

The happy path reads top to bottom in ``carry``: verify the applicant, gather materials
from e-certificates (with pledges and uploads where allowed), approve by rule where the
matter allows, otherwise walk the officer steps (with reminders, escalation and supplement
rounds), then issue the result exactly once and, on the pledge path, check the pledge
later. Officers act through Updates (claim, decide, reassign) whose validators refuse
wrong roles, foreign agencies, unclaimed or decided tasks and self-dealing before anything
is written to history; applicants withdraw and supply materials the same way.
A life event (一件事) runs its bundled matters as child workflows.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import Any

from temporalio import workflow
from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    SearchAttributeUpdate,
    TypedSearchAttributes,
)
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows import rules
    from workflows.activity_policy import ACTIVITY_TIMEOUT, RETRY
    from workflows.models import (
        CHINA_TZ,
        SA_AGENCY,
        SA_APPLICANT,
        SA_DUE_PROVISIONAL,
        SA_DUE_TIME,
        SA_MATTER,
        SA_OVERDUE,
        SA_STATUS,
        ApplicantAction,
        ApplicantFacts,
        ApplicationInput,
        ApplicationResult,
        ChildApplication,
        DueAnswer,
        DueQuery,
        DueRequest,
        Event,
        FinishRequest,
        Gathered,
        GatherRequest,
        IssueRequest,
        MaterialSpec,
        OfficerAction,
        PulledCertificate,
        PullRequest,
        StatusChange,
        StepSpec,
        TaskRecord,
        assurance_meets,
        workflow_id,
    )
    from workflows.officer_checks import officer_may_act
    from workflows.timeline_wording import (
        ASSURANCE_ZH,
        CERT_STATE_ZH,
        CLOCK_ZH,
        DECISION_ZH,
        PROVISIONAL_EN,
        PROVISIONAL_ZH,
        ROLE_ZH,
        STATUS_ZH,
        named,
        zh_list,
        zh_time,
    )

STATUS_KEY = SearchAttributeKey.for_keyword(SA_STATUS)
DUE_KEY = SearchAttributeKey.for_datetime(SA_DUE_TIME)
OVERDUE_KEY = SearchAttributeKey.for_bool(SA_OVERDUE)
MATTER_KEY = SearchAttributeKey.for_keyword(SA_MATTER)
AGENCY_KEY = SearchAttributeKey.for_keyword(SA_AGENCY)
APPLICANT_KEY = SearchAttributeKey.for_keyword(SA_APPLICANT)
PROVISIONAL_KEY = SearchAttributeKey.for_bool(SA_DUE_PROVISIONAL)

DECIDED = {"APPROVED", "COMPLETED", "REJECTED", "WITHDRAWN", "REVOKED", "FAILED"}
OPEN_TASK = ("OPEN", "CLAIMED")
# The withdrawal reasons the platform gives (an applicant's own stays as written).
WITHDRAW_ZH = {"withdrawn by the applicant": "申请人主动撤回", "life event withdrawn": "一件事已撤回"}
# Officer Updates (claim, decide, reassign) answer as soon as the workflow's state has
# changed; their read-model writes follow as regular activities scheduled in the same
# workflow task (durable with the Update's completion), so the inbox and the timeline catch
# up a few milliseconds after the answer. The main path takes up a decided step only once
# the decided task's own write has landed, so the Update's workflow task carries the
# decision alone.


@dataclasses.dataclass
class Clock:
    """A time limit of the application: ``days`` working days from ``start`` (plus the
    time the clock stood still), as the due_times activity counted it."""

    start: dt.datetime
    days: int
    due: dt.datetime
    provisional: bool
    paused: dt.timedelta = dt.timedelta(0)
    label: str = ""


class Refused(Exception):
    """Internal: the application ends refused, with reasons (English, as recorded on the
    application) and the same in Chinese for the timeline (``reasons_zh``; by default the
    reasons themselves, for words people wrote, such as an officer's)."""

    def __init__(self, reasons: list[str], reasons_zh: list[str] | None = None) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons
        self.reasons_zh = reasons_zh if reasons_zh is not None else reasons


class Withdrawn(Exception):
    """Internal: the applicant withdrew; undo and end."""


@workflow.defn(name="ApplicationWorkflow")
class ApplicationWorkflow:
    @workflow.init
    def __init__(self, inp: ApplicationInput) -> None:
        self.inp = inp
        self.status = "SUBMITTED"
        # The status the read model shows (set once its event is recorded); Updates wait
        # on it so the caller reads back what it caused.
        self.recorded_status = "SUBMITTED"
        self.seq = 0
        # Timeline events made and not yet recorded: they travel with the next call the
        # path makes (gather, issue, finish) or are recorded in one call before any wait.
        self.pending: list[Event] = []
        # True once the application's end (grants released, closing events) went with
        # the result certificate's issue.
        self.closed = False
        # The status the GovflowStatus search attribute shows: set before
        # every wait and at the end (not at every event).
        self.published_status = "SUBMITTED"
        self.tasks: dict[str, TaskRecord] = {}
        self.result_certificate = ""
        # The application's time limits now running, by purpose: "application" (the
        # promised limit), "step", "supplement", "pledge". Each comes from the due_times
        # activity (or, for the promised limit, the workflow's input): recorded results.
        self.clocks: dict[str, Clock] = {}
        # Bumped when a clock's due time moves (a calendar published): waits re-arm.
        self.clock_version = 0
        self.recomputing = False
        self.calendars_published = 0  # calendar_published signals seen
        # The tasks of the step now open (their due time is the "step" clock's).
        self.step_tasks: list[str] = []
        # Why a material could not be pulled, by material code (a certificate's state).
        self.material_problems: dict[str, tuple[str, str]] = {}  # (Chinese, English)
        self.withdraw_reason: str | None = None
        self.supplied: ApplicantAction | None = None
        self.pledged: list[MaterialSpec] = []
        self.uploads: dict[str, str] = {}
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
            result = await (self.carry_bundle() if inp.matter.bundle else self.carry())
        except Refused as refused:
            result = await self.reject(refused.reasons, refused.reasons_zh)
        except Withdrawn:
            result = await self.withdrawn()
        except ActivityError as err:
            # A call that can never succeed (refused by a service for good): end the
            # application visibly as FAILED, with the reason, rather than a stuck workflow.
            result = await self.failed(err)
        try:
            await self.drain_background()
        except ActivityError as err:
            result = await self.failed(err)
        if self.closed:
            await self.flush()  # grants released with the issue; anything since recorded
        else:
            # The applicant's consent was for this application only: it ends with it.
            # The closing events are recorded after the grants are released, in one call.
            release = not inp.matter.bundle
            released_event = self.new_event("consent_released", "", "") if release else None
            events = self.take_events()
            await self.main_activity("finish", FinishRequest(
                application_id=inp.application_id, release=release, events=events,
                released_event=released_event), result_type=int)
            self.recorded(events)
            self.publish_status()
        # An Update may still be writing its answer: let it finish first.
        await workflow.wait_condition(workflow.all_handlers_finished)
        return result

    async def carry(self) -> ApplicationResult:
        m = self.inp.matter
        due = await self.promised_clock()
        note_zh, note_en = self.provisional_note(due)
        await self.event("verification_started", "正在核验申请人身份" + note_zh,
                         "Checking the applicant's identity" + note_en, status="VERIFYING",
                         due_time=due.due.isoformat(), due_provisional=due.provisional)
        got = await self.gather(m.materials, with_applicant=True)
        applicant = await self.verify_applicant(got)
        materials = await self.gather_materials(got.materials)
        facts = self.facts(applicant, materials)
        if m.instant_approval and await self.instant_decision(facts):
            result = await self.approve(facts)
        else:
            if not m.steps:
                raise Refused(["instant-approval rules not met and the matter has no manual steps"],
                              ["不符合即办规则，且本事项没有人工审核环节"])
            await self.event("in_review", "等待工作人员审核", "Waiting for officers",
                             status="IN_REVIEW")
            index, round_no = 0, 1
            while index < len(m.steps):
                outcome, missing = await self.run_step(m.steps[index], round_no)
                if outcome == "SUPPLEMENT":
                    supplied = await self.supplement_round(missing)
                    materials.update(await self.pull_again(supplied))
                    facts = self.facts(applicant, materials)
                    round_no += 1
                    continue
                index, round_no = index + 1, 1
            result = await self.approve(facts)
        if self.pledged:
            await self.check_pledges(result)
        return result

    async def gather(self, materials: list[MaterialSpec], *,
                     with_applicant: bool = False) -> Gathered:
        """One call for the applicant (``with_applicant``) and the materials that come from
        e-certificates."""
        req = GatherRequest(
            application_id=self.inp.application_id,
            pulls={mat.code: PullRequest(
                application_id=self.inp.application_id, holder=self.inp.applicant,
                certificate_types=mat.certificate_types,
                purpose=f"{self.inp.matter.rule_version} material {mat.code}")
                for mat in materials if mat.certificate_types},
            applicant=self.inp.applicant if with_applicant else "",
            submitted_by=self.inp.submitted_by,
            assurance_needed=self.inp.matter.assurance_level)
        if not req.pulls and not req.applicant:
            return Gathered(applicant=None, materials={})  # nothing to fetch: no call
        got: Gathered = await self.main_activity("gather", req, result_type=Gathered,
                                                 withdrawable=True)
        return got

    async def verify_applicant(self, got: Gathered) -> ApplicantFacts:
        applicant = got.applicant
        assert applicant is not None
        self.interested = list(applicant.interested)
        need = self.inp.matter.assurance_level
        if not assurance_meets(applicant.assurance_level, need):
            raise Refused([f"identity assurance {applicant.assurance_level} is below the "
                           f"{need} this matter needs"],
                          [f"申请人身份认证等级（{named(ASSURANCE_ZH, applicant.assurance_level)}）"
                           f"低于本事项要求的{named(ASSURANCE_ZH, need)}"])
        await self.event("applicant_verified",
                         f"申请人 {applicant.display_name} 身份已核验"
                         f"（{named(ASSURANCE_ZH, applicant.assurance_level)}）",
                         f"{applicant.display_name} verified ({applicant.assurance_level})",
                         interested=self.interested or None)
        return applicant

    async def gather_materials(self, pulled: dict[str, PulledCertificate | None]
                               ) -> dict[str, PulledCertificate | None]:
        """Takes each material pulled from e-certificates; pledges and uploads fill the gaps."""
        found: dict[str, PulledCertificate | None] = {}
        uploads_needed: list[str] = []
        refused: list[str] = []
        refused_zh: list[str] = []
        for mat in self.inp.matter.materials:
            cert = await self.judge(mat, pulled.get(mat.code))
            found[mat.code] = cert
            if cert is not None:
                continue
            if mat.pledge_allowed and mat.code in self.inp.pledges:
                self.pledged.append(mat)
                await self.event("material_pledged",
                                 f"{mat.display_name}：申请人已作出告知承诺，审批后核查",
                                 f"{mat.display_name}: the applicant pledged to meet it "
                                 "(告知承诺); checked after approval")
            elif mat.upload_allowed:
                uploads_needed.append(mat.code)
            elif mat.required:
                why_zh, why = self.material_problems.get(mat.code,
                                                         ("未查到相关证照", "no certificate found"))
                refused.append(f"required material missing: {mat.display_name} ({why})")
                refused_zh.append(f"缺少必要材料：{mat.display_name}（{why_zh}）")
                await self.event("material_missing", f"{mat.display_name}：{why_zh}",
                                 f"{mat.display_name}: {why}")
        if refused:
            raise Refused(refused, refused_zh)
        if uploads_needed:
            supplied = await self.supplement_round(uploads_needed)
            found.update(await self.pull_again(supplied))
        return found

    async def pull(self, materials: list[MaterialSpec]) -> dict[str, PulledCertificate | None]:
        """Pulls ``materials`` again (one call) and judges each: the usable ones by code."""
        got = await self.gather(materials)
        return {mat.code: await self.judge(mat, got.materials.get(mat.code))
                for mat in materials}

    async def judge(self, mat: MaterialSpec, cert: PulledCertificate | None
                    ) -> PulledCertificate | None:
        """A pulled material in the timeline: the certificate if it is usable, else None
        (and why, in material_problems)."""
        if cert is not None and cert.valid:
            self.material_problems.pop(mat.code, None)
            await self.event("material_verified",
                             f"{mat.display_name}：已调取并核验证照 {cert.name}",
                             f"{mat.display_name}: {cert.name} pulled and verified")
            return cert
        if cert is not None and cert.state:
            # Held, but not usable: name the certificate and its state.
            state_zh = named(CERT_STATE_ZH, cert.state)
            self.material_problems[mat.code] = (f"证照 {cert.name} {state_zh}",
                                                f"{cert.name} is {cert.state.lower()}")
            await self.event("material_invalid",
                             f"{mat.display_name}：证照 {cert.name} {state_zh}，不能使用",
                             f"{mat.display_name}: {cert.name} is "
                             f"{cert.state.lower()}, so it cannot be used")
        elif cert is not None:
            failures = ", ".join(cert.failures)
            self.material_problems[mat.code] = (f"证照 {cert.name} 核验未通过：{failures}",
                                                f"{cert.name} failed verification: {failures}")
            await self.event("material_invalid",
                             f"{mat.display_name}：证照 {cert.name} 核验未通过（{failures}）",
                             f"{mat.display_name}: {cert.name} failed "
                             f"verification ({failures})")
        return None

    async def pull_again(self, supplied: ApplicantAction) -> dict[str, PulledCertificate | None]:
        by_code = {m.code: m for m in self.inp.matter.materials}
        again: list[MaterialSpec] = []
        for item in supplied.materials:
            if item.upload_uri:
                self.uploads[item.code] = item.upload_uri
                name = by_code[item.code].display_name if item.code in by_code else item.code
                await self.event("material_uploaded",
                                 f"{name}：已上传 {item.upload_uri}"
                                 f"（sha256 {item.upload_sha256 or '未提供'}）",
                                 f"{item.code}: upload {item.upload_uri} "
                                 f"(sha256 {item.upload_sha256 or 'not given'})")
            elif item.code in by_code:
                again.append(by_code[item.code])
        return await self.pull(again) if again else {}

    def facts(self, applicant: ApplicantFacts,
              materials: dict[str, PulledCertificate | None]) -> dict[str, Any]:
        today = workflow.now().astimezone(CHINA_TZ).date()
        facts = rules.build_facts(applicant, materials, today)
        for code, uri in self.uploads.items():
            facts[f"materials.{code}.upload"] = uri
        for mat in self.pledged:
            facts[f"materials.{mat.code}.pledged"] = True
        return facts

    async def instant_decision(self, facts: dict[str, Any]) -> bool:
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
            await self.event("instant_approved", "已自动审批通过（按规则）", "Approved by rule",
                             status="APPROVED", receipt=receipt)
        else:
            await self.event("instant_rules_not_met",
                             "不符合即办规则，转人工审核：" + "；".join(explanations),
                             "; ".join(explanations), receipt=receipt)
        return ok

    async def approve(self, facts: dict[str, Any]) -> ApplicationResult:
        self.check_withdrawn()
        m = self.inp.matter
        if self.status != "APPROVED":
            await self.event("approved", "申请已审批通过", "Application approved",
                             status="APPROVED")
        events = self.take_events()
        # The activity names the certificate in this event once it is issued.
        issued = self.new_event("certificate_issued", "", "", status="COMPLETED",
                                current_steps=[])
        # Unless pledges are still to be checked, the application ends here: its grants
        # are released and its closing events recorded in the same call.
        closing = not self.pledged
        req = IssueRequest(application_id=self.inp.application_id,
                           request_id=f"{workflow.info().workflow_id}/result",
                           certificate_type=m.result_certificate_type, holder=self.inp.applicant,
                           fields=rules.render_fields(m.result_fields, facts),
                           validity_days=m.result_validity_days, events=events,
                           issued_event=issued, finish=FinishRequest(
                               application_id=self.inp.application_id, release=True,
                               released_event=self.new_event("consent_released", "", ""))
                           if closing else None)
        name: str = await self.main_activity("issue_certificate", req, result_type=str,
                                             withdrawable=True)
        self.recorded([*events, issued])
        self.closed = closing
        self.result_certificate = name
        return ApplicationResult(status="COMPLETED", result_certificate=name)

    async def check_pledges(self, result: ApplicationResult) -> None:
        """告知承诺: approved on the pledge; checked later; the result goes if it failed."""
        m = self.inp.matter
        clock = await self.start_clock("pledge", workflow.now(), m.pledge_check_days,
                                       "pledge check")
        _, note_en = self.provisional_note(clock)
        await self.event("pledge_check_scheduled",
                         f"承诺的材料将于 {zh_time(clock.due)} 核查"
                         + (f"（{PROVISIONAL_ZH}）" if clock.provisional else ""),
                         f"Pledged materials will be checked at {clock.due.isoformat()}"
                         + note_en)
        await self.wait_until(lambda: False, lambda: clock.due)
        self.stop_clock("pledge")
        held = await self.pull(self.pledged)
        missing = [mat for mat in self.pledged if held[mat.code] is None]
        if not missing:
            await self.event("pledge_verified", "承诺的材料均已核验",
                             "Every pledged material is now held")
            return
        target = "REVOKED" if m.pledge_failure == "revoke" else "SUSPENDED"
        reason = "pledge not kept: " + ", ".join(mat.display_name for mat in missing)
        await self.main_activity("change_certificate_status",
                                 StatusChange(certificate=result.result_certificate,
                                              status=target, reason=reason), withdrawable=True)
        result.status = "REVOKED"
        result.reasons = [reason]
        await self.event("pledge_check_failed",
                         f"未履行告知承诺：{zh_list([mat.display_name for mat in missing])}；"
                         f"结果证照 {result.result_certificate} {named(CERT_STATE_ZH, target)}",
                         f"{reason}; {result.result_certificate} {target.lower()}",
                         status="REVOKED", reasons=[reason])

    async def reject(self, reasons: list[str], reasons_zh: list[str]) -> ApplicationResult:
        await self.cancel_open_tasks()
        await self.event("rejected", "申请未予批准：" + "；".join(reasons_zh), "; ".join(reasons),
                         status="REJECTED", current_steps=[], reasons=reasons)
        return ApplicationResult(status="REJECTED", reasons=reasons)

    async def failed(self, err: ActivityError) -> ApplicationResult:
        await self.cancel_open_tasks()
        cause = str(getattr(err.cause, "message", err.cause)) if err.cause is not None \
            else str(err)
        reason = f"{err.activity_type} could not be completed: {cause}"
        await self.event("failed", f"办理失败：系统调用 {err.activity_type} 未能完成（{cause}）",
                         reason, status="FAILED", current_steps=[], reasons=[reason])
        return ApplicationResult(status="FAILED", reasons=[reason])

    async def withdrawn(self) -> ApplicationResult:
        await self.cancel_open_tasks()
        reason = self.withdraw_reason or "withdrawn by the applicant"
        await self.event("withdrawn",
                         f"已撤回：{WITHDRAW_ZH.get(reason, reason)}；未签发任何证照",
                         f"Withdrawn: {reason}; nothing was issued", status="WITHDRAWN",
                         current_steps=[], actor=self.inp.submitted_by, reasons=[reason])
        return ApplicationResult(status="WITHDRAWN", reasons=[reason])

    async def cancel_open_tasks(self) -> None:
        for t in self.tasks.values():
            if t.status in OPEN_TASK:
                t.status = "CANCELLED"
                await self.write_task(t)

    # ------------------------------------------------------------------ officer steps
    async def run_step(self, step: StepSpec, round_no: int) -> tuple[str, list[str]]:
        """Opens the step's tasks and waits for its outcome: APPROVE or SUPPLEMENT
        (a rejection raises Refused). Reminds a day before the due time; escalates at it."""
        now = workflow.now()
        clock = await self.start_clock("step", now, step.time_limit_days, step.display_name)
        due = clock.due
        names = []
        suffix = "" if round_no == 1 else f"-r{round_no}"
        for agency in step.agencies:
            name = (f"tasks/{self.inp.application_id}-{step.code}-"
                    f"{agency.removeprefix('agencies/')}{suffix}")
            task = TaskRecord(name=name, application_id=self.inp.application_id,
                              matter=f"matters/{self.inp.matter.code}", step=step.code,
                              display_name=step.display_name, role=step.role, agency=agency,
                              status="OPEN", due_time=due.isoformat(), create_time=now.isoformat(),
                              due_provisional=clock.provisional)
            self.tasks[name] = task
            names.append(name)
        self.step_tasks = names
        note_zh, note_en = self.provisional_note(clock, inline=True)
        await self.event("step_opened",
                         f"{step.display_name}：待 {zh_list(step.agencies)} "
                         f"{named(ROLE_ZH, step.role)}审核（办理时限 {zh_time(due)}{note_zh}）",
                         f"{step.display_name}: waiting for {step.role} at "
                         f"{', '.join(step.agencies)} (due {due.isoformat()}{note_en})",
                         current_steps=[step.code])
        # The timeline first, then the tasks: an officer who finds a task in the inbox
        # finds the application's timeline and due time up to its opening.
        await self.flush()
        for name in names:
            await self.write_task(self.tasks[name])

        def decided() -> bool:
            return self.step_outcome(step, names) is not None

        def settled() -> bool:
            # A decided step is taken up once the decided task's own write has landed.
            return not any(n in self.writing for n in names) and decided()

        # A timer that fires while a decided task's write is still landing (the matters
        # service down, say) finds the step decided: no reminder, no escalation. The
        # timers follow the clock when a published calendar moves its due time.
        if not await self.wait_until(settled, lambda: max(clock.due - dt.timedelta(days=1), now)) \
                and not decided():
            await self.event("reminder", f"{step.display_name} 将于 {zh_time(clock.due)} 到期",
                             f"{step.display_name} is due at {clock.due.isoformat()}")
        if not await self.wait_until(settled, lambda: clock.due):
            if not decided():
                await self.escalate(step, names)
            await self.wait(settled)
        self.stop_clock("step")
        self.step_tasks = []
        outcome = self.step_outcome(step, names)
        await self.cancel_open_tasks()  # with quorum "any", the others are not needed
        if outcome == "REJECT":
            given = [r for n in names for r in self.tasks[n].reasons]
            raise Refused(given or ["rejected"], given or ["不予批准"])
        if outcome == "SUPPLEMENT":
            missing = sorted({r for n in names for r in self.tasks[n].reasons
                              if self.tasks[n].decision == "REQUEST_SUPPLEMENT"})
            return "SUPPLEMENT", missing
        await self.event("step_approved", f"{step.display_name}：已通过",
                         f"{step.display_name} approved")
        return "APPROVE", []

    def step_outcome(self, step: StepSpec, names: list[str]) -> str | None:
        decisions = [self.tasks[n].decision for n in names]
        if "REJECT" in decisions:
            return "REJECT"
        if "REQUEST_SUPPLEMENT" in decisions:
            return "SUPPLEMENT"
        approvals = decisions.count("APPROVE")
        if (step.quorum == "any" and approvals >= 1) or approvals == len(names):
            return "APPROVE"
        return None

    async def escalate(self, step: StepSpec, names: list[str]) -> None:
        overdue = [self.tasks[n] for n in names if self.tasks[n].status in OPEN_TASK]
        for t in overdue:
            t.overdue = True
        workflow.upsert_search_attributes([OVERDUE_KEY.value_set(True)])
        await self.event("escalated", f"{step.display_name} 已超过办理时限，已提级至本部门负责人",
                         f"{step.display_name} passed its time limit; escalated to "
                         "the agency's supervisor", overdue=True)
        # As when a step opens: the application overdue first, then its tasks.
        await self.flush()
        for t in overdue:
            await self.write_task(t)

    async def supplement_round(self, missing: list[str]) -> ApplicantAction:
        """Asks the applicant for materials; the statutory clock stops meanwhile."""
        paused_at = workflow.now()
        clock = await self.start_clock("supplement", paused_at,
                                       self.inp.matter.supplement_limit_days, "supplement")
        self.supplied = None
        _, note_en = self.provisional_note(clock)
        inline_zh, _ = self.provisional_note(clock, inline=True)
        await self.event("supplement_requested",
                         "请补正材料：" + zh_list(self.material_names(missing))
                         + f"（补正期限 {zh_time(clock.due)}{inline_zh}）",
                         "Please supply: " + ", ".join(missing) + note_en,
                         status="SUPPLEMENT_REQUESTED", missing_materials=missing,
                         supplement_due_time=clock.due.isoformat())
        if not await self.wait_until(lambda: self.supplied is not None, lambda: clock.due):
            raise Refused([f"the requested materials were not supplied by {clock.due.isoformat()}"],
                          [f"未在 {zh_time(clock.due)} 前补正所需材料"])
        self.stop_clock("supplement")
        supplied = self.supplied
        assert supplied is not None
        promised = self.clocks.get("application")
        if promised is not None:
            # The statutory clock stood still while the applicant was asked.
            promised.paused += workflow.now() - paused_at
            promised.due += workflow.now() - paused_at
            self.clocks_changed()
        codes = [m.code for m in supplied.materials]
        await self.event("materials_supplied", "已补正材料：" + zh_list(self.material_names(codes)),
                         "Supplied: " + ", ".join(codes),
                         status="IN_REVIEW", actor=supplied.caller, missing_materials=[],
                         due_time=promised.due.isoformat() if promised else "",
                         due_provisional=bool(promised and promised.provisional))
        return supplied

    # ------------------------------------------------------------------ life events
    async def carry_bundle(self) -> ApplicationResult:
        """Runs the bundled matters as child workflows, in order where one needs another."""
        done: dict[str, ApplicationResult] = {}
        pending = list(self.inp.children)
        bundled = [c.matter.display_name for c in pending]
        await self.event("life_event_started", "一件事联办：" + zh_list(bundled),
                         "Bundled: " + ", ".join(bundled), status="IN_REVIEW",
            current_steps=[c.matter.code for c in pending])
        while pending:
            ready = [c for c in pending if all(a in done for a in c.after)]
            handles = [await self.start_child(c) for c in ready]
            results: dict[str, ApplicationResult] = {}

            def finished(handles: list[Any] = handles) -> bool:
                return all(h.done() for h in handles)

            try:
                await self.wait(finished)
            except Withdrawn:
                for h in handles:
                    if not h.done():
                        await h.signal("withdraw", self.withdraw_reason or "life event withdrawn")
                await workflow.wait_condition(finished)
                raise
            for child, h in zip(ready, handles, strict=True):
                results[child.matter.code] = h.result()
            for child in ready:
                res = results[child.matter.code]
                await self.event("bundle_item_finished",
                                 f"{child.matter.display_name}：{named(STATUS_ZH, res.status)}",
                                 f"{child.matter.display_name}: {res.status.lower()}",
                                 result_certificates=[
                                     r.result_certificate for r in [*done.values(), res]
                                     if r.result_certificate])
                if res.status != "COMPLETED":
                    raise Refused([f"{child.matter.display_name}: " + "; ".join(res.reasons)],
                                  [f"{child.matter.display_name}：{named(STATUS_ZH, res.status)}"
                                   + ("（" + "；".join(res.reasons) + "）" if res.reasons else "")])
                done[child.matter.code] = res
            pending = [c for c in pending if c not in ready]
        certs = [r.result_certificate for r in done.values()]
        await self.event("life_event_completed", f"全部 {len(certs)} 项结果证照已签发",
                         f"All {len(certs)} results issued",
                         status="COMPLETED", current_steps=[], result_certificates=certs)
        return ApplicationResult(status="COMPLETED", result_certificates=certs)

    async def start_child(self, child: ChildApplication) -> workflow.ChildWorkflowHandle[Any, Any]:
        # A bundled matter's promised limit runs from when its turn comes.
        (due,) = await self.due_times(child.matter.calendar,
                                      [(workflow.now(), child.matter.promised_limit_days)])
        inp = ApplicationInput(application_id=child.application_id, matter=child.matter,
                               applicant=self.inp.applicant, submitted_by=self.inp.submitted_by,
                               request_id=f"{self.inp.request_id}/{child.matter.code}",
                               submitted_at=self.inp.submitted_at, pledges=self.inp.pledges,
                               parent_id=self.inp.application_id, due_time=due.time,
                               due_provisional=due.provisional)
        return await workflow.start_child_workflow(
            ApplicationWorkflow.run, inp, id=workflow_id(child.application_id),
            search_attributes=TypedSearchAttributes([
                SearchAttributePair(MATTER_KEY, child.matter.code),
                SearchAttributePair(AGENCY_KEY, child.matter.agency),
                SearchAttributePair(APPLICANT_KEY, self.inp.applicant),
                SearchAttributePair(STATUS_KEY, "SUBMITTED"),
                SearchAttributePair(DUE_KEY, dt.datetime.fromisoformat(due.time)),
                SearchAttributePair(OVERDUE_KEY, False),
                SearchAttributePair(PROVISIONAL_KEY, due.provisional),
            ]),
            memo={"matter": child.matter.display_name, "applicant": self.inp.applicant,
                  "parent": f"applications/{self.inp.application_id}"})

    # ------------------------------------------------------------------ officers' Updates
    @workflow.update(name="claim_task")
    async def claim_task(self, action: OfficerAction) -> TaskRecord:
        task = self.tasks[action.task]
        if task.status != "OPEN" and task.assignee != action.officer:
            raise ApplicationError("the task was claimed by someone else",
                                   type="FAILED_PRECONDITION")
        if task.status == "CLAIMED":
            return task
        task.status, task.assignee = "CLAIMED", action.officer
        await self.officer_writes(task, "task_claimed", f"{task.display_name}：已认领",
                                  f"{task.display_name} claimed", actor=action.officer)
        return task

    @claim_task.validator
    def validate_claim(self, action: OfficerAction) -> None:
        task = self.task(action)
        if task.status == "CLAIMED" and task.assignee == action.officer:
            return
        if task.status != "OPEN":
            raise ApplicationError(f"the task is {task.status.lower()}", type="FAILED_PRECONDITION")

    @workflow.update(name="decide_task")
    async def decide_task(self, action: OfficerAction) -> TaskRecord:
        task = self.tasks[action.task]
        # Re-checked here: two decisions may pass their validators before either runs.
        if task.status != "CLAIMED" or task.assignee != action.officer:
            raise ApplicationError("the task was decided by someone else",
                                   type="FAILED_PRECONDITION")
        task.status, task.decision = "DECIDED", action.decision
        task.reasons = list(action.missing_materials or action.reasons)
        text = f"{task.display_name}: {action.decision.lower().replace('_', ' ')}"
        text_zh = f"{task.display_name}：{named(DECISION_ZH, action.decision)}"
        if action.reasons or action.missing_materials:
            text += " (" + "; ".join([*action.reasons, *action.missing_materials]) + ")"
            text_zh += "（" + "；".join([*action.reasons,
                                         *self.material_names(action.missing_materials)]) + "）"
        await self.officer_writes(task, "task_decided", text_zh, text, actor=action.officer)
        return task

    @decide_task.validator
    def validate_decide(self, action: OfficerAction) -> None:
        task = self.task(action)
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

    @workflow.update(name="reassign_task")
    async def reassign_task(self, action: OfficerAction) -> TaskRecord:
        task = self.tasks[action.task]
        if task.status not in OPEN_TASK:
            raise ApplicationError("the task is closed", type="FAILED_PRECONDITION")
        task_was = task.assignee
        previous = task_was or "nobody"
        task.status, task.assignee = "CLAIMED", action.assignee
        await self.officer_writes(task, "task_reassigned",
                                  f"{task.display_name}：由 {task_was or '（未认领）'} 改派给 "
                                  f"{action.assignee}",
                                  f"{task.display_name}: {previous} -> {action.assignee}",
                                  actor=action.officer)
        return task

    @reassign_task.validator
    def validate_reassign(self, action: OfficerAction) -> None:
        task = self.tasks.get(action.task)
        if task is None or action.agency != task.agency:
            raise ApplicationError("no such task", type="NOT_FOUND")
        if not {"supervisor", "admin"} & set(action.roles):
            raise ApplicationError("only a supervisor or admin reassigns tasks",
                                   type="PERMISSION_DENIED")
        if task.status not in OPEN_TASK:
            raise ApplicationError(f"the task is {task.status.lower()}", type="FAILED_PRECONDITION")
        if not action.assignee.startswith("persons/"):
            raise ApplicationError("assignee must be persons/{id}", type="INVALID_ARGUMENT")
        if action.assignee in (self.inp.submitted_by, self.inp.applicant, *self.interested):
            raise ApplicationError("officers may not decide their own applications",
                                   type="PERMISSION_DENIED")

    def task(self, action: OfficerAction) -> TaskRecord:
        task = self.tasks.get(action.task)
        if task is None:
            raise ApplicationError("no such task", type="NOT_FOUND")
        officer_may_act(task, action, self.inp.applicant, self.inp.submitted_by, self.interested)
        return task

    # ------------------------------------------------------------------ applicant Updates
    @workflow.update(name="withdraw")
    async def withdraw(self, action: ApplicantAction) -> str:
        if self.status in DECIDED:
            raise ApplicationError(f"the application is already {self.status.lower()}",
                                   type="FAILED_PRECONDITION")
        self.withdraw_reason = action.reason or "withdrawn by the applicant"
        await workflow.wait_condition(lambda: self.recorded_status in DECIDED)
        return self.recorded_status

    @withdraw.validator
    def validate_withdraw(self, action: ApplicantAction) -> None:
        self.check_applicant(action)
        if self.status in DECIDED:
            raise ApplicationError(f"the application is already {self.status.lower()}",
                                   type="FAILED_PRECONDITION")

    @workflow.signal(name="withdraw")
    def withdraw_signal(self, reason: str) -> None:
        """From a life event to its bundled matters (workflows cannot send Updates)."""
        if self.status not in DECIDED:
            self.withdraw_reason = reason

    @workflow.update(name="supply_materials")
    async def supply_materials(self, action: ApplicantAction) -> str:
        if self.status != "SUPPLEMENT_REQUESTED":
            raise ApplicationError("no materials were asked for", type="FAILED_PRECONDITION")
        self.supplied = action
        await workflow.wait_condition(lambda: self.recorded_status != "SUPPLEMENT_REQUESTED")
        return self.recorded_status

    @supply_materials.validator
    def validate_supply(self, action: ApplicantAction) -> None:
        self.check_applicant(action)
        if self.status != "SUPPLEMENT_REQUESTED":
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
        return {"status": self.status, "due_time": promised.due.isoformat() if promised else "",
                "due_provisional": any(c.provisional for c in self.clocks.values()),
                "result_certificate": self.result_certificate,
                "tasks": [dataclasses.asdict(t) for t in self.tasks.values()]}

    # ------------------------------------------------------------------ plumbing
    # ------------------------------------------------------------------ time limits
    async def due_times(self, region: str, queries: list[tuple[dt.datetime, int]]) -> list[DueAnswer]:
        """Due times counted by the matters service on the calendar as published now: a
        local activity's recorded result, so a later calendar never changes a replay."""
        answers: list[DueAnswer] = await workflow.execute_local_activity(
            "due_times", DueRequest(region=region, queries=[
                DueQuery(start=start.isoformat(), days=days) for start, days in queries]),
            result_type=list[DueAnswer], start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY)
        return answers

    async def promised_clock(self) -> Clock:
        """The promised limit: counted at submission (the input), or here for a bundled
        matter started without one."""
        submitted = dt.datetime.fromisoformat(self.inp.submitted_at)
        days = self.inp.matter.promised_limit_days
        if self.inp.due_time:
            clock = Clock(start=submitted, days=days, label="promised",
                          due=dt.datetime.fromisoformat(self.inp.due_time),
                          provisional=self.inp.due_provisional)
        else:
            (answer,) = await self.due_times(self.inp.matter.calendar, [(submitted, days)])
            clock = Clock(start=submitted, days=days, label="promised",
                          due=dt.datetime.fromisoformat(answer.time),
                          provisional=answer.provisional)
        self.clocks["application"] = clock
        self.clocks_changed()
        return clock

    async def start_clock(self, key: str, start: dt.datetime, days: int, label: str) -> Clock:
        seen = self.calendars_published
        (answer,) = await self.due_times(self.inp.matter.calendar, [(start, days)])
        if answer.provisional and self.calendars_published != seen:
            # A year was published while this was counted: count again on it.
            (answer,) = await self.due_times(self.inp.matter.calendar, [(start, days)])
        clock = Clock(start=start, days=days, due=dt.datetime.fromisoformat(answer.time),
                      provisional=answer.provisional, label=label)
        self.clocks[key] = clock
        if clock.provisional:
            self.clocks_changed()
        return clock

    def stop_clock(self, key: str) -> None:
        clock = self.clocks.pop(key, None)
        if clock is not None and clock.provisional:
            self.clocks_changed()

    def clocks_changed(self) -> None:
        """Keeps the due-time search attributes in step with the clocks."""
        promised = self.clocks.get("application")
        attrs: list[SearchAttributeUpdate[Any]] = [
            PROVISIONAL_KEY.value_set(any(c.provisional for c in self.clocks.values()))]
        if promised is not None:
            attrs.append(DUE_KEY.value_set(promised.due))
        workflow.upsert_search_attributes(attrs)

    @staticmethod
    def provisional_note(clock: Clock, *, inline: bool = False) -> tuple[str, str]:
        """What a message adds when ``clock`` is provisional: (Chinese, English)."""
        if not clock.provisional:
            return "", ""
        if inline:
            return f"，{PROVISIONAL_ZH}", f", {PROVISIONAL_EN}"
        return (f"（办理时限 {zh_time(clock.due)}，{PROVISIONAL_ZH}）",
                f" (due {clock.due.isoformat()}, {PROVISIONAL_EN})")

    def material_names(self, codes: list[str]) -> list[str]:
        """The (Chinese) names of the matter's materials among ``codes``; anything else (an
        officer's description) as it is."""
        names = {m.code: m.display_name for m in self.inp.matter.materials}
        return [names.get(c, c) for c in codes]

    async def wait_until(self, cond: Callable[[], bool],
                         deadline: Callable[[], dt.datetime]) -> bool:
        """Waits for ``cond`` until ``deadline()``; False when the deadline passes first.
        When a published calendar moves the deadline, the wait re-arms at the new one."""
        while True:
            version = self.clock_version

            def woken(version: int = version) -> bool:
                return cond() or self.clock_version != version

            await self.wait(woken, deadline() - workflow.now())
            if cond():
                return True
            if self.clock_version == version:
                return False

    @workflow.signal(name="calendar_published")
    async def calendar_published(self, calendar_year: str) -> None:
        """A holiday calendar year was published: recounts every provisional time limit,
        moves its timers and says so in the timeline (the matters service signals the
        applications whose GovflowDueProvisional is true)."""
        self.calendars_published += 1
        await workflow.wait_condition(lambda: not self.recomputing)
        provisional = [(k, c) for k, c in self.clocks.items() if c.provisional]
        if not provisional:
            return
        self.recomputing = True
        try:
            answers = await self.due_times(self.inp.matter.calendar,
                                           [(c.start, c.days) for _, c in provisional])
            changes, changes_zh = [], []
            for (key, clock), answer in zip(provisional, answers, strict=True):
                if self.clocks.get(key) is not clock:
                    continue  # ended while the count was made
                due = dt.datetime.fromisoformat(answer.time) + clock.paused
                if due == clock.due and answer.provisional == clock.provisional:
                    continue
                changes.append(f"{clock.label} {clock.due.isoformat()} -> {due.isoformat()}"
                               + (" (still provisional)" if answer.provisional else ""))
                changes_zh.append(f"{named(CLOCK_ZH, clock.label)} 由 {zh_time(clock.due)} "
                                  f"调整为 {zh_time(due)}"
                                  + ("（仍为暂定）" if answer.provisional else ""))
                clock.due, clock.provisional = due, answer.provisional
                if key == "step":
                    for name in self.step_tasks:
                        task = self.tasks[name]
                        if task.status in OPEN_TASK:
                            task.due_time, task.due_provisional = due.isoformat(), answer.provisional
                            await self.write_task(task)
            if not changes:
                return
            self.clock_version += 1
            self.clocks_changed()
            promised = self.clocks.get("application")
            supplement = self.clocks.get("supplement")
            await self.event("due_times_recomputed",
                             f"节假日安排 {calendar_year} 已发布，办理时限已重新计算："
                             + "；".join(changes_zh),
                             f"{calendar_year} published; due times recomputed: "
                             + "; ".join(changes),
                             due_time=promised.due.isoformat() if promised else "",
                             due_provisional=bool(promised and promised.provisional),
                             supplement_due_time=supplement.due.isoformat() if supplement else "")
            await self.flush()  # the path is waiting: nothing else would record it now
        finally:
            self.recomputing = False

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


    async def officer_writes(self, task: TaskRecord, kind: str, message: str, message_en: str,
                             *, actor: str) -> None:
        """The read-model writes of an officer Update: the task, then its timeline event.
        The Update answers without waiting for them: the event takes its place in the
        timeline now, and both writes are scheduled as regular activities in the workflow
        task that completes the Update (so they are as durable as the decision; the run
        waits for them before it ends). The task is in ``writing`` until its write lands
        (a decided step is taken up only then)."""
        snapshot = dataclasses.replace(task, reasons=list(task.reasons))
        ev = self.new_event(kind, message, message_en, actor=actor)
        self.update_answered = True
        self.writing[task.name] = self.writing.get(task.name, 0) + 1

        async def write() -> None:
            try:
                await workflow.execute_activity("upsert_task", snapshot,
                                                start_to_close_timeout=ACTIVITY_TIMEOUT,
                                                retry_policy=RETRY)
            finally:
                left = self.writing.pop(task.name) - 1
                if left:
                    self.writing[task.name] = left
            await workflow.execute_activity("record_event", ev,
                                            start_to_close_timeout=ACTIVITY_TIMEOUT,
                                            retry_policy=RETRY)

        self.background.append(asyncio.create_task(write()))

    async def drain_background(self) -> None:
        while self.background:
            await self.background.pop(0)

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
            result = await workflow.execute_local_activity(
                name, arg, result_type=result_type, start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=RETRY)
        else:
            result = await workflow.execute_activity(
                name, arg, result_type=result_type, start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=RETRY)
        if withdrawable:
            self.check_withdrawn()
        return result

    def take_events(self) -> list[Event]:
        """The pending timeline events, handed to the call that records them."""
        events, self.pending = self.pending, []
        return events

    def recorded(self, events: list[Event]) -> None:
        """``events`` are in the read model: Updates may read back the status they lead to."""
        for ev in events:
            if ev.status:
                self.recorded_status = ev.status

    def publish_status(self) -> None:
        """The status on the GovflowStatus search attribute (operators filter and see it
        in the Temporal UI), when it has moved since it was last set. The memo keeps what
        never changes (matter, applicant), so a status change is one history event."""
        if self.status != self.published_status:
            self.published_status = self.status
            workflow.upsert_search_attributes([STATUS_KEY.value_set(self.status)])

    async def flush(self) -> None:
        """Records the pending timeline events in one call and publishes the status: before
        every wait, so what an applicant or officer reads is never behind a waiting
        workflow."""
        events = self.take_events()
        if events:
            await self.main_activity("record_events", events)
            self.recorded(events)
        self.publish_status()

    async def event(self, kind: str, message: str, message_en: str, *, status: str = "",
                    actor: str = "system",
                    receipt: dict[str, Any] | None = None, result_certificate: str = "",
                    current_steps: list[str] | None = None, due_time: str = "",
                    overdue: bool = False, missing_materials: list[str] | None = None,
                    supplement_due_time: str = "",
                    result_certificates: list[str] | None = None,
                    due_provisional: bool = False, reasons: list[str] | None = None,
                    interested: list[str] | None = None) -> None:
        """A timeline event: recorded with the next call the path makes, or before the
        next wait (flush), in order and idempotent by its sequence id. ``message`` is in
        Simplified Chinese (the primary language), ``message_en`` the same in English."""
        ev = self.new_event(kind, message, message_en, status=status, actor=actor, receipt=receipt,
                            result_certificate=result_certificate, current_steps=current_steps,
                            due_time=due_time, overdue=overdue,
                            missing_materials=missing_materials,
                            supplement_due_time=supplement_due_time,
                            result_certificates=result_certificates,
                            due_provisional=due_provisional, reasons=reasons,
                            interested=interested)
        self.pending.append(ev)

    def new_event(self, kind: str, message: str, message_en: str, *, status: str = "",
                  actor: str = "system",
                  receipt: dict[str, Any] | None = None, result_certificate: str = "",
                  current_steps: list[str] | None = None, due_time: str = "",
                  overdue: bool = False, missing_materials: list[str] | None = None,
                  supplement_due_time: str = "",
                  result_certificates: list[str] | None = None,
                  due_provisional: bool = False, reasons: list[str] | None = None,
                  interested: list[str] | None = None) -> Event:
        """The next timeline event: its place in the sequence and its time are taken now."""
        self.seq += 1
        if status:
            self.status = status
        ev = Event(application_id=self.inp.application_id, event_id=f"{self.seq:04d}-{kind}",
                   kind=kind, message=message, time=workflow.now().isoformat(), status=status,
                   actor=actor, receipt=receipt, result_certificate=result_certificate,
                   current_steps=current_steps, due_time=due_time, overdue=overdue,
                   missing_materials=missing_materials, supplement_due_time=supplement_due_time,
                   result_certificates=result_certificates, due_provisional=due_provisional,
                   reasons=reasons, interested=interested, message_en=message_en)
        return ev
