"""Who can reach the workflows. In the embedded mode every listening socket of the stack —
Temporal's frontend and Web UI, the three services — is on loopback, so only processes on
the machine reach Temporal; officer actions go through MattersService, and even a direct
Update with a forged OfficerAction is refused by the workflow's validators when the roles,
agency or person do not fit."""

from __future__ import annotations

import asyncio
import errno
import os
import pathlib
import socket

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from govflow.matters.v1 import matters_pb2 as mpb
from tests.e2e.helpers import citizen, official, org, task_for
from tests.faults.procs import ProcStack
from tests.faults.workload import PERMIT
from tests.stack import Stack
from workflows.models import OfficerAction

LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}


def _addr(hex_addr: str) -> tuple[str, int]:
    host, port = hex_addr.split(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        ip = socket.inet_ntop(socket.AF_INET, raw[::-1])
    else:  # /proc prints IPv6 as four little-endian 32-bit words
        ip = socket.inet_ntop(socket.AF_INET6, b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
    return ip, int(port, 16)


def listening_sockets(pid: int) -> list[tuple[str, int]]:
    """(address, port) of every TCP socket the process listens on, from /proc."""
    inodes = set()
    for fd in pathlib.Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in pathlib.Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] == "0A" and cols[9] in inodes:  # 0A: LISTEN
                out.append(_addr(cols[1]))
    return out


def outward_address() -> str | None:
    """An address of this machine that is not loopback (none on an isolated box)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent for a UDP connect
            ip = s.getsockname()[0]
        except OSError:
            return None
    return None if ip.startswith("127.") or ip == "0.0.0.0" else ip


@pytest.mark.skipif(not pathlib.Path("/proc/net/tcp").exists(), reason="needs Linux /proc")
async def test_embedded_stack_listens_on_loopback_only(running: ProcStack) -> None:
    settings = running.settings
    seen: dict[str, list[tuple[str, int]]] = {}
    for name in ("temporal", "identity", "certificates", "matters", "worker"):
        seen[name] = listening_sockets(running.procs[name].pid)
    # The worker dials out; it listens only for its health check and its metrics (its
    # own /metrics and the Temporal SDK's), on loopback like everything else (below).
    assert {port for _, port in seen["worker"]} == {
        p for p in (settings.worker_health_port, settings.worker_metrics_port,
                    settings.worker_temporal_metrics_port) if p}
    ports = {port for socks in seen.values() for _, port in socks}
    temporal_port = int(settings.temporal_address.rsplit(":", 1)[1])
    assert {temporal_port, settings.temporal_ui_port, settings.identity_port,
            settings.certificates_port, settings.matters_port,
            settings.worker_health_port} <= ports
    exposed = {name: [s for s in socks if s[0] not in LOOPBACK] for name, socks in seen.items()}
    assert not any(exposed.values()), exposed

    outward = outward_address()
    if outward is None:
        return
    for port in sorted(ports):
        with socket.socket() as s:
            s.settimeout(3)
            code = s.connect_ex((outward, port))
        assert code == errno.ECONNREFUSED, f"{outward}:{port} answered ({code})"


async def test_a_forged_update_is_refused_by_the_validators(stack: Stack) -> None:
    """Someone who reaches Temporal and sends decide_task/claim_task directly, with an
    OfficerAction they made up, is refused unless it names the right agency, a role the
    task needs, and someone other than the applicant — before anything is written."""
    enterprise = org(stack)
    applicant_md = await citizen(stack, "li-wei", acting_for=enterprise)
    sub = await stack.matters.SubmitApplication(mpb.SubmitApplicationRequest(
        matter=PERMIT, applicant=enterprise, request_id=os.urandom(8).hex(),
        pledges=["fire-safety"]), metadata=applicant_md)
    name = sub.application.name
    acceptor = await official(stack, "chen-jing", "agencies/sz-amr")
    task = await task_for(stack, acceptor, name, "acceptance")
    handle = stack.client.get_workflow_handle("application-" + name.removeprefix("applications/"))
    submitter = stack.seeded.persons["li-wei"]  # type: ignore[attr-defined]
    officer = stack.seeded.persons["zhao-lei"]  # type: ignore[attr-defined]
    forged = [
        ("claim_task", OfficerAction(task=task.name, officer=officer, agency="agencies/sz-amr",
                                     roles=["reviewer"]), "PERMISSION_DENIED"),
        ("claim_task", OfficerAction(task=task.name, officer=officer, agency="agencies/sz-cab",
                                     roles=["acceptor"]), "NOT_FOUND"),
        ("claim_task", OfficerAction(task=task.name, officer=submitter,
                                     agency="agencies/sz-amr", roles=["acceptor"]),
         "PERMISSION_DENIED"),
        ("decide_task", OfficerAction(task=task.name, officer=officer, agency="agencies/sz-amr",
                                      roles=["approver"], decision="APPROVE"), "PERMISSION_DENIED"),
        ("reassign_task", OfficerAction(task=task.name, officer=officer, agency="agencies/sz-amr",
                                        roles=["acceptor"], assignee=officer), "PERMISSION_DENIED"),
    ]
    for update, action, kind in forged:
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await handle.execute_update(update, action)
        assert isinstance(err.value.cause, ApplicationError) and err.value.cause.type == kind, \
            (update, action, err.value.cause)
    history = await handle.fetch_history()
    accepted = [e for e in history.events if e.HasField(
        "workflow_execution_update_accepted_event_attributes")]
    assert not accepted  # refused in validation: nothing in the history, nothing written
    still = await task_for(stack, acceptor, name, "acceptance")
    assert still.status == mpb.TASK_STATUS_OPEN and not still.assignee
    await asyncio.sleep(0)
