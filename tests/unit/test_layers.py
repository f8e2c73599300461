"""The layers hold (issue 26, item 4): ``govflow/`` is the shared runtime kit only. No module
in it imports the services, the workflows, the benchmarks, the CLI and its tools
(``govflow_cli``) or the tests, not even lazily inside a function, and its modules import
each other without a cycle. Read from the source with ``ast``, so an import that only runs
on some path counts as much as one at the top."""

from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
KIT = ROOT / "govflow"
# Top-level packages of the repository that sit above the kit.
ABOVE_THE_KIT = {"services", "workflows", "benchmarks", "govflow_cli", "tests", "examples"}


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """Every module ``source`` imports anywhere (top level, functions, ``if`` branches):
    ``import a.b``, ``from a.b import c`` (as ``a.b`` and ``a.b.c``: c may be a module),
    relative imports resolved against ``module``, and ``importlib.import_module("a.b")``
    or ``__import__("a.b")`` with a literal name."""
    found: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            if base:
                found.add(base)
            found.update(f"{base}.{alias.name}" if base else alias.name for alias in node.names)
        elif isinstance(node, ast.Call) and node.args and \
                isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else \
                func.id if isinstance(func, ast.Name) else ""
            if name in ("import_module", "__import__"):
                found.add(node.args[0].value)
    return found


def kit_modules() -> dict[str, set[str]]:
    """Each module of govflow/ and what it imports."""
    out = {}
    for path in sorted(KIT.rglob("*.py")):
        name = module_name(path)
        out[name] = imported_modules(path.read_text(encoding="utf-8"), name,
                                     is_package=path.name == "__init__.py")
    return out


def upward_imports(modules: dict[str, set[str]]) -> list[str]:
    return [f"{name} imports {target}" for name, targets in modules.items()
            for target in sorted(targets) if target.split(".")[0] in ABOVE_THE_KIT]


def cycles(modules: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles among ``modules`` (each found once, from where the search met it)."""
    graph = {name: sorted(t for t in targets if t in modules and t != name)
             for name, targets in modules.items()}
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                found.append([*path[path.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for name in graph:
        if name not in state:
            visit(name)
    return found


def test_the_kit_imports_nothing_above_it() -> None:
    modules = kit_modules()
    assert "govflow.grpckit" in modules and "govflow.settings" in modules  # the walk found it
    assert upward_imports(modules) == []


def test_the_kit_has_no_import_cycle() -> None:
    assert cycles(kit_modules()) == []


def test_the_check_sees_every_kind_of_import() -> None:
    """The checks themselves, on made-up modules: lazy, relative, aliased and dynamic
    imports are all found, and a cycle through them is reported."""
    source = '''
import importlib
from govflow import settings

def later():
    from services.matters import catalogue
    import workflows.models as m
    importlib.import_module("benchmarks.run")

class C:
    def f(self):
        if True:
            from govflow_cli.demo_data import seed
            from .errors import error_info
            from . import paging
'''
    found = imported_modules(source, "govflow.example")
    assert {"services.matters", "workflows.models", "benchmarks.run", "govflow_cli.demo_data",
            "govflow.errors", "govflow.paging", "govflow.settings"} <= found
    assert upward_imports({"govflow.example": found}) == [
        "govflow.example imports benchmarks.run",
        "govflow.example imports govflow_cli.demo_data",
        "govflow.example imports govflow_cli.demo_data.seed",
        "govflow.example imports services.matters",
        "govflow.example imports services.matters.catalogue",
        "govflow.example imports workflows.models",
    ]
    assert imported_modules("from .v1 import x_pb2", "govflow.identity", is_package=True) >= {
        "govflow.identity.v1", "govflow.identity.v1.x_pb2"}
    looped = {"govflow.a": {"govflow.b"}, "govflow.b": {"govflow.c"}, "govflow.c": {"govflow.a"},
              "govflow.d": {"govflow.a"}}
    assert cycles(looped) == [["govflow.a", "govflow.b", "govflow.c", "govflow.a"]]
