"""`govflow up` as a user runs it: starts every part, seeds, serves the demo, stops on
Ctrl-C, keeps its data for the next run, and explains a busy port; restarts a part that
dies, and leaves no part behind when it is killed or its output is closed."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[2]


def free_ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def env_for(data: pathlib.Path) -> dict[str, str]:
    temporal, ui, ident, certs, matters, worker, gateway = free_ports(7)
    return {**os.environ, "GOVFLOW_DATA_DIR": str(data), "GOVFLOW_WORKER_HEALTH_PORT": str(worker),
            "GOVFLOW_GATEWAY_PORT": str(gateway),
            "GOVFLOW_TEMPORAL_ADDRESS": f"127.0.0.1:{temporal}",
            "GOVFLOW_TEMPORAL_UI_PORT": str(ui), "GOVFLOW_IDENTITY_PORT": str(ident),
            "GOVFLOW_CERTIFICATES_PORT": str(certs), "GOVFLOW_MATTERS_PORT": str(matters),
            "PYTHONPATH": str(ROOT)}


def start_up(env: dict[str, str], *args: str) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen([sys.executable, "-m", "govflow_cli", "up", *args], env=env,
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    deadline = time.monotonic() + 180
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if "Ctrl-C stops everything" in line or time.monotonic() > deadline:
            break
    assert any("Govflow is up." in x for x in lines), "".join(lines)
    return proc, lines


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    return out


def test_up_demo_ctrl_c_and_second_run(tmp_path: pathlib.Path) -> None:
    env = env_for(tmp_path / "data")
    proc, lines = start_up(env)
    try:
        seeded = next(x for x in lines if "demo data" in x)
        assert "matters/senior-citizen-card@v1" in seeded
        demo = subprocess.run([sys.executable, "-m", "govflow_cli", "demo"], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
        assert demo.returncode == 0, demo.stdout + demo.stderr
        assert "Status: COMPLETED" in demo.stdout
        assert "instant_approved" in demo.stdout
        assert ": valid" in demo.stdout
        # The worker answers the standard health check, as an orchestrator would ask it.
        worker = f"127.0.0.1:{env['GOVFLOW_WORKER_HEALTH_PORT']}"
        assert any(f"health {worker}" in x for x in lines), "".join(lines)
        probe = subprocess.run([sys.executable, "-m", "govflow.healthcheck", worker], env=env,
                               cwd=ROOT, capture_output=True, text=True, timeout=30)
        assert probe.returncode == 0 and "SERVING" in probe.stdout, probe.stdout + probe.stderr
        # The HTTP gateway is printed with the others and serves Connect JSON.
        gateway = f"http://127.0.0.1:{env['GOVFLOW_GATEWAY_PORT']}"
        assert any(gateway in x and "gateway" in x for x in lines), "".join(lines)
        req = urllib.request.Request(
            gateway + "/govflow.matters.v1.MattersService/ListMatters", data=b"{}",
            headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert any(m["name"] == "matters/senior-citizen-card"
                       for m in json.loads(resp.read())["matters"])
    finally:
        out = stop(proc)
    assert proc.returncode == 0, out
    for part in ("gateway", "worker", "matters", "certificates", "identity", "temporal"):
        assert f"stopped {part}" in out
    assert (tmp_path / "data" / "temporal.sqlite3").exists()

    # Second run on the same data: nothing lost, seeding changes nothing.
    proc, lines = start_up(env)
    try:
        seeded = next(x for x in lines if "demo data" in x)
        assert "matters/senior-citizen-card@v1" in seeded  # no new version
        list_cmd = [str(pathlib.Path(sys.executable).parent / "temporal"), "workflow", "count",
                    "--address", env["GOVFLOW_TEMPORAL_ADDRESS"],
                    "--query", 'GovflowMatter = "senior-citizen-card"']
        counted = subprocess.run(list_cmd, capture_output=True, text=True, timeout=30)
        assert counted.returncode == 0, counted.stderr
        assert "Total: 1" in counted.stdout, counted.stdout
        # `govflow seed` (the compose demo profile's one-shot) against the running services:
        # idempotent too.
        seeded_again = subprocess.run([sys.executable, "-m", "govflow_cli", "seed"], env=env,
                                      cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert seeded_again.returncode == 0, seeded_again.stdout + seeded_again.stderr
        assert "matters/senior-citizen-card@v1" in seeded_again.stdout
    finally:
        stop(proc)


def test_busy_port_is_explained(tmp_path: pathlib.Path) -> None:
    env = env_for(tmp_path / "data")
    holder = socket.socket()
    holder.bind(("127.0.0.1", int(env["GOVFLOW_IDENTITY_PORT"])))
    holder.listen()
    try:
        result = subprocess.run([sys.executable, "-m", "govflow_cli", "up"], env=env, cwd=ROOT,
                                capture_output=True, text=True, timeout=60)
    finally:
        holder.close()
    assert result.returncode == 2
    assert f"identity port {env['GOVFLOW_IDENTITY_PORT']}" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def children(pid: int) -> dict[int, str]:
    """The processes whose parent is ``pid``, with their command lines (from /proc)."""
    found = {}
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            found[int(entry.name)] = cmdline
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` still runs: a zombie has exited (whoever adopted it reaps it)."""
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def left_behind(pids: set[int], timeout: float) -> set[int]:
    deadline = time.monotonic() + timeout
    while (left := {p for p in pids if alive(p)}) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


