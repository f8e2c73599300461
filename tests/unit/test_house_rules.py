"""What issue 26 asked of the repository's shape, kept true: the README stays a page for
users (at most 250 lines), and nothing the repository ships points at files outside it."""

from __future__ import annotations

import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]


def tracked(*patterns: str) -> list[pathlib.Path]:
    out = subprocess.run(["git", "ls-files", *patterns], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    return [ROOT / line for line in out.splitlines()]


def test_the_readme_is_at_most_250_lines() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; depth belongs in docs/"


def test_nothing_points_outside_the_repository() -> None:
    files = tracked("*.md", "*.py", "*.sh", "*.yml", "*.yaml", "*.toml")
    assert files, "git ls-files found nothing"
    here = pathlib.Path(__file__).resolve()
    outside = [f"{f.relative_to(ROOT)}:{n}" for f in files if f.is_file() and f != here
               for n, line in enumerate(f.read_text(errors="replace").splitlines(), 1)
               if "../shared" in line or "DESIGN.md" in line]
    assert outside == []
