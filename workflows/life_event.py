"""A life event (一件事): one application that runs its bundled matters as child
application workflows, each started when the matters it comes after are done, and ends
with every result certificate or with the first that was not granted."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows import search_keys
    from workflows.models import ApplicationInput, ApplicationResult, ChildApplication, workflow_id
    from workflows.outcomes import Refused, Withdrawn
    from workflows.timeline_wording import STATUS_ZH, named, zh_list

from workflows.clocks import due_times

if TYPE_CHECKING:
    from workflows.application import ApplicationWorkflow


async def carry_bundle(wf: ApplicationWorkflow) -> ApplicationResult:
    """Runs the bundled matters as child workflows, in order where one needs another."""
    done: dict[str, ApplicationResult] = {}
    pending = list(wf.inp.children)
    bundled = [c.matter.display_name for c in pending]
    wf.timeline.add("life_event_started", "一件事联办：" + zh_list(bundled),
                    "Bundled: " + ", ".join(c.matter.name_en for c in pending), status="IN_REVIEW",
                    current_steps=[c.matter.code for c in pending])
    while pending:
        ready = [c for c in pending if all(a in done for a in c.after)]
        handles = [await start_child(wf, c) for c in ready]

        def finished(handles: list[Any] = handles) -> bool:
            return all(h.done() for h in handles)

        try:
            await wf.wait(finished)
        except Withdrawn:
            for h in handles:
                if not h.done():
                    await h.signal("withdraw", wf.withdraw_reason or "life event withdrawn")
            await workflow.wait_condition(finished)
            raise
        results = {child.matter.code: h.result() for child, h in zip(ready, handles, strict=True)}
        for child in ready:
            res = results[child.matter.code]
            wf.timeline.add("bundle_item_finished",
                            f"{child.matter.display_name}：{named(STATUS_ZH, res.status)}",
                            f"{child.matter.name_en}: {res.status.lower()}",
                            result_certificates=[r.result_certificate
                                                 for r in [*done.values(), res]
                                                 if r.result_certificate])
            if res.status != "COMPLETED":
                raise Refused([f"{child.matter.name_en}: " + "; ".join(res.reasons)],
                              [f"{child.matter.display_name}：{named(STATUS_ZH, res.status)}"
                               + ("（" + "；".join(res.reasons) + "）" if res.reasons else "")])
            done[child.matter.code] = res
        pending = [c for c in pending if c not in ready]
    certs = [r.result_certificate for r in done.values()]
    wf.timeline.add("life_event_completed", f"全部 {len(certs)} 项结果证照已签发",
                    f"All {len(certs)} results issued",
                    status="COMPLETED", current_steps=[], result_certificates=certs)
    return ApplicationResult(status="COMPLETED", result_certificates=certs)


async def start_child(wf: ApplicationWorkflow, child: ChildApplication
                      ) -> workflow.ChildWorkflowHandle[Any, Any]:
    # A bundled matter's promised limit runs from when its turn comes.
    inp = wf.inp
    (due,) = await due_times(child.matter.calendar,
                             [(workflow.now(), child.matter.promised_limit_days)])
    child_inp = ApplicationInput(
        application_id=child.application_id, matter=child.matter, applicant=inp.applicant,
        submitted_by=inp.submitted_by, request_id=f"{inp.request_id}/{child.matter.code}",
        submitted_at=inp.submitted_at, pledges=inp.pledges, parent_id=inp.application_id,
        due_time=due.time, due_provisional=due.provisional)
    return await workflow.start_child_workflow(
        type(wf).run, child_inp, id=workflow_id(child.application_id),
        search_attributes=search_keys.at_start(child_inp),
        memo={"matter": child.matter.display_name, "applicant": inp.applicant,
              "parent": f"applications/{inp.application_id}"})
