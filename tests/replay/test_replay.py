"""Replay of saved histories: a workflow change that is not replay-compatible fails here.

The histories in tests/replay/histories/ were captured from the end-to-end tests
(``GOVFLOW_CAPTURE_HISTORIES=1 ./govflow.sh test tests/e2e -k sqlite``). Until the first
release they are one generation: a workflow change is made directly and the histories are
captured again. After it, a change goes through ``workflow.patched()`` (patch, deprecate,
remove) and the older histories stay beside the newer ones.
"""

from __future__ import annotations

import datetime as dt
import gzip
import pathlib

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner
from temporalio.workflow import NondeterminismError

from tests.replay.paths import PATHS
from workflows.application import ApplicationWorkflow
from workflows.models import ApplicationInput, ApplicationResult
from workflows.worker import WORKFLOWS, sandbox_runner

HISTORIES = pathlib.Path(__file__).parent / "histories"


def _name(p: pathlib.Path) -> str:
    return p.name.removesuffix(".json.gz")


def saved() -> list[WorkflowHistory]:
    return [WorkflowHistory.from_json(f"{p.parent.name}/{_name(p)}",
                                      gzip.decompress(p.read_bytes()).decode())
            for p in sorted(HISTORIES.rglob("*.json.gz"))]


def missing(folder: pathlib.Path, paths: tuple[str, ...]) -> list[str]:
    """The end-to-end tests of ``paths`` with no history saved in ``folder``."""
    names = {_name(p).rsplit("-", 1)[0] for p in folder.glob("*.json.gz")}
    return [path for path in paths if path not in names]


def test_histories_cover_every_path() -> None:
    assert not missing(HISTORIES, PATHS)
    # One generation, one test per path: nothing else is kept.
    assert {_name(p).rsplit("-", 1)[0] for p in HISTORIES.rglob("*.json.gz")} == set(PATHS)


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
    """An incompatible change: waits a second before anything else (a timer the saved
    histories never started)."""

    @workflow.run
    async def run(self, inp: ApplicationInput) -> ApplicationResult:
        await workflow.sleep(dt.timedelta(seconds=1))
        return await super().run(inp)


async def test_an_incompatible_change_fails_replay() -> None:
    history = next(h for h in saved() if h.workflow_id.startswith("histories/instant_approval"))
    # Unsandboxed: the variant lives in this test module, which the sandbox would re-import.
    replayer = Replayer(workflows=[ReorderedApplicationWorkflow],
                        workflow_runner=UnsandboxedWorkflowRunner())
    with pytest.raises(NondeterminismError):
        await replayer.replay_workflow(history)
