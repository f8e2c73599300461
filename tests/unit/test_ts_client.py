"""The TypeScript client (clients/ts): the committed generated code matches the protos, and
the package, its README example and the browser test page type-check."""

import pathlib
import subprocess

import pytest

from govflow_cli import clientgen

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_generated_client_is_current(tmp_path: pathlib.Path) -> None:
    try:
        written = clientgen.generate(tmp_path)
    except RuntimeError as err:
        pytest.fail(str(err))
    fresh = {p.relative_to(tmp_path / "src" / "gen"): p for p in written}
    committed = {p.relative_to(clientgen.GENERATED): p
                 for p in clientgen.GENERATED.rglob("*") if p.is_file()}
    assert fresh, "buf generated nothing"
    stale = sorted(str(rel) for rel in fresh.keys() | committed.keys()
                   if rel not in fresh or rel not in committed
                   or fresh[rel].read_bytes() != committed[rel].read_bytes())
    assert not stale, f"stale TypeScript client, run ./govflow.sh gen-clients: {stale}"


def test_client_type_checks() -> None:
    tsc = ROOT / "node_modules" / ".bin" / "tsc"
    if not tsc.exists():
        pytest.fail("typescript is not installed: ./govflow.sh test runs `npm ci` at the root")
    result = subprocess.run([str(tsc), "--noEmit", "-p", "clients/ts"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
