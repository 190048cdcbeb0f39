"""Print the reliability table from the fault suite's figures (and the hostile tests' JUnit).

    python -m tests.faults.report FIGURES.json [--junit JUNIT.xml]

FIGURES.json is what tests/faults/conftest.py writes when DATALAKEP_RELIABILITY_REPORT
is set: one entry per test. Tests of one scenario are summed into one row. Tests that
record no figures (tests/integration/hostile) come from the JUnit XML: one row per
module, with its test count as runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

COLUMNS = ("scenario", "runs", "files", "rows expected", "rows loaded", "duplicates", "lost",
           "DLQ'd", "pass")  # fmt: skip
FIGURES_SOURCE = "tests.faults."
HOSTILE_SOURCE = "tests.integration.hostile."


@dataclass
class Row:
    scenario: str
    tests: int = 0
    failed: int = 0
    runs: int = 0
    files: int | None = None
    rows_expected: int | None = None
    rows_loaded: int | None = None
    duplicates: int | None = None
    lost: int | None = None
    dlq: int | None = None

    def cells(self) -> list[str]:
        verdict = "yes" if not self.failed else f"NO ({self.failed} of {self.tests} failed)"
        figures = (self.files, self.rows_expected, self.rows_loaded, self.duplicates, self.lost,
                   self.dlq)  # fmt: skip
        return [self.scenario, f"{self.runs:,}", *(_number(v) for v in figures), verdict]


def _number(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def from_figures(tests: Iterable[dict[str, Any]]) -> list[Row]:
    rows: dict[str, Row] = {}
    for test in tests:
        row = rows.setdefault(
            test["scenario"],
            Row(test["scenario"], files=0, rows_expected=0, rows_loaded=0, duplicates=0,
                lost=0, dlq=0),
        )  # fmt: skip
        row.tests += 1
        row.failed += 0 if test["passed"] else 1
        row.runs += int(test["runs"])
        for name in ("files", "rows_expected", "rows_loaded", "duplicates", "lost", "dlq"):
            setattr(row, name, (getattr(row, name) or 0) + int(test[name]))
    return list(rows.values())


def from_junit(path: Path, prefix: str = HOSTILE_SOURCE) -> list[Row]:
    """One row per test module under ``prefix``: the count of its tests and failures."""
    rows: dict[str, Row] = {}
    # Our own pytest's JUnit report, not untrusted input.
    for case in ElementTree.parse(path).getroot().iter("testcase"):  # noqa: S314
        module = case.get("classname", "")
        if not module.startswith(prefix):
            continue
        name = module.removeprefix(prefix).split(".")[0].removeprefix("test_")
        row = rows.setdefault(name, Row(f"hostile input: {name.replace('_', ' ')}"))
        if case.find("skipped") is not None:
            row.failed += 1  # a skipped check proves nothing
        elif case.find("failure") is not None or case.find("error") is not None:
            row.failed += 1
        row.tests += 1
        row.runs += 1
    return list(rows.values())


def render(rows: Sequence[Row], out: TextIO) -> None:
    table = [list(COLUMNS), *(r.cells() for r in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    for number, line in enumerate(table):
        cells = [
            cell.ljust(widths[i]) if i in (0, len(COLUMNS) - 1) else cell.rjust(widths[i])
            for i, cell in enumerate(line)
        ]
        out.write("  ".join(cells).rstrip() + "\n")
        if number == 0:
            out.write("  ".join("-" * w for w in widths) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.report")
    parser.add_argument("figures", type=Path, help="JSON written by the fault suite")
    parser.add_argument("--junit", type=Path, help="pytest --junitxml output")
    args = parser.parse_args(argv)
    rows: list[Row] = []
    if args.figures.is_file():
        rows += from_figures(json.loads(args.figures.read_text())["tests"])
    else:
        print(f"no figures at {args.figures}: did the fault suite run?", file=sys.stderr)
    if args.junit is not None and args.junit.is_file():
        rows += from_junit(args.junit)
    if not rows:
        return 1
    render(rows, sys.stdout)
    if args.figures.is_file():
        notes = [
            (test["scenario"], note)
            for test in json.loads(args.figures.read_text())["tests"]
            for note in test.get("notes", [])
        ]
        if notes:
            print("\nwhere the workers were killed:")
        for scenario, note in notes:
            print(f"  {scenario}: {note}")
    failed = sum(r.failed for r in rows)
    total = sum(r.tests for r in rows)
    print(f"\n{total - failed} of {total} tests passed", end="")
    print("" if not failed else f"; {failed} FAILED")
    return 0 if not failed else 1


if __name__ == "__main__":
    raise SystemExit(main())
