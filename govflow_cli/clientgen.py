"""Regenerates the TypeScript client in ``clients/ts/src/gen`` (``./govflow.sh gen-clients``).

``buf generate`` runs ``protoc-gen-es`` (v2) over ``protos/`` and the vendored
``google/rpc`` error details, as ``clients/ts/buf.gen.yaml`` says. Both tools come from the
repository's npm workspace (``npm ci`` at the root, which ``./govflow.sh`` runs). The output
is committed; a test regenerates it into a temporary folder and fails when it is stale.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
CLIENT = ROOT / "clients" / "ts"
GENERATED = CLIENT / "src" / "gen"
BUF = ROOT / "node_modules" / ".bin" / "buf"


def generate(out_dir: pathlib.Path | None = None) -> list[pathlib.Path]:
    """Generates the client into ``clients/ts/src/gen``, or into ``out_dir/src/gen``.

    Returns the files written. Raises ``RuntimeError`` when buf is missing or fails.
    """
    if not BUF.exists():
        raise RuntimeError("buf is not installed: run `npm ci` at the repository root "
                           "(./govflow.sh does it on first use)")
    cmd = [str(BUF), "generate"]
    if out_dir is not None:
        cmd += ["-o", str(out_dir)]
    result = subprocess.run(cmd, cwd=CLIENT, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise RuntimeError(f"buf generate failed: {result.stdout}{result.stderr}")
    target = (out_dir / "src" / "gen") if out_dir is not None else GENERATED
    return sorted(p for p in target.rglob("*") if p.is_file())


def main() -> None:
    written = generate()
    print(f"generated {len(written)} files in {GENERATED.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
