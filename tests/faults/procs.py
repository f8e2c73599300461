"""The embedded stack as separate processes — as `govflow up` starts it (Temporal dev server
on a WAL file, the three services, the worker) — on free ports in a temporary data
directory, so that a test can SIGKILL any part and start it again on the same data."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import uuid

import grpc
from temporalio.client import Client

from govflow import temporal_data
from govflow.settings import Settings
from govflow_cli.cli import HEALTH_NAMES, temporal_command, wait_healthy, wait_temporal
from tests.stack import SERVICES, Stack

ROOT = pathlib.Path(__file__).resolve().parents[2]
PARTS = ("temporal", *SERVICES, "worker")


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


class ProcStack:
    """Child processes of one embedded stack; each part can be killed and restarted."""

    def __init__(self, data_dir: pathlib.Path, *, database_urls: dict[str, str] | None = None) -> None:
        temporal, ui, ident, certs, matters, worker_health = free_ports(6)
        urls = database_urls or {}
        self.settings = Settings(
            data_dir=data_dir, identity_port=ident, certificates_port=certs, matters_port=matters,
            identity_addr=f"127.0.0.1:{ident}", certificates_addr=f"127.0.0.1:{certs}",
            matters_addr=f"127.0.0.1:{matters}", temporal_address=f"127.0.0.1:{temporal}",
            temporal_ui_port=ui, temporal_task_queue=f"tq-{uuid.uuid4().hex[:8]}",
            worker_health_port=worker_health,
            admin_client_secret="admin-" + uuid.uuid4().hex,
            worker_client_secret="worker-" + uuid.uuid4().hex,
            identity_database_url=urls.get("identity", ""),
            certificates_database_url=urls.get("certificates", ""),
            matters_database_url=urls.get("matters", ""),
            health_interval_seconds=0.5, log_json=True)
        self.log_dir = data_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.starts: dict[str, int] = {}
        self.kills: list[str] = []  # every SIGKILL sent, for the figures
        self.client: Client | None = None
        self.stack: Stack | None = None

    # ------------------------------------------------------------ processes
    def log_path(self, name: str) -> pathlib.Path:
        return self.log_dir / f"{name}-{self.starts.get(name, 0)}.log"

    def spawn(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> None:
        self.starts[name] = self.starts.get(name, 0) + 1
        full_env = {**os.environ, **self.settings.as_env(), "PYTHONPATH": str(ROOT), **(env or {})}
        out = open(self.log_path(name), "ab")  # noqa: SIM115 - lives as long as the child
        self.procs[name] = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                            env=full_env, cwd=ROOT, start_new_session=True)

    def alive(self, name: str) -> bool:
        proc = self.procs.get(name)
        return proc is not None and proc.poll() is None

    def kill(self, name: str) -> None:
        """SIGKILL: no clean-up, no goodbye — as a crash or an OOM kill."""
        proc = self.procs[name]
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            self.kills.append(name)
        proc.wait(timeout=30)

    async def start_temporal(self) -> None:
        self.spawn("temporal", temporal_command(
            self.settings, db_file=self.settings.data_dir / "temporal.sqlite3"))
        await wait_temporal(self.settings.temporal_address, 90)

    async def start_service(self, name: str, env: dict[str, str] | None = None,
                            wait: bool = True) -> None:
        self.spawn(name, [sys.executable, "-m", f"services.{name}.server"], env)
        if wait:
            await wait_healthy(getattr(self.settings, f"{name}_addr"), 60, HEALTH_NAMES[name])

    async def start_worker(self, env: dict[str, str] | None = None) -> None:
        self.spawn("worker", [sys.executable, "-m", "workflows.worker"], env)
        await self.wait_log("worker", "worker.started", 1, timeout=60)

    async def start(self, *, seed: bool = True) -> Stack:
        await self.start_temporal()
        for name in SERVICES:
            await self.start_service(name)
        await self.start_worker()
        self.client = await temporal_data.connect(self.settings.temporal_address,
                                                  self.settings.temporal_namespace)
        channels = {n: grpc.aio.insecure_channel(getattr(self.settings, f"{n}_addr"))
                    for n in SERVICES}
        self.stack = Stack(self.settings, self.client, channels, {}, self.settings.temporal_task_queue)
        if seed:
            from govflow_cli.demo_data import seed as run_seed

            self.stack.seeded = await run_seed(
                channels["identity"], channels["certificates"], channels["matters"],
                self.settings.admin_client_id, self.settings.admin_client_secret)
        return self.stack

    async def ensure_running(self) -> None:
        """Restarts whatever a failed test left dead (and a clean worker)."""
        if not self.alive("temporal"):
            await self.start_temporal()
        for name in SERVICES:
            if not self.alive(name):
                await self.start_service(name)
        if not self.alive("worker"):
            await self.start_worker()

    async def close(self) -> None:
        if self.stack is not None:
            for ch in self.stack.channels.values():
                await ch.close()
        for name in reversed(PARTS):
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    # ------------------------------------------------------------ logs
    def log_lines(self, name: str, marker: str) -> list[dict[str, object]]:
        """The JSON log lines of the part's current process whose event is ``marker``."""
        out: list[dict[str, object]] = []
        path = self.log_path(name)
        if not path.exists():
            return out
        for line in path.read_text(errors="replace").splitlines():
            if marker not in line:
                continue
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"event": marker, "raw": line})
        return out

    async def wait_log(self, name: str, marker: str, count: int, timeout: float) -> list[dict[str, object]]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            lines = self.log_lines(name, marker)
            if len(lines) >= count:
                return lines
            if not self.alive(name):
                raise AssertionError(f"{name} exited: {self.log_path(name).read_text()[-3000:]}")
            if loop.time() > deadline:
                raise AssertionError(f"{name}: {len(lines)} of {count} '{marker}' lines "
                                     f"in {timeout:.0f}s")
            await asyncio.sleep(0.1)


@dataclasses.dataclass
class Figures:
    """What a fault test did, for the table in docs/operations.md (printed with -s)."""

    fault: str
    injected: int = 0
    applications: int = 0
    completed: int = 0
    duplicates: int = 0

    def report(self) -> str:
        return (f"FAULTS {self.fault}: injected {self.injected}, applications {self.applications}, "
                f"completed {self.completed}, duplicates {self.duplicates}")
