"""The generated TypeScript client (clients/ts) against the session's stack, through the
HTTP gateway: from Node (Connect JSON and binary, gRPC-Web) and from a real browser
(Debian's chromium driven by playwright-core), where CORS lets only a configured origin in.

The stack runs in this test's event loop, so node runs as an asyncio subprocess: a blocking
call would stall the very services it calls.
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import shutil

import pytest

from govflow_cli.demo_data import DEMO_PASSWORD, person
from tests.stack import TEST_ORIGIN, Stack

ROOT = pathlib.Path(__file__).resolve().parents[2]
CLIENT = ROOT / "clients" / "ts"
CHROMIUM = pathlib.Path("/usr/bin/chromium")
ALLOWED_PORT, OTHER_PORT = 5174, 5175  # the stack's gateway allows TEST_ORIGIN only


def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.fail("node is not installed: the TypeScript client's tests need Node 20+")
    if not (ROOT / "node_modules" / "@govflow" / "client").exists():
        pytest.fail("the npm workspace is not installed: ./govflow.sh test runs `npm ci`")
    return found


async def run_node(*args: str, timeout: float = 180) -> dict[str, object]:
    """Runs node with args; returns the JSON object its last output line holds."""
    proc = await asyncio.create_subprocess_exec(
        node(), *args, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode == 0, f"node {args[0]} failed:\n{out.decode()}\n{err.decode()}"
    return json.loads(out.decode().strip().splitlines()[-1])  # type: ignore[no-any-return]


async def test_node_client_submits_and_reads_the_timeline(stack: Stack) -> None:
    # Wang Fang, as in the README's demo. The senior card is one per holder: should she hold
    # one already on this stack, the script follows the application the refusal names.
    seen = await run_node(str(CLIENT / "test" / "node-e2e.mjs"), stack.gateway_url,
                          person("wang-fang").id_number, DEMO_PASSWORD)
    assert seen["refused"] in ("", "RESULT_ALREADY_HELD")
    assert seen["status"] == "COMPLETED"
    assert str(seen["application"]).startswith("applications/")
    timeline = seen["timeline"]
    assert isinstance(timeline, list)
    assert timeline[0] == "submitted"
    assert "instant_approved" in timeline and "certificate_issued" in timeline
    assert seen["notFound"] == {"code": "NotFound", "reason": "APPLICATION_NOT_FOUND"}
    invalid = seen["invalid"]
    assert isinstance(invalid, dict) and invalid["code"] == "InvalidArgument"
    assert "matter" in invalid["fields"]


async def test_readme_example_runs(stack: Stack, tmp_path: pathlib.Path) -> None:
    example = (CLIENT / "examples" / "submit.ts").read_text()
    assert example in (ROOT / "README.md").read_text(), "README's TypeScript example drifted"
    # The example as printed, pointed at this stack's gateway, bundled for Node and run
    # (from stdin, so esbuild resolves its imports from clients/ts).
    source = example.replace("http://127.0.0.1:8080", stack.gateway_url)
    bundle = tmp_path / "submit.mjs"
    esbuild = ROOT / "node_modules" / ".bin" / "esbuild"
    proc = await asyncio.create_subprocess_exec(
        str(esbuild), "--bundle", "--platform=node", "--format=esm", "--loader=ts",
        "--sourcefile=submit.ts", f"--outfile={bundle}", "--log-level=error", cwd=CLIENT,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate(source.encode())
    assert proc.returncode == 0, (out + err).decode()
    proc = await asyncio.create_subprocess_exec(
        node(), str(bundle), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, (out + err).decode()
    name, status = out.decode().split()
    assert name.startswith("applications/") and status in {"SUBMITTED", "VERIFYING", "IN_REVIEW"}


async def test_browser_calls_from_an_allowed_origin_only(stack: Stack) -> None:
    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is missing: ./govflow.sh test installs it with apt "
                    "(apt-get install -y chromium)")
    citizen = person("li-wei")
    seen = await run_node(str(CLIENT / "test" / "browser-cors.mjs"), stack.gateway_url,
                          citizen.id_number, DEMO_PASSWORD, str(ALLOWED_PORT), str(OTHER_PORT))
    allowed, other = seen["allowed"], seen["other"]
    assert isinstance(allowed, dict) and isinstance(other, dict)
    assert allowed["ok"] is True, allowed
    assert allowed["origin"] == TEST_ORIGIN == f"http://127.0.0.1:{ALLOWED_PORT}"
    # Refused by the browser: the gateway's preflight answer names no such origin, so the
    # call never reaches an RPC and the client sees a network failure, not a Connect error.
    assert other["ok"] is False, other
    assert other["origin"] == f"http://127.0.0.1:{OTHER_PORT}"
    assert any("CORS" in line for line in other["console"]), other  # type: ignore[union-attr]
