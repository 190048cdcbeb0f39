"""Two workers on one queue, an older v1 of a key and a small v2 right after it.

The worker that holds v1 stalls before it can load it, as a worker does on a parse
that takes minutes: its parser child is frozen (SIGSTOP) while v2 lands and the
other worker loads it, then let go. v1 must then end as a `stale` ledger row, never
commit over v2. Freezing the parse, rather than counting on v1 taking longer to
parse than v2 takes to arrive and load, keeps the order the test needs however fast
the reader gets (v1 of 200k rows began to commit first once the parallel parse took
it under a second). Only the child is frozen: the worker itself may already be past
its download, but it takes the table's lock only to load, after the parse, so the
other worker never waits on it; and its heartbeat keeps v1's message its own. The
bucket is moto's: its notifications carry no sequencer, so the order comes from
LastModified at head time.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import psycopg
import pytest

from devtools.demo import BUCKET
from devtools.sample import generate_passengers
from tests.faults.conftest import Figures, MakeStack
from tests.faults.harness import (
    audit,
    cached_file,
    depth,
    ledger,
    start_worker,
    stop,
    upload,
    wait_until,
)

pytestmark = pytest.mark.faults

SCENARIO = "older version committing last"
KEY_NAME = "order/passengers"
V1_ROWS, V2_ROWS = 200_000, 20


def _in_hand(workers: list[subprocess.Popen[str]]) -> list[int]:
    """The processes of the worker that has v1 in hand (it read v1's version and
    fetched it): the worker and its children; none while no worker has.

    The download is open in the worker while it arrives, then in its parser child
    while that parses it (the worker itself no longer reads a sheet this large:
    its extent is checked in the child's parts), so both are looked at.
    """
    for worker in workers:
        family = [worker.pid, *_children(worker.pid)]
        for pid in family:
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                for fd in Path(f"/proc/{pid}/fd").iterdir():
                    with contextlib.suppress(OSError):
                        if Path(os.readlink(fd)).name.startswith("datalakep-"):
                            return family
    return []


def _signal(pids: list[int], signum: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def _children(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(child) for child in children.read_text().split()]
    except (FileNotFoundError, ProcessLookupError):
        return []


def test_a_slow_older_version_never_commits_over_a_newer_one(
    make_stack: MakeStack, figures: Figures, file_cache: Path
) -> None:
    figures.scenario = SCENARIO
    stack = make_stack(versioned=True)
    v1_path, v1 = cached_file(file_cache, KEY_NAME, "train_data", V1_ROWS, 1, seed=1)
    v2_path, v2 = cached_file(file_cache, KEY_NAME, "train_data", V2_ROWS, 1, seed=2)
    workers = [start_worker(stack), start_worker(stack)]
    try:
        first = upload(v1_path, v1.key)
        uploaded = time.monotonic()
        # One worker has read v1's version and fetched it: its parse stalls, so the
        # worker holds no lock (it locks the table only to load). v2 lands a second
        # later at least, so that LastModified (whole seconds) tells the two apart,
        # and the other worker loads it.
        wait_until(lambda: bool(_in_hand(workers)), 30, "a worker to fetch v1")
        stalled = _children(_in_hand(workers)[0])
        assert stalled, "the worker holding v1 has no parser child to stall"
        _signal(stalled, signal.SIGSTOP)
        try:
            time.sleep(max(0.0, uploaded + 1.1 - time.monotonic()))
            second = upload(v2_path, v2.key)
            wait_until(
                lambda: any(
                    e.source_version == second["VersionId"] and e.status == "loaded"
                    for e in ledger(stack.database)
                ),
                60,
                "the other worker to load v2",
            )
        finally:
            _signal(stalled, signal.SIGCONT)
        wait_until(lambda: depth(stack.queue) == 0, 60, "the queue to drain")
    finally:
        codes = [stop(w)[0] for w in workers]

    found = audit(stack, [v2])
    figures.record(found, runs=1)
    assert codes == [0, 0]
    by_version = {e.source_version: e.status for e in found.ledger}
    assert by_version == {first["VersionId"]: "stale", second["VersionId"]: "loaded"}
    assert found.problems([v2]) == []
    assert found.rows_loaded == found.rows_expected == V2_ROWS
    with psycopg.connect(stack.database) as con:
        names = [r[0] for r in con.execute('SELECT "Name" FROM train_data ORDER BY 1')]
    expected = generate_passengers("train_data", V2_ROWS, seed=2).column("Name").to_pylist()
    assert names == sorted(str(n) for n in expected)
    assert found.dlq == 0
    assert BUCKET in v2.uri
