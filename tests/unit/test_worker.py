"""The event use case and the worker loop on the in-memory fakes."""

from __future__ import annotations

import errno
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from application.handle_event import Disposition, HandleEvent, HandleStorageEvent
from application.ports import Message
from application.worker import QueueWorker
from domain.errors import TransientError, WarehouseUnavailableError
from domain.events import ObjectCreated, OwnOutputs, SourceRule, StorageEvent
from domain.ledger import LoadStatus
from domain.source import ObjectInfo
from infrastructure.aws.events import decode, notification
from tests.fakes.messages import InMemoryMessageSource
from tests.fakes.outcomes import InMemoryOutcomes
from tests.support.worker_settings import worker_settings
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
    result = handler(harness).execute(HandleEvent(StorageEvent((obj,))))
    assert result.disposition is Disposition.ACK
    assert [s.rows_loaded for r in result.results for s in r.sheets] == [3]


def test_an_event_heads_its_object_once(harness: Harness) -> None:
    """The stale check's HEAD is the one ingest downloads by: a Lambda pays each in latency."""
    obj = drop(harness, "incoming/a.xlsx")

    result = handler(harness).execute(HandleEvent(StorageEvent((obj,))))

    assert [s.rows_loaded for r in result.results for s in r.sheets] == [3]
    assert harness.files.heads == [obj.uri]
    assert harness.files.fetched == [obj.uri]


def test_foreign_buckets_and_prefixes_are_never_read(harness: Harness) -> None:
    drop(harness, "other/a.xlsx")
    foreign = ObjectCreated("evil", "incoming/a.xlsx", version_id="v1")
    for obj in (ObjectCreated("inbox", "other/a.xlsx", version_id="v1"), foreign):
        result = handler(harness).execute(HandleEvent(StorageEvent((obj,))))
        assert result.disposition is Disposition.ACK
        assert result.results == ()
        assert "not an allowed bucket/prefix" in result.ignored[0]
    assert harness.files.fetched == []
    assert harness.reader.opened == []


def test_a_stale_event_is_skipped(harness: Harness) -> None:
    old = drop(harness, "incoming/a.xlsx", version="v1")
    drop(harness, "incoming/a.xlsx", version="v2")
    result = handler(harness).execute(HandleEvent(StorageEvent((old,))))
    assert result.results == ()
    assert "stale event" in result.ignored[0]


def test_heavy_files_are_handed_to_the_worker_queue(harness: Harness) -> None:
    obj = drop(harness, "incoming/big.xlsx")
    queue = InMemoryMessageSource()
    result = handler(harness, queue).execute(HandleEvent(StorageEvent((obj,)), heavy_file_bytes=50))
    assert result.forwarded == ("s3://inbox/incoming/big.xlsx",)
    assert result.results == ()
    assert len(queue.sent) == 1
    assert harness.warehouse.ledger == []


def test_worker_deletes_only_after_commit_and_retries_transient_errors(harness: Harness) -> None:
    queue = InMemoryMessageSource()
    for key in ("incoming/1.xlsx", "incoming/2.xlsx"):
        queue.put(StorageEvent((drop(harness, key),)))
    harness.warehouse.fail_next_load = WarehouseUnavailableError("warehouse down")
    worker = QueueWorker(queue, handler(harness), worker_settings(wait_seconds=0))

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
    queue.put(decode("this is not json"))
    queue.put(StorageEvent((drop(harness, "incoming/good.xlsx"),)))
    worker = QueueWorker(queue, handler(harness), worker_settings(wait_seconds=0))

    for _ in range(5):
        worker.run(until_empty=True)

    assert queue.pending() == []
    assert [m.event.malformed for m in dlq.pending()] == [decode("this is not json").malformed]
    assert [e.status for e in harness.warehouse.ledger] == [LoadStatus.LOADED]


def test_a_redelivered_message_is_a_skip(harness: Harness) -> None:
    queue = InMemoryMessageSource()
    event = StorageEvent((drop(harness, "incoming/a.xlsx"),))
    queue.put(event)
    queue.put(event)  # at-least-once delivery
    QueueWorker(queue, handler(harness), worker_settings(wait_seconds=0)).run(until_empty=True)
    assert [e.status for e in harness.warehouse.ledger] == [LoadStatus.LOADED, LoadStatus.SKIPPED]
    assert len(harness.warehouse.rows("train_data")) == 3


