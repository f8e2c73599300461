"""An officer step of an application: its tasks, one per agency, and its outcome.

A step opens its tasks with the step's time limit, reminds a day before the due time and
escalates to the agency's supervisor at it (the tasks marked overdue, the application's
GovflowOverdue search attribute set). Officers act on the tasks through the workflow's
Updates; the step's outcome follows from the decisions and the step's quorum.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.models import StepSpec, TaskRecord
    from workflows.outcomes import OPEN_TASK, Refused
    from workflows.search_keys import OVERDUE_KEY
    from workflows.timeline_wording import ROLE_ZH, named, zh_list, zh_time

from workflows.clocks import provisional_note

if TYPE_CHECKING:
    from workflows.application import ApplicationWorkflow


async def run_step(wf: ApplicationWorkflow, step: StepSpec, round_no: int) -> tuple[str, list[str]]:
    """Opens the step's tasks and waits for its outcome: APPROVE or SUPPLEMENT with the
    missing materials (a rejection raises Refused)."""
    inp = wf.inp
    now = workflow.now()
    clock = await wf.clocks.start("step", now, step.time_limit_days, step.display_name)
    due = clock.due
    names = []
    suffix = "" if round_no == 1 else f"-r{round_no}"
    for agency in step.agencies:
        name = (f"tasks/{inp.application_id}-{step.code}-"
                f"{agency.removeprefix('agencies/')}{suffix}")
        wf.tasks[name] = TaskRecord(
            name=name, application_id=inp.application_id, matter=f"matters/{inp.matter.code}",
            step=step.code, display_name=step.display_name, role=step.role, agency=agency,
            status="OPEN", due_time=due.isoformat(), create_time=now.isoformat(),
            due_provisional=clock.provisional)
        names.append(name)
    wf.step_tasks = names
    note_zh, note_en = provisional_note(clock, inline=True)
    wf.timeline.add("step_opened",
                    f"{step.display_name}：待 {zh_list(step.agencies)} "
                    f"{named(ROLE_ZH, step.role)}审核（办理时限 {zh_time(due)}{note_zh}）",
                    f"{step.name_en}: waiting for {step.role} at "
                    f"{', '.join(step.agencies)} (due {due.isoformat()}{note_en})",
                    current_steps=[step.code])
    # The timeline first, then the tasks: an officer who finds a task in the inbox
    # finds the application's timeline and due time up to its opening.
    await wf.flush()
    for name in names:
        await wf.write_task(wf.tasks[name])

    def decided() -> bool:
        return outcome(wf.tasks, step, names) is not None

    def settled() -> bool:
        # A decided step is taken up once the decided task's own write has landed.
        return not any(n in wf.writing for n in names) and decided()

    # A timer that fires while a decided task's write is still landing (the matters
    # service down, say) finds the step decided: no reminder, no escalation. The
    # timers follow the clock when a published calendar moves its due time.
    if not await wf.wait_until(settled, lambda: max(clock.due - dt.timedelta(days=1), now)) \
            and not decided():
        wf.timeline.add("reminder", f"{step.display_name} 将于 {zh_time(clock.due)} 到期",
                        f"{step.name_en} is due at {clock.due.isoformat()}")
    if not await wf.wait_until(settled, lambda: clock.due):
        if not decided():
            await escalate(wf, step, names)
        await wf.wait(settled)
    wf.clocks.stop("step")
    wf.step_tasks = []
    result = outcome(wf.tasks, step, names)
    await wf.cancel_open_tasks()  # with quorum "any", the others are not needed
    if result == "REJECT":
        given = [r for n in names for r in wf.tasks[n].reasons]
        raise Refused(given or ["rejected"], given or ["不予批准"])
    if result == "SUPPLEMENT":
        missing = sorted({r for n in names for r in wf.tasks[n].reasons
                          if wf.tasks[n].decision == "REQUEST_SUPPLEMENT"})
        return "SUPPLEMENT", missing
    wf.timeline.add("step_approved", f"{step.display_name}：已通过",
                    f"{step.name_en} approved")
    return "APPROVE", []


def outcome(tasks: dict[str, TaskRecord], step: StepSpec, names: list[str]) -> str | None:
    """REJECT, SUPPLEMENT or APPROVE once the decisions settle the step; None until then."""
    decisions = [tasks[n].decision for n in names]
    if "REJECT" in decisions:
        return "REJECT"
    if "REQUEST_SUPPLEMENT" in decisions:
        return "SUPPLEMENT"
    approvals = decisions.count("APPROVE")
    if (step.quorum == "any" and approvals >= 1) or approvals == len(names):
        return "APPROVE"
    return None


async def escalate(wf: ApplicationWorkflow, step: StepSpec, names: list[str]) -> None:
    overdue = [wf.tasks[n] for n in names if wf.tasks[n].status in OPEN_TASK]
    for t in overdue:
        t.overdue = True
    workflow.upsert_search_attributes([OVERDUE_KEY.value_set(True)])
    wf.timeline.add("escalated", f"{step.display_name} 已超过办理时限，已提级至本部门负责人",
                    f"{step.name_en} passed its time limit; escalated to "
                    "the agency's supervisor", overdue=True)
    # As when a step opens: the application overdue first, then its tasks.
    await wf.flush()
    for t in overdue:
        await wf.write_task(t)
