"""Starts and stops the stack a benchmark runs against, with the helpers of ``govflow up``:
a Temporal dev server in one of three storage modes, the three services and the worker as
their own processes (as in the embedded mode) with the HTTP gateway, plus the bare worker and the echo server."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import pathlib
import secrets
import socket
import sys
import time

import grpc
from temporalio.client import Client

from govflow import temporal_data
from govflow.settings import Settings
from govflow_cli import cli
from govflow_cli.supervisor import Stack

# Storage modes of the dev server: (name, file?, tuned pragmas?)
STORAGE_MODES = {
    "memory": (False, False),
    "file-wal": (True, True),
    "file-default": (True, False),
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mib(pid: int) -> float:
    """Resident set size of a process, from /proc (Linux)."""
    try:
        for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used, from /proc (Linux)."""
    try:
        # The fields after the command name (which may hold spaces) start at ")".
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


@dataclasses.dataclass
class BenchStack:
    settings: Settings
    procs: Stack
    client: Client
    channels: dict[str, grpc.aio.Channel]
    echo_addr: str
    storage: str
    gateway_addr: str = ""  # the HTTP gateway, host:port

    def pids(self) -> dict[str, int]:
        return {name: proc.pid for name, proc in self.procs.procs}

    def cpu(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) for name, pid in self.pids().items()}

    def rss(self) -> dict[str, float]:
        return {name: rss_mib(pid) for name, pid in self.pids().items()}

    async def close(self) -> None:
        for ch in self.channels.values():
            await ch.close()
        await asyncio.to_thread(self.procs.stop)


# Every metrics endpoint of a stack (govflow/metrics.py).
METRICS_PORTS = ("identity_metrics_port", "certificates_metrics_port", "matters_metrics_port",
                 "worker_metrics_port", "gateway_metrics_port", "matters_temporal_metrics_port",
                 "worker_temporal_metrics_port", "temporal_metrics_port")


def bench_settings(data_dir: pathlib.Path, **overrides: object) -> Settings:
    """Free ports for everything; metrics on (the default), each on a free port."""
    ports = {f"{n}_port": free_port() for n in ("identity", "certificates", "matters")}
    metrics = {name: free_port() for name in METRICS_PORTS}
    return Settings.from_env(
        None, data_dir=data_dir, **ports, **{**metrics, **overrides},
        identity_addr=f"127.0.0.1:{ports['identity_port']}",
        certificates_addr=f"127.0.0.1:{ports['certificates_port']}",
        matters_addr=f"127.0.0.1:{ports['matters_port']}",
        temporal_address=f"127.0.0.1:{free_port()}", temporal_ui_port=free_port(),
        worker_health_port=free_port(), gateway_port=free_port(),
        worker_client_secret=secrets.token_urlsafe(24),
        admin_client_secret=secrets.token_urlsafe(24),
        log_json=True)


async def start(data_dir: pathlib.Path, storage: str, say, *,  # type: ignore[no-untyped-def]  # say is any printer
                services: bool = True, overrides: dict[str, object] | None = None
                ) -> BenchStack:
    """The stack on ``storage`` (see STORAGE_MODES), seeded with the demo data; with
    ``services=False`` only the dev server and the bare worker (bare baselines only);
    ``overrides``: settings of its own (figure 9 turns metrics off, or tracing on)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = bench_settings(data_dir, **(overrides or {}))
    procs = Stack(settings)
    file, tuned = STORAGE_MODES[storage]
    py = sys.executable
    started = time.monotonic()
    channels: dict[str, grpc.aio.Channel] = {}
    echo_port = 0
    try:
        if services:
            # The services reach Temporal and identity lazily, so they start first and
            # hold their ports before the dev server picks free ports for its internal
            # services (it once took the one chosen for certificates).
            for name in ("identity", "certificates", "matters"):
                procs.spawn(name, [py, "-m", f"services.{name}.server"])
            await asyncio.gather(*[
                cli.wait_healthy(getattr(settings, f"{n}_addr"), 90, cli.HEALTH_NAMES[n])
                for n in ("identity", "certificates", "matters")])
        procs.spawn("temporal", cli.temporal_command(
            settings, db_file=data_dir / "temporal.sqlite3" if file else None, sqlite_tuned=tuned))
        await cli.wait_temporal(settings.temporal_address, 90)
        procs.spawn("bare-worker", [py, "-m", "benchmarks.bare"])
        if services:
            procs.spawn("worker", [py, "-m", "workflows.worker"])
            procs.spawn("gateway", [py, "-m", "services.gateway.server"])
            await cli.wait_gateway(cli.gateway_url(settings), 60)
            echo_port = free_port()
            procs.spawn("echo", [py, "-m", "benchmarks.echo_server", str(echo_port)])
            channels = {n: grpc.aio.insecure_channel(getattr(settings, f"{n}_addr"))
                        for n in ("identity", "certificates", "matters")}
            from govflow_cli.demo_data import seed

            await seed(channels["identity"], channels["certificates"], channels["matters"],
                       settings.admin_client_id, settings.admin_client_secret)
        client = await temporal_data.connect(settings.temporal_address,
                                             settings.temporal_namespace)
        await asyncio.sleep(0.5)
        if (why := procs.crashed()):
            raise RuntimeError(why)
    except BaseException:
        for ch in channels.values():
            await ch.close()
        procs.stop()
        raise
    say(f"stack up ({'services, worker, ' if services else ''}bare worker; dev server "
        f"{storage}) in {time.monotonic() - started:.1f}s")
    return BenchStack(settings, procs, client, channels, f"127.0.0.1:{echo_port}", storage,
                      f"127.0.0.1:{settings.gateway_port}" if services else "")