def test_stop_finishes_the_current_message_and_returns_the_rest(harness: Harness) -> None:
    queue = InMemoryMessageSource()
    for key in ("incoming/1.xlsx", "incoming/2.xlsx"):
        queue.put(StorageEvent((drop(harness, key),)))
    worker = QueueWorker(queue, handler(harness), worker_settings(wait_seconds=0))
    original = harness.use_case.execute

    def execute_then_stop(command):  # type: ignore[no-untyped-def]
        worker.stop.set()
        return original(command)

    harness.use_case.execute = execute_then_stop  # type: ignore[method-assign]
    stats = worker.run()

    assert stats.deleted == 1
    assert len(queue.pending()) == 1


def test_messages_waiting_in_a_batch_are_kept_alive_until_their_turn(harness: Harness) -> None:
    # A heavy file can outlast the visibility timeout; the messages received with it
    # must not reappear to other workers while they wait behind it.
    queue = InMemoryMessageSource()
    keys = ("incoming/1.xlsx", "incoming/2.xlsx", "incoming/3.xlsx")
    for key in keys:
        queue.put(StorageEvent((drop(harness, key),)))
    seen_alive: list[set[str]] = []
    original = harness.use_case.execute

    def execute(command):  # type: ignore[no-untyped-def]
        seen_alive.append(set(queue.alive))
        return original(command)

    harness.use_case.execute = execute  # type: ignore[method-assign]
    stats = QueueWorker(queue, handler(harness), worker_settings(wait_seconds=0)).run(
        until_empty=True
    )

    assert stats.deleted == 3
    ids = queue.deleted
    # While the first file loads, all three are alive; each stops when it is done.
    assert seen_alive == [set(ids), set(ids[1:]), set(ids[2:])]
    assert queue.alive == set()


