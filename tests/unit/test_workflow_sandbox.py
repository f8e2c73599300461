"""The modules the worker passes through the workflow sandbox (workflows/worker.py
PASSED_THROUGH) are shared by every workflow and escape the sandbox's guards, so they are
held here to what the sandbox would enforce: no clock but ``workflow.now()``, no imports
that reach the outside world (time, random, uuid, os, sockets...), no ``open``, no
``global`` (state carried from one workflow to the next). Replay tests (tests/replay/)
catch what this cannot: a change that makes a path run differently."""

from __future__ import annotations

import ast
import importlib
import pathlib

import pytest

from workflows import worker

# What a passed-through workflow module may import (top-level packages).
ALLOWED_IMPORTS = {"__future__", "asyncio", "collections", "dataclasses", "datetime", "enum",
                   "typing", "temporalio", "workflows"}
CLOCK_CALLS = {"now", "utcnow", "today", "fromtimestamp", "time", "monotonic", "perf_counter"}
BUILTINS_REFUSED = {"open", "input", "print", "exec", "eval", "__import__"}


def problems(source: str) -> list[str]:
    """What in ``source`` the sandbox would refuse or that would leak between workflows."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names
                      if a.name.split(".")[0] not in ALLOWED_IMPORTS]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and (node.module or "").split(".")[0] not in ALLOWED_IMPORTS:
                found.append(f"from {node.module} import ...")
        elif isinstance(node, ast.Global):
            found.append("global " + ", ".join(node.names))
        elif isinstance(node, ast.Call):
            fn = node.func
            if isinstance(fn, ast.Attribute) and fn.attr in CLOCK_CALLS and not (
                    isinstance(fn.value, ast.Name) and fn.value.id == "workflow"):
                found.append(f"{ast.unparse(fn)}()")
            elif isinstance(fn, ast.Name) and fn.id in BUILTINS_REFUSED:
                found.append(f"{fn.id}()")
    return found


@pytest.mark.parametrize("name", worker.PASSED_THROUGH)
def test_passed_through_modules_do_only_what_the_sandbox_allows(name: str) -> None:
    path = pathlib.Path(importlib.import_module(name).__file__ or "")
    assert problems(path.read_text()) == [], f"{name} ({path})"


def test_the_check_finds_what_the_sandbox_would_refuse() -> None:
    bad = """
import random
from os import environ
import datetime as dt
from temporalio import workflow
COUNT = 0
def f():
    global COUNT
    open("x")
    return dt.datetime.now(), dt.date.today(), workflow.now()
"""
    assert sorted(problems(bad)) == sorted([
        "import random", "from os import ...", "global COUNT", "open()", "dt.datetime.now()",
        "dt.date.today()"])


def test_the_workflow_module_itself_is_not_passed_through() -> None:
    # The module that defines the workflow class stays under the sandbox's guards (it is
    # the one the sandbox imports afresh for every workflow).
    assert "workflows.application" not in worker.PASSED_THROUGH
    assert "workflows.follow_up" not in worker.PASSED_THROUGH
