"""The code passes the project's lint and type checks (configured in pyproject.toml):
ruff over everything hand-written, mypy --strict over the runtime packages."""

from __future__ import annotations

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(sys.executable).parent


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          check=False)


def test_ruff_finds_nothing() -> None:
    done = run(str(BIN / "ruff"), "check", "--no-cache", ".")
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]


def test_mypy_strict_finds_nothing() -> None:
    done = run(str(BIN / "mypy"), "--no-incremental")
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
