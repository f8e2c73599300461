"""govflow up's supervisor on real child processes: a part that keeps dying is restarted
after 1, 2, 4 ... s; one that had stayed up a while is restarted after 1 s again."""

from __future__ import annotations

import pathlib
import re
import sys
import time

import pytest

from govflow.settings import Settings
from govflow_cli import supervisor


def pauses(said: list[str], name: str) -> list[float]:
    return [float(m.group(1)) for x in said
            if (m := re.search(rf"^govflow: {name} exited with \d+; restarting in (\S+) s", x))]


def run_until(stack: supervisor.Stack, said: list[str], name: str, count: int) -> None:
    deadline = time.monotonic() + 20
    while len(pauses(said, name)) < count:
        assert time.monotonic() < deadline, said
        stack.supervise()
        time.sleep(0.05)


def test_restarts_back_off_and_reset(tmp_path: pathlib.Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    said: list[str] = []
    stack = supervisor.Stack(Settings(data_dir=tmp_path),
                             say=lambda text, err=False: said.append(text))
    try:
        stack.spawn("crasher", [sys.executable, "-c", "raise SystemExit(3)"])
        run_until(stack, said, "crasher", 3)
        assert pauses(said, "crasher") == [1, 2, 4]
        assert sum(bool(re.fullmatch(r"govflow: crasher restarted \(pid \d+\)", x))
                   for x in said) == 2

        # Up longer than STABLE_SECONDS before each exit: every restart waits 1 s again.
        monkeypatch.setattr(supervisor, "STABLE_SECONDS", 0.3)
        stack.spawn("sleeper", [sys.executable, "-c",
                                "import time; time.sleep(0.5); raise SystemExit(4)"])
        run_until(stack, said, "sleeper", 3)
        assert pauses(said, "sleeper") == [1, 1, 1]
    finally:
        stack.stop()
    assert said[-2:] == ["  stopped sleeper", "  stopped crasher"]
