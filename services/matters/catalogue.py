"""The catalogue shipped with Govflow: matter definitions as YAML files in
``services/matters/catalogue/``. Their rules are in ``domain/definition.py``; an admin
publishes them through ``PublishMatter`` (``govflow seed`` publishes these)."""

from __future__ import annotations

import pathlib

CATALOGUE_DIR = pathlib.Path(__file__).parent / "catalogue"


def bundled_definitions() -> list[tuple[str, str]]:
    """(file name, YAML) of every definition shipped in the repository."""
    return [(f.name, f.read_text(encoding="utf-8")) for f in sorted(CATALOGUE_DIR.glob("*.yaml"))]
