"""Messages no retry can fix reach the DLQ, and the files sent after them still load.

A poison message is released (not deleted) with a pause, so the queue's redrive
policy moves it to the DLQ after maxReceiveCount receives, and it never holds up
the messages behind it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from entrypoints.aws_containers import worker_container
from tests.faults.conftest import Figures, MakeStack
from tests.faults.harness import (
    audit,
    cached_file,
    depth,
    dlq_bodies,
    drain,
    send,
    upload,
)

pytestmark = pytest.mark.faults

SCENARIO = "poison message"
MAX_RECEIVES = 2
POISON = [
    "{not json",
    "   ",
    json.dumps({"hello": "world"}),
    json.dumps([1, 2, 3]),
    json.dumps({"Records": [{"eventSource": "aws:s3", "s3": {"bucket": {}}}]}),
    json.dumps({"Records": [{"eventSource": "aws:kinesis"}]}),
]


def test_poison_goes_to_the_dlq_and_a_good_file_after_it_loads_first(
    make_stack: MakeStack, figures: Figures, file_cache: Path
) -> None:
    # Hidden 2 s after each try, longer than a worker's empty poll (1 s): the first pass
    # below ends at its first empty poll, before a poison message is received a third time.
    stack = make_stack(max_receive_count=MAX_RECEIVES, poison_backoff_s=2)
    sent = send(stack.queue, POISON)
    path, good = cached_file(file_cache, "poison/after", "train_data", 2000, 1, seed=7)
    upload(path, good.key)

    container = worker_container(stack.queue, str(stack.config), stack.warehouse)
    try:
        container.worker().run(until_empty=True)
    finally:
        container.shutdown_resources()
    first_pass = audit(stack, [good])
    poison_waiting = depth(stack.queue)

    drain(stack)

    found = audit(stack, [good])
    figures.record(found, runs=sent + 1)
    # The good file loaded in the first pass, while every poison message still waited.
    assert first_pass.problems([good]) == []
    assert poison_waiting == len(POISON)
    assert first_pass.dlq == 0
    assert found.problems([good]) == []
    assert sorted(dlq_bodies(stack.dlq)) == sorted(POISON)
    assert found.dlq == len(POISON)
    assert depth(stack.queue) == 0
    assert [(e.source_uri, e.status) for e in found.ledger] == [(good.uri, "loaded")]
