"""Runs a command that the kernel kills when its parent dies:
``python govflow_cli/deathsig.py PARENT_PID COMMAND...``.

``govflow up`` and the bench start their parts through this instead of a ``preexec_fn``:
a preexec function runs Python in the forked child of a process whose other threads
(gRPC's among them) may hold locks at the fork, and such a child can deadlock or abort
(a bench part was seen to die with SIGABRT before it ran). Here the child is a fresh
process: it asks for PR_SET_PDEATHSIG (SIGKILL) for itself, checks that its parent is
still the one that started it, and becomes the command (the request survives exec).
Run as a script, so it imports nothing of Govflow.
"""

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def main(argv: list[str]) -> None:
    parent, command = int(argv[1]), argv[2:]
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the request was made
        os._exit(1)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv)
