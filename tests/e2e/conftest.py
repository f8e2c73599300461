"""With GOVFLOW_CAPTURE_HISTORIES=1, every end-to-end test saves the histories of the
workflows it ran into tests/replay/histories/, for the replay tests (SQLite run only).
Any other value names a subfolder: a new generation of histories, captured after a patched
workflow change, goes beside the older ones (both must keep replaying)."""

from __future__ import annotations

import datetime as dt
import os
import pathlib
import re
from collections.abc import AsyncIterator

import pytest

HISTORIES = pathlib.Path(__file__).resolve().parents[1] / "replay" / "histories"


@pytest.fixture(autouse=True)
async def capture_histories(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    capture = os.environ.get("GOVFLOW_CAPTURE_HISTORIES", "")
    wanted = capture not in ("", "0") and "stack" in request.fixturenames
    started = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    yield
    if not wanted or "[sqlite]" not in request.node.name:
        return
    stack = request.getfixturevalue("stack")
    folder = HISTORIES if capture == "1" else HISTORIES / re.sub(r"[^\w.-]+", "_", capture)
    folder.mkdir(parents=True, exist_ok=True)
    test = re.sub(r"\W+", "_", request.node.name.removeprefix("test_").replace("[sqlite]", ""))
    query = f'StartTime >= "{started.isoformat().replace("+00:00", "Z")}"'
    count = 0
    async for wf in stack.client.list_workflows(query):
        history = await stack.client.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history()
        count += 1
        kind = "followup" if wf.id.startswith("followup-") else "app"
        (folder / f"{test}-{kind}{count}.json").write_text(history.to_json())
