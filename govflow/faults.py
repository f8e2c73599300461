"""Test-only fault hooks, inert unless a process's settings name them (see tests/faults/).

``crash_point(name)`` ends the process on the spot — no cleanup, no response sent, like a
SIGKILL — when ``GOVFLOW_FAULT_CRASH_POINTS`` names it. Only the processes' ``main()``
arms the hooks (``configure``), so servers created in-process by the tests never crash.
"""

from __future__ import annotations

import os
import sys

from govflow.settings import Settings

_armed: frozenset[str] = frozenset()

# The points the code offers (documented in docs/operations.md, "Faults and recovery").
CRASH_POINTS = (
    "matters.submit.after_insert",  # the application row is committed, its workflow not started
    "certificates.issue.after_commit",  # the certificate is committed, the answer not sent
)


def names(value: str) -> frozenset[str]:
    return frozenset(n.strip() for n in value.split(",") if n.strip())


def configure(settings: Settings) -> None:
    """Arms the crash points the settings name (called from a process's main only)."""
    global _armed
    _armed = names(settings.fault_crash_points)
    unknown = _armed - set(CRASH_POINTS)
    if unknown:
        raise SystemExit(f"govflow: unknown fault crash point(s): {', '.join(sorted(unknown))}")


def crash_point(name: str) -> None:
    """Exits the process at once if ``name`` is armed."""
    if name in _armed:
        print(f"govflow fault: crashing at {name}", file=sys.stderr, flush=True)
        os._exit(137)
