"""Regenerates the Python stubs from ``protos/`` (``./govflow.sh gen-protos``).

The stubs are committed so a plain install works without grpcio-tools at run time; a test
regenerates them into a temporary folder and fails when the committed ones are stale.
"""

from __future__ import annotations

import pathlib
import sys

from grpc_tools import protoc

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
SERVICES = ("identity", "certificates", "matters")


def proto_files() -> list[pathlib.Path]:
    return sorted(PROTOS.glob("govflow/*/v1/*.proto"))


def generate(out_dir: pathlib.Path) -> list[pathlib.Path]:
    """Generates ``*_pb2.py``, ``*_pb2.pyi`` and ``*_pb2_grpc.py`` under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    include = pathlib.Path(protoc.__file__).parent / "_proto"
    files = [str(p.relative_to(PROTOS)) for p in proto_files()]
    args = [
        "protoc",
        f"-I{PROTOS}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *files,
    ]
    code = protoc.main(args)
    if code != 0:
        raise RuntimeError(f"protoc failed with exit code {code}")
    written = []
    for service in SERVICES:
        for pkg in (out_dir / "govflow" / service, out_dir / "govflow" / service / "v1"):
            init = pkg / "__init__.py"
            if not init.exists():
                init.write_text('"""Generated from protos/; do not edit."""\n')
        written.extend(sorted((out_dir / "govflow" / service / "v1").glob("*")))
    return [p for p in written if p.is_file()]


def main() -> None:
    written = generate(ROOT)
    print(f"generated {len(written)} files from {len(proto_files())} protos", file=sys.stderr)


if __name__ == "__main__":
    main()