def test_any_exception_releases_only_its_message_and_the_worker_carries_on(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    dlq = InMemoryMessageSource()
    queue = InMemoryMessageSource(max_receive_count=3, dlq=dlq)
    for key in ("incoming/full-disk.xlsx", "incoming/good.xlsx"):
        queue.put(StorageEvent((drop(harness, key),)))
    original = harness.use_case.execute

    def execute(command):  # type: ignore[no-untyped-def]
        if "full-disk" in command.uri:
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(command)

    harness.use_case.execute = execute  # type: ignore[method-assign]
    worker = QueueWorker(queue, handler(harness), worker_settings(wait_seconds=0, max_messages=1))

    stats = worker.run(until_empty=True)

    # The fake makes a released message visible at once: it fails on each of its
    # receives, then the redrive policy moves it to the DLQ.
    assert (stats.deleted, stats.retried) == (1, 3)
    assert all(delay >= 1 for _, delay in queue.released)  # with a backoff
    assert [e.source_uri for e in harness.warehouse.ledger] == ["s3://inbox/incoming/good.xlsx"]
    full = ObjectCreated("inbox", "incoming/full-disk.xlsx", size=100, version_id="v1")
    assert [m.event.objects for m in dlq.pending()] == [(full,)]
    tracebacks = [r for r in caplog.records if r.exc_info and "unexpected OSError" in r.message]
    assert len(tracebacks) == stats.retried  # one traceback per failure, logged once


class _FlakyQueue(InMemoryMessageSource):
    """Its first receive fails as an unreachable SQS does."""

    def __init__(self) -> None:
        super().__init__()
        self.failed_receives = 0

    def receive(self, max_messages: int = 10, wait_seconds: int = 20) -> Sequence[Message]:
        if not self.failed_receives:
            self.failed_receives += 1
            raise TransientError("SQS receive: unreachable", code="sqs_unavailable")
        return super().receive(max_messages, wait_seconds)


def test_an_unreachable_queue_is_polled_again_not_the_end_of_the_worker(
    harness: Harness,
) -> None:
    queue = _FlakyQueue()
    queue.put(StorageEvent((drop(harness, "incoming/a.xlsx"),)))
    worker = QueueWorker(queue, handler(harness), worker_settings(wait_seconds=0, base_backoff_s=0))

    stats = worker.run(until_empty=True)

    assert queue.failed_receives == 1
    assert stats.deleted == 1


def test_one_message_naming_an_object_a_thousand_times_fetches_it_once(harness: Harness) -> None:
    obj = drop(harness, "incoming/a.xlsx")
    record = json.loads(notification(obj))["Records"][0]
    # Distinct sequencers and event names: not even parse_event sees them as equal.
    records = [
        {**record, "eventName": f"ObjectCreated:{'Put' if n % 2 else 'Copy'}",
         "s3": {**record["s3"], "object": {**record["s3"]["object"], "sequencer": f"{n:08X}"}}}
        for n in range(1000)
    ]  # fmt: skip
    other = drop(harness, "incoming/b.xlsx", version="v7")
    body = json.dumps({"Records": [*records, json.loads(notification(other))["Records"][0]]})

    result = handler(harness).execute(HandleEvent(decode(body)))

    assert harness.files.fetched == ["s3://inbox/incoming/a.xlsx", "s3://inbox/incoming/b.xlsx"]
    assert [s.status.value for r in result.results for s in r.sheets] == ["loaded", "loaded"]


def test_folder_markers_and_the_services_own_outputs_are_acknowledged_unread(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    drop(harness, "incoming/dir/")
    drop(harness, "rejects/incoming/a.xlsx.0123.rejects.xlsx")
    drop(harness, "staging/load.parquet")
    own = OwnOutputs(prefixes=("rejects/",), staging=(SourceRule("inbox", "staging/"),))
    outcomes = InMemoryOutcomes()
    use_case = HandleStorageEvent(
        harness.use_case,
        harness.files,
        [SourceRule("inbox", "")],
        own_outputs=own,
        outcomes=[outcomes],
    )
    body = json.dumps({"Records": [
        json.loads(notification(o))["Records"][0] for o in (
            ObjectCreated("inbox", "incoming/dir/", size=0),
            ObjectCreated("inbox", "rejects/incoming/a.xlsx.0123.rejects.xlsx", size=100),
            ObjectCreated("inbox", "staging/load.parquet", size=100),
        )
    ]})  # fmt: skip

    result = use_case.execute(HandleEvent(decode(body)))

    assert result.disposition is Disposition.ACK
    assert result.results == ()
    assert [r.split(": ", 1)[1] for r in result.ignored] == [
        "folder marker", "written by datalakeP", "written by datalakeP"
    ]  # fmt: skip
    assert harness.files.fetched == []
    assert harness.warehouse.ledger == []
    written = [r for r in caplog.records if "written by datalakeP" in r.message]
    assert [(r.name, r.levelno) for r in written] == [
        ("application.handle_event", logging.INFO),
        ("datalakep.outcome", logging.INFO),
    ] * 2
    # Acknowledged unread, each still ends in its one outcome.
    assert outcomes.statuses() == [
        ("s3://inbox/incoming/dir/", "ignored"),
        ("s3://inbox/rejects/incoming/a.xlsx.0123.rejects.xlsx", "ignored"),
        ("s3://inbox/staging/load.parquet", "ignored"),
    ]


@dataclass
class _Capacity:
    """A LocalCapacity that records what it was asked and answers ``reason``."""

    reason: str | None
    asked: list[tuple[str, float | None]] = field(default_factory=list)

    def shortfall(self, info: ObjectInfo, seconds_left: float | None) -> str | None:
        self.asked.append((info.uri, seconds_left))
        return self.reason


def test_a_file_beyond_the_lambdas_capacity_goes_to_the_worker_queue(harness: Harness) -> None:
    obj = drop(harness, "incoming/wide.xlsx")
    queue, capacity = InMemoryMessageSource(), _Capacity("needs about 900 MB of scratch")
    use_case = HandleStorageEvent(
        harness.use_case, harness.files, ALLOWED, queue, capacity=capacity
    )

    result = use_case.execute(HandleEvent(StorageEvent((obj,)), seconds_left=42.0))

    assert result.forwarded == (obj.uri,)
    assert result.results == ()
    assert capacity.asked == [(obj.uri, 42.0)]
    assert queue.sent == [obj]
    assert harness.files.fetched == []


def test_without_a_worker_queue_a_file_beyond_capacity_is_tried_here(harness: Harness) -> None:
    obj = drop(harness, "incoming/wide.xlsx")
    use_case = HandleStorageEvent(
        harness.use_case, harness.files, ALLOWED, capacity=_Capacity("needs about 9 s")
    )

    result = use_case.execute(HandleEvent(StorageEvent((obj,)), seconds_left=1.0))

    assert result.forwarded == ()
    assert [r.source for r in result.results] == [obj.uri]