class Reader:
    """up's output, read on a thread after start_up has read up to its banner."""

    def __init__(self, proc: subprocess.Popen[str], lines: list[str]) -> None:
        self.lines = lines
        assert proc.stdout is not None
        self.thread = threading.Thread(target=self._read, args=(proc.stdout,), daemon=True)
        self.thread.start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.lines.append(line)

    def wait_for(self, text: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if found := next((x for x in self.lines if text in x), None):
                return found
            time.sleep(0.1)
        raise AssertionError(f"no {text!r} in:\n" + "".join(self.lines))


def test_up_restarts_a_killed_worker_and_dies_with_its_parts(tmp_path: pathlib.Path) -> None:
    env = {**env_for(tmp_path / "data"), "GOVFLOW_GATEWAY_PORT": "0"}
    proc, lines = start_up(env)
    parts: dict[int, str] = {}
    try:
        output = Reader(proc, lines)
        parts = children(proc.pid)
        assert len(parts) == 5, parts  # Temporal, three services, the worker
        worker = next(pid for pid, cmd in parts.items() if "workflows.worker" in cmd)
        os.kill(worker, signal.SIGKILL)
        output.wait_for("worker exited with -9; restarting in 1 s", 10)
        output.wait_for("worker restarted", 10)
        health = [sys.executable, "-m", "govflow.healthcheck",
                  f"127.0.0.1:{env['GOVFLOW_WORKER_HEALTH_PORT']}"]
        deadline = time.monotonic() + 60
        while subprocess.run(health, env=env, cwd=ROOT, capture_output=True,
                             timeout=30).returncode != 0:
            assert time.monotonic() < deadline, "the restarted worker never served"
            time.sleep(0.3)
        now = children(proc.pid)
        assert set(parts) - {worker} <= set(now), (parts, now)  # nothing else restarted
        assert worker not in now and len(now) == 5, now
        parts = now
        # The stack still serves: the demo's application goes through the new worker.
        demo = subprocess.run([sys.executable, "-m", "govflow_cli", "demo"], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
        assert demo.returncode == 0, demo.stdout + demo.stderr
        assert "Status: COMPLETED" in demo.stdout

        # up killed outright (no chance to stop anything): every part goes with it.
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        assert not left_behind(set(parts), 10)
    finally:
        if proc.poll() is None:
            stop(proc)
        for pid in left_behind(set(parts), 0):
            os.kill(pid, signal.SIGKILL)


def test_up_stops_everything_when_its_output_is_closed(tmp_path: pathlib.Path) -> None:
    env = {**env_for(tmp_path / "data"), "GOVFLOW_GATEWAY_PORT": "0"}
    proc, _ = start_up(env, "--no-seed")
    parts = children(proc.pid)
    try:
        assert len(parts) == 5, parts
        assert proc.stdout is not None
        proc.stdout.close()  # as when the terminal or the program reading up goes away
        assert proc.wait(timeout=60) == 0
        # Stopped in order, not killed: the worker logged its own stop.
        assert not left_behind(set(parts), 0)
        assert "worker.stopped" in (tmp_path / "data" / "logs" / "worker.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in left_behind(set(parts), 0):
            os.kill(pid, signal.SIGKILL)
