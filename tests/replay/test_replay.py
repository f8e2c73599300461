"""Replay of saved histories: a workflow change that is not replay-compatible fails here.

The histories in tests/replay/histories/ were captured from the end-to-end tests
(``GOVFLOW_CAPTURE_HISTORIES=1 ./govflow.sh test tests/e2e -k sqlite``). Until the first
release they are one generation: a workflow change is made directly and the histories are
captured again. After it, a change goes through ``workflow.patched()`` (patch, deprecate,
remove) and the older histories stay beside the newer ones.
"""

from __future__ import annotations

import pathlib

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner
from temporalio.workflow import NondeterminismError

from workflows.application import ApplicationWorkflow
from workflows.models import ApplicationInput, ApplicationResult
from workflows.worker import WORKFLOWS, sandbox_runner

HISTORIES = pathlib.Path(__file__).parent / "histories"


def saved() -> list[WorkflowHistory]:
    return [WorkflowHistory.from_json(f"{p.parent.name}/{p.stem}", p.read_text())
            for p in sorted(HISTORIES.rglob("*.json"))]


def missing(folder: pathlib.Path, paths: tuple[str, ...]) -> list[str]:
    """The end-to-end tests of ``paths`` with no history saved in ``folder``."""
    names = {p.stem.rsplit("-", 1)[0] for p in folder.glob("*.json")}
    return [path for path in paths if path not in names]


def test_histories_cover_every_path() -> None:
    assert not missing(HISTORIES, (
        "instant_approval_issues_a_verifiable_certificate",
        "three_steps_then_a_certificate_for_the_enterprise",
        "rejection_delivers_reasons_and_issues_nothing",
        "supplement_then_approval_pauses_the_clock",
        "supplement_timeout_ends_the_application",
        "escalation_on_breach_marks_overdue_and_reaches_the_supervisor",
        "parallel_co_approval_needs_all_agencies",
        "parallel_any_needs_one_agency_and_cancels_the_rest",
        "withdrawal_in_review_and_during_supplement_issues_nothing",
        "failed_pledge_check_revokes_the_certificate",
        "low_rating_opens_a_follow_up_for_the_supervisor",
        "life_event_runs_bundled_matters_in_order",
        "publishing_the_missing_year_moves_provisional_due_times"))


async def test_saved_histories_replay() -> None:
    histories = saved()
    assert histories
    replayer = Replayer(workflows=list(WORKFLOWS), workflow_runner=sandbox_runner())
    async def each():  # type: ignore[no-untyped-def]
        for h in histories:
            yield h

    results = await replayer.replay_workflows(each(), raise_on_replay_failure=False)
    failures = {rid: str(err) for rid, err in results.replay_failures.items()}
    assert not failures


@workflow.defn(name="ApplicationWorkflow")
class ReorderedApplicationWorkflow(ApplicationWorkflow):
    """An incompatible change: records an extra event before anything else."""

    @workflow.run
    async def run(self, inp: ApplicationInput) -> ApplicationResult:
        await self.event("audit_started", "an extra step added without a patch")
        return await super().run(inp)


async def test_an_incompatible_change_fails_replay() -> None:
    history = next(h for h in saved() if h.workflow_id.startswith("histories/instant_approval"))
    # Unsandboxed: the variant lives in this test module, which the sandbox would re-import.
    replayer = Replayer(workflows=[ReorderedApplicationWorkflow],
                        workflow_runner=UnsandboxedWorkflowRunner())
    with pytest.raises(NondeterminismError):
        await replayer.replay_workflow(history)
