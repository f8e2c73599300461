"""The child processes of ``govflow up`` (started in order, restarted when one dies,
stopped in reverse), and up's own output, whose reader can go away.

A part that exits on its own is started again after a pause that doubles from 1 s up to
30 s while it keeps failing, and is back to 1 s once it has stayed up for a minute. On
Linux the kernel kills every part when up itself dies (PR_SET_PDEATHSIG), so a SIGKILL of
up leaves nothing behind; an ordinary stop still stops them in order, with SIGTERM.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

from govflow.settings import Settings

ROOT = pathlib.Path(__file__).resolve().parent.parent

RESTART_FIRST_SECONDS = 1.0
RESTART_MAX_SECONDS = 30.0
# A part up this long counts as well again: its next exit is restarted after 1 s.
STABLE_SECONDS = 60.0

def _print(text: str, *, err: bool = False) -> None:
    print(text, file=sys.stderr if err else sys.stdout, flush=True)


def _die_with_parent(cmd: list[str]) -> list[str]:
    """``cmd`` started so that the kernel SIGKILLs it when this process dies (see
    govflow_cli/deathsig.py: a fresh process asks for it, no ``preexec_fn``). SIGKILL rather
    than SIGTERM: it is for when up could not stop the parts itself (up was killed), and a
    part slow to drain must not stay behind; every part survives a crash (SQLite WAL,
    Temporal retries, idempotent activities). Only from the main thread: the kernel's
    "parent" is the thread that forked, and a pool thread's exit would kill the child."""
    if not sys.platform.startswith("linux") or \
            threading.current_thread() is not threading.main_thread():
        return cmd
    return [sys.executable, str(ROOT / "govflow_cli" / "deathsig.py"), str(os.getpid()), *cmd]


@dataclasses.dataclass
class Part:
    name: str
    cmd: list[str]
    proc: subprocess.Popen[bytes]
    started: float
    # The pause before the next restart.
    delay: float = RESTART_FIRST_SECONDS
    # While the part is down: when it starts again.
    restart_at: float | None = None


class Stack:
    """The child processes of ``govflow up``, started in order and stopped in reverse;
    ``supervise()`` restarts those that exit. Each writes to ``<data_dir>/logs/<name>.log``."""

    def __init__(self, settings: Settings, *, say: Callable[..., None] = _print) -> None:
        self.settings = settings
        self.parts: list[Part] = []
        self.log_dir = settings.data_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.say = say

    @property
    def procs(self) -> list[tuple[str, subprocess.Popen[bytes]]]:
        return [(part.name, part.proc) for part in self.parts]

    def spawn(self, name: str, cmd: list[str]) -> None:
        self.parts.append(Part(name, cmd, self._start(name, cmd), time.monotonic()))

    def _start(self, name: str, cmd: list[str]) -> subprocess.Popen[bytes]:
        env = {**os.environ, **self.settings.as_env(), "GOVFLOW_LOG_JSON": "true",
               "PYTHONPATH": str(ROOT)}
        # The child keeps its own copy of the log file's descriptor.
        with open(self.log_dir / f"{name}.log", "ab") as out:
            # A session of its own: Ctrl-C reaches up alone, which stops the parts in order.
            return subprocess.Popen(_die_with_parent(cmd), stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, env=env, cwd=ROOT,
                                    start_new_session=True)

    def crashed(self) -> str | None:
        for name, proc in self.procs:
            if proc.poll() is not None:
                return f"{name} exited with code {proc.returncode} (see {self.log_dir / name}.log)"
        return None

    def supervise(self) -> None:
        """Restarts the parts that have exited, each after its pause; called every fraction
        of a second while the stack runs."""
        now = time.monotonic()
        for part in self.parts:
            if part.restart_at is None:
                code = part.proc.poll()
                if code is None:
                    continue
                if now - part.started >= STABLE_SECONDS:
                    part.delay = RESTART_FIRST_SECONDS
                part.restart_at = now + part.delay
                self.say(f"govflow: {part.name} exited with {code}; restarting in "
                         f"{part.delay:g} s (see {self.log_dir / part.name}.log)", err=True)
                part.delay = min(part.delay * 2, RESTART_MAX_SECONDS)
            elif now >= part.restart_at:
                part.proc = self._start(part.name, part.cmd)
                part.started, part.restart_at = now, None
                self.say(f"govflow: {part.name} restarted (pid {part.proc.pid})", err=True)

    def stop(self) -> None:
        for part in reversed(self.parts):
            proc = part.proc
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            self.say(f"  stopped {part.name}")


class Output:
    """up's standard output and error. Their reader can go away: the program reading a pipe
    exits (a write then fails with EPIPE, and polling the descriptor reports POLLERR), or
    a terminal is closed (POLLHUP, with a SIGHUP the caller handles). ``on_gone`` is then
    called, once, and whatever follows is written to /dev/null."""

    def __init__(self, on_gone: Callable[[], None]) -> None:
        self.on_gone = on_gone
        self.gone = False

    def say(self, text: str, *, err: bool = False) -> None:
        stream = sys.stderr if err else sys.stdout
        try:
            print(text, file=stream, flush=True)
        except OSError:  # EPIPE from a closed pipe, EIO from a closed terminal
            self._lost(stream)

    def check(self) -> None:
        """Notices a reader gone while nothing is written; call it now and then."""
        poller = select.poll()
        streams: dict[int, TextIO] = {}
        for stream in (sys.stdout, sys.stderr):
            try:
                fd = stream.fileno()
            except (AttributeError, OSError, ValueError):
                continue
            streams[fd] = stream
            poller.register(fd, 0)  # POLLERR and POLLHUP are reported unasked
        for fd, events in poller.poll(0):
            if events & (select.POLLERR | select.POLLHUP):
                self._lost(streams[fd])

    def _lost(self, stream: TextIO) -> None:
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stream.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass
        if not self.gone:
            self.gone = True
            self.on_gone()
