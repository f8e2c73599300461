"""`govflow up` as a user runs it: starts every part, seeds, serves the demo, stops on
Ctrl-C, keeps its data for the next run, and explains a busy port."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
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


def start_up(env: dict[str, str]) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen([sys.executable, "-m", "govflow.cli", "up"], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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
        demo = subprocess.run([sys.executable, "-m", "govflow.cli", "demo"], env=env, cwd=ROOT,
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
        seeded_again = subprocess.run([sys.executable, "-m", "govflow.cli", "seed"], env=env,
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
        result = subprocess.run([sys.executable, "-m", "govflow.cli", "up"], env=env, cwd=ROOT,
                                capture_output=True, text=True, timeout=60)
    finally:
        holder.close()
    assert result.returncode == 2
    assert f"identity port {env['GOVFLOW_IDENTITY_PORT']}" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
