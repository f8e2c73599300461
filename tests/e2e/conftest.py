"""With GOVFLOW_CAPTURE_HISTORIES=1, the end-to-end test of each workflow path
(tests/replay/paths.py) saves the histories of the workflows it ran, gzipped, into
tests/replay/histories/, for the replay tests (SQLite run only).
Any other value names a subfolder: a new generation of histories, captured after a patched
workflow change, goes beside the older ones (both must keep replaying)."""

from __future__ import annotations

import datetime as dt
import gzip
import os
import pathlib
import re
from collections.abc import AsyncIterator

import pytest

from tests.replay.paths import PATHS

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
    if test not in PATHS:
        return
    query = f'StartTime >= "{started.isoformat().replace("+00:00", "Z")}"'
    count = 0
    async for wf in stack.client.list_workflows(query):
        history = await stack.client.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history()
        count += 1
        kind = "followup" if wf.id.startswith("followup-") else "app"
        (folder / f"{test}-{kind}{count}.json.gz").write_bytes(
            gzip.compress(history.to_json().encode(), mtime=0))
