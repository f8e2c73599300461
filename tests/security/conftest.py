"""Prints the figures of the hostile-input tests: fuzz cases per RPC, matrix cells."""

from __future__ import annotations

import pytest

from tests.security.support import FUZZ_CALLS, FUZZ_EXAMPLES, MATRIX_CELLS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FUZZ_EXAMPLES:
        tr = terminalreporter
        tr.section("fuzzing: cases per RPC (examples x callers)")
        for rpc in sorted(FUZZ_EXAMPLES):
            tr.write_line(f"{rpc:52} {FUZZ_EXAMPLES[rpc]:5} examples {FUZZ_CALLS[rpc]:6} calls")
        tr.write_line(f"{len(FUZZ_EXAMPLES)} RPC runs, {sum(FUZZ_EXAMPLES.values())} examples, "
                      f"{sum(FUZZ_CALLS.values())} calls")
    if MATRIX_CELLS:
        terminalreporter.section("authorisation matrix: cells checked")
        for name in sorted(MATRIX_CELLS):
            terminalreporter.write_line(f"{name:52} {MATRIX_CELLS[name]:5}")
        terminalreporter.write_line(f"total {sum(MATRIX_CELLS.values())} cells")
