"""The same S3 event delivered four times, to two worker processes at once.

SQS is at-least-once and S3 itself may notify twice: exactly-once is the ledger's
job. Both `datalakep worker` processes are polling before the copies are sent one
by one, so the copies of one event are split between them and race for one load.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from tests.faults.conftest import Figures, MakeStack
from tests.faults.harness import (
    TABLES,
    audit,
    cached_file,
    depth,
    notifications,
    polling,
    send,
    start_worker,
    stop,
    upload,
    wait_until,
)

pytestmark = pytest.mark.faults

SCENARIO = "duplicate delivery"
COPIES = 4  # deliveries of each event: S3's own and three more
FILES = 4


def test_copies_of_an_event_on_two_workers_load_once_and_skip_the_rest(
    aws: str, make_stack: MakeStack, figures: Figures, file_cache: Path
) -> None:
    stack = make_stack(visibility_timeout=30)
    made = [
        cached_file(
            file_cache,
            f"dup/file{n}_{TABLES[n % 3]}",
            TABLES[n % 3],
            rows=3000,
            first_id=1 + 10_000 * n,
            seed=100 + n,
            rejected=11 if n == 1 else 0,
        )
        for n in range(FILES)
    ]
    for path, source in made:
        upload(path, source.key)
    files = [source for _, source in made]
    # S3's own notifications, taken off the queue to be sent again as copies.
    events = notifications(stack.queue, expected=FILES)
    workers = [start_worker(stack) for _ in range(2)]
    try:
        wait_until(lambda: all(polling(w, aws) for w in workers), 30, "both workers to poll")
        # Interleaved, so each worker's share holds copies of every event.
        sent = send(stack.queue, [body for _ in range(COPIES) for body in events])
        wait_until(lambda: depth(stack.queue) == 0, 60, "the queue to drain")
    finally:
        finished = [stop(w) for w in workers]

    found = audit(stack, files)
    figures.record(found, runs=sent)
    received = [_received(out) for _, out, _ in finished]
    assert [code for code, _, _ in finished] == [0, 0], [err[-2000:] for _, _, err in finished]
    # Both processes took part, and every delivery was handled exactly once.
    assert all(n > 0 for n in received)
    assert sum(received) == sent == COPIES * FILES
    assert found.problems(files) == []
    assert found.rows_loaded == found.rows_expected == sum(f.valid for f in files)
    per_file = {
        f.uri: Counter(e.status for e in found.ledger if e.source_uri == f.uri) for f in files
    }
    assert per_file == {f.uri: Counter({"loaded": 1, "skipped": COPIES - 1}) for f in files}
    assert {(e.source_uri, e.table) for e in found.ledger} == {(f.uri, f.table) for f in files}
    assert found.dlq == 0


def _received(out: str) -> int:
    match = re.search(r"worker: (\d+) messages", out)
    assert match, out
    return int(match.group(1))
