"""The event use case and the worker loop on the in-memory fakes."""

from __future__ import annotations

import pytest

from application.events import ObjectCreated, SourceRule
from application.handle_event import Disposition, HandleEvent, HandleStorageEvent
from application.worker import QueueWorker, WorkerSettings
from domain.errors import WarehouseUnavailableError
from domain.ledger import LoadStatus
from infrastructure.memory.messages import InMemoryMessageSource
from tests.unit.conftest import TRAIN_HEADER, Harness, passenger

pytestmark = pytest.mark.unit

ALLOWED = [SourceRule("inbox", "incoming/")]


def drop(harness: Harness, key: str, version: str = "v1", rows: int = 3) -> ObjectCreated:
    uri = f"s3://inbox/{key}"
    harness.drop(uri, {"S": [TRAIN_HEADER, *(passenger(i + 1) for i in range(rows))]}, version)
    return ObjectCreated("inbox", key, size=100, version_id=version)


def handler(harness: Harness, hand_off: InMemoryMessageSource | None = None) -> HandleStorageEvent:
    return HandleStorageEvent(harness.use_case, harness.files, ALLOWED, hand_off)


def test_an_event_ingests_its_object(harness: Harness) -> None:
    obj = drop(harness, "incoming/a b.xlsx")
    result = handler(harness).execute(HandleEvent(obj.as_notification()))
    assert result.disposition is Disposition.ACK
    assert [s.rows_loaded for r in result.results for s in r.sheets] == [3]


def test_foreign_buckets_and_prefixes_are_never_read(harness: Harness) -> None:
    drop(harness, "other/a.xlsx")
    foreign = ObjectCreated("evil", "incoming/a.xlsx", version_id="v1")
    for obj in (ObjectCreated("inbox", "other/a.xlsx", version_id="v1"), foreign):
        result = handler(harness).execute(HandleEvent(obj.as_notification()))
        assert result.disposition is Disposition.ACK and result.results == ()
        assert "not an allowed bucket/prefix" in result.ignored[0]
    assert harness.files.fetched == [] and harness.reader.opened == []


def test_a_stale_event_is_skipped(harness: Harness) -> None:
    old = drop(harness, "incoming/a.xlsx", version="v1")
    drop(harness, "incoming/a.xlsx", version="v2")
    result = handler(harness).execute(HandleEvent(old.as_notification()))
    assert result.results == () and "stale event" in result.ignored[0]


def test_heavy_files_are_handed_to_the_worker_queue(harness: Harness) -> None:
    obj = drop(harness, "incoming/big.xlsx")
    queue = InMemoryMessageSource()
    result = handler(harness, queue).execute(
        HandleEvent(obj.as_notification(), heavy_file_bytes=50)
    )
    assert result.forwarded == ("s3://inbox/incoming/big.xlsx",) and result.results == ()
    assert len(queue.sent) == 1 and harness.warehouse.ledger == []


def test_worker_deletes_only_after_commit_and_retries_transient_errors(harness: Harness) -> None:
    queue = InMemoryMessageSource()
    for key in ("incoming/1.xlsx", "incoming/2.xlsx"):
        queue.put(drop(harness, key).as_notification())
    harness.warehouse.fail_next_load = WarehouseUnavailableError("warehouse down")
    worker = QueueWorker(queue, handler(harness), WorkerSettings(wait_seconds=0))

    first = worker.run(until_empty=True)

    # The fake makes a released message visible at once, so the same run retries it.
    assert (first.deleted, first.retried) == (2, 1)
    assert queue.released[0][1] >= 1  # released with a backoff, never deleted
    assert queue.pending() == []
    loaded = [e for e in harness.warehouse.ledger if e.status is LoadStatus.LOADED]
    assert sorted(e.source_uri for e in loaded) == [
        "s3://inbox/incoming/1.xlsx",
        "s3://inbox/incoming/2.xlsx",
    ]
    assert len(queue.heartbeats) >= 3


def test_poison_messages_reach_the_dlq_without_blocking_others(harness: Harness) -> None:
    dlq = InMemoryMessageSource()
    queue = InMemoryMessageSource(max_receive_count=3, dlq=dlq)
    queue.put("this is not json")
    queue.put(drop(harness, "incoming/good.xlsx").as_notification())
    worker = QueueWorker(queue, handler(harness), WorkerSettings(wait_seconds=0))

    for _ in range(5):
        worker.run(until_empty=True)

    assert queue.pending() == []
    assert [m.body for m in dlq.pending()] == ["this is not json"]
    assert [e.status for e in harness.warehouse.ledger] == [LoadStatus.LOADED]


def test_a_redelivered_message_is_a_skip(harness: Harness) -> None:
    queue = InMemoryMessageSource()
    body = drop(harness, "incoming/a.xlsx").as_notification()
    queue.put(body)
    queue.put(body)  # at-least-once delivery
    QueueWorker(queue, handler(harness), WorkerSettings(wait_seconds=0)).run(until_empty=True)
    assert [e.status for e in harness.warehouse.ledger] == [LoadStatus.LOADED, LoadStatus.SKIPPED]
    assert len(harness.warehouse.rows("train_data")) == 3


def test_stop_finishes_the_current_message_and_returns_the_rest(harness: Harness) -> None:
    queue = InMemoryMessageSource()
    for key in ("incoming/1.xlsx", "incoming/2.xlsx"):
        queue.put(drop(harness, key).as_notification())
    worker = QueueWorker(queue, handler(harness), WorkerSettings(wait_seconds=0))
    original = harness.use_case.execute

    def execute_then_stop(command):  # type: ignore[no-untyped-def]
        worker.stop.set()
        return original(command)

    harness.use_case.execute = execute_then_stop  # type: ignore[method-assign]
    stats = worker.run()

    assert stats.deleted == 1 and len(queue.pending()) == 1


def test_messages_waiting_in_a_batch_are_kept_alive_until_their_turn(harness: Harness) -> None:
    # A heavy file can outlast the visibility timeout; the messages received with it
    # must not reappear to other workers while they wait behind it.
    queue = InMemoryMessageSource()
    keys = ("incoming/1.xlsx", "incoming/2.xlsx", "incoming/3.xlsx")
    for key in keys:
        queue.put(drop(harness, key).as_notification())
    seen_alive: list[set[str]] = []
    original = harness.use_case.execute

    def execute(command):  # type: ignore[no-untyped-def]
        seen_alive.append(set(queue.alive))
        return original(command)

    harness.use_case.execute = execute  # type: ignore[method-assign]
    stats = QueueWorker(queue, handler(harness), WorkerSettings(wait_seconds=0)).run(
        until_empty=True
    )

    assert stats.deleted == 3
    ids = queue.deleted
    # While the first file loads, all three are alive; each stops when it is done.
    assert seen_alive == [set(ids), set(ids[1:]), set(ids[2:])]
    assert queue.alive == set()
