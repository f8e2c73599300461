"""The contracts: buf lint (STANDARD) passes and the committed stubs match the protos."""

import pathlib
import shutil
import subprocess

import pytest

from govflow_cli import protogen

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_generated_stubs_are_current(tmp_path: pathlib.Path) -> None:
    written = protogen.generate(tmp_path)
    assert written
    stale = []
    for fresh in written:
        committed = ROOT / fresh.relative_to(tmp_path)
        if not committed.exists() or committed.read_bytes() != fresh.read_bytes():
            stale.append(str(committed.relative_to(ROOT)))
    assert not stale, f"stale stubs, run ./govflow.sh gen-protos: {stale}"


def test_buf_lint_standard_passes() -> None:
    buf = shutil.which("buf") or str(ROOT / "node_modules" / ".bin" / "buf")
    if not pathlib.Path(buf).exists():
        pytest.fail("buf is not installed: ./govflow.sh test installs it from npm (@bufbuild/buf)")
    result = subprocess.run([buf, "lint"], cwd=ROOT / "protos", capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_services_are_versioned_and_named() -> None:
    from govflow.certificates.v1 import certificates_pb2
    from govflow.identity.v1 import identity_pb2
    from govflow.matters.v1 import matters_pb2

    names = {s.full_name for m in (identity_pb2, certificates_pb2, matters_pb2)
             for s in m.DESCRIPTOR.services_by_name.values()}
    assert names == {"govflow.identity.v1.IdentityService",
                     "govflow.certificates.v1.CertificatesService",
                     "govflow.matters.v1.MattersService"}
