"""Workers killed with SIGKILL at every step of a load, then a normal worker catches up.

Each test runs several crashing workers one after another against one queue and one
database, each after a fresh upload of a few files (some with rejected rows), so a
crash can land on a new file, on a message redelivered from the previous crash, or
in the middle of a batch. The visibility timeout is 1 s: a dead worker's messages
come back quickly (one worker runs at a time, so an early return is harmless). Then
a normal worker drains the queue and the audit checks every file loaded exactly
once, whole, with nothing left over.
"""

from __future__ import annotations

import random
import signal
from pathlib import Path

import pytest

from tests.faults.conftest import Figures, MakeStack
from tests.faults.harness import (
    TABLES,
    SourceFile,
    audit,
    cached_file,
    depth,
    drain,
    finish,
    rejects_reports,
    start_worker,
    upload,
)
from tests.support.crashing_worker import KILL_MARK

pytestmark = pytest.mark.faults

SCENARIO = "crash: SIGKILL mid-load"
FILES_PER_CRASH = 2
ROWS = 2000

PLANS: dict[str, list[str]] = {
    # One seam per plan; the N-th use varies so a crash also lands mid-batch.
    "parse": ["parse:1", "parse:2", "parse:1", "parse:2"],
    "copy": ["copy:1", "copy:2", "copy:1", "copy:2"],
    "before-commit": ["commit:1", "commit:2", "commit:2", "commit:1"],
    "after-commit-before-delete": ["delete:1", "delete:3", "delete:2", "delete:1"],
    "mid-report": ["report:1", "report:1", "report:2"],
    # Random moments after the first batch arrives, reproducible from the seed.
    # (A crashing worker loads its two new files in well under a second.)
    "random": [f"random:{random.Random(i).uniform(0.05, 0.6):.3f}" for i in range(4)],
}


def _batch(cache: Path, step: int, first: int, rejects: bool) -> list[tuple[Path, SourceFile]]:
    made = []
    for number in range(first, first + FILES_PER_CRASH):
        table = TABLES[number % len(TABLES)]
        made.append(
            cached_file(
                cache,
                f"crash/step{step}_{number}_{table}",
                table,
                rows=ROWS,
                first_id=1 + 10_000 * number,
                seed=number,
                # In a report plan every file has rejects, so every one writes a report.
                rejected=7 if rejects or number % 3 == 0 else 0,
            )
        )
    return made


@pytest.mark.parametrize("plan", PLANS.values(), ids=PLANS.keys())
def test_sigkill_anywhere_loses_and_duplicates_nothing(
    plan: list[str], make_stack: MakeStack, figures: Figures, file_cache: Path
) -> None:
    stack = make_stack(visibility_timeout=1, max_receive_count=10)
    files: list[SourceFile] = []
    kills = []
    for step, phase in enumerate(plan):
        batch = _batch(file_cache, step, len(files), rejects=phase.startswith("report"))
        # Started first: the uploads land while it imports, and it polls until they do.
        worker = start_worker(stack, crash=phase)
        for path, source in batch:
            upload(path, source.key)
            files.append(source)
        code, _, err = finish(worker, timeout=40)
        marks = [line for line in err.splitlines() if KILL_MARK in line]
        kills.append((phase, code, marks, err[-3000:]))

    drain(stack)

    found = audit(stack, files)
    figures.record(found, runs=sum(1 for _, code, _, _ in kills if code == -signal.SIGKILL))
    figures.notes += [
        m.removeprefix(f"{KILL_MARK} ")
        for p, _, marks, _ in kills
        for m in marks
        if p.startswith("random")
    ]
    # Every crashing worker died by SIGKILL, once, at its own seam.
    died = [(code, len(marks)) for _, code, marks, _ in kills]
    assert died == [(-signal.SIGKILL, 1)] * len(plan), [
        e for _, c, _, e in kills if c != -signal.SIGKILL
    ]
    seams = [marks[0].removeprefix(KILL_MARK).split()[0] for _, _, marks, _ in kills]
    assert seams == [p.split(":")[0] for p in plan]
    assert found.problems(files) == []
    assert found.rows_loaded == found.rows_expected == sum(f.valid for f in files)
    assert found.dlq == 0
    assert depth(stack.queue) == 0
    assert {e.status for e in found.ledger} <= {"loaded", "skipped"}
    # A rejects report is as durable as the rows: whole for every file with rejects.
    reports = {f.key: rejects_reports(f) for f in files if f.rejected}
    assert reports == {key: {".csv", ".xlsx"} for key in reports}
