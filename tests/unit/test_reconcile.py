"""The reconcile use case on the in-memory fakes."""

from __future__ import annotations

import json

import pytest

from application.handle_event import HandleStorageEvent
from application.reconcile import MissingObject, Reconcile, ReconcileBucket, ReconcileResult
from application.worker import QueueWorker
from domain.errors import ConfigurationError
from domain.events import ObjectCreated, SourceRule, StorageEvent
from domain.ledger import LoadStatus
from infrastructure.aws.events import decode, notification
from tests.fakes.messages import InMemoryDeadLetterQueue, InMemoryMessageSource
from tests.support.worker_settings import worker_settings
from tests.unit.conftest import TRAIN_HEADER, Harness, passenger

pytestmark = pytest.mark.unit

ALLOWED = [SourceRule("inbox", "incoming/")]


def drop(harness: Harness, key: str, version: str = "v1", bucket: str = "inbox") -> str:
    uri = f"s3://{bucket}/{key}"
    harness.drop(uri, {"S": [TRAIN_HEADER, passenger(1), passenger(2)]}, version)
    return uri


class Setup:
    def __init__(self, harness: Harness) -> None:
        self.harness = harness
        self.dlq = InMemoryMessageSource()
        self.queue = InMemoryMessageSource(max_receive_count=3, dlq=self.dlq)
        self.use_case = Reconcile(
            harness.files,
            harness.warehouse,
            InMemoryDeadLetterQueue(self.dlq),
            ALLOWED,
            self.queue,
        )

    def run(self, prefix: str = "", enqueue: bool = False) -> ReconcileResult:
        return self.use_case.execute(ReconcileBucket("inbox", prefix, enqueue))

    def work(self) -> None:
        handler = HandleStorageEvent(self.harness.use_case, self.harness.files, ALLOWED)
        QueueWorker(self.queue, handler, worker_settings(wait_seconds=0)).run(until_empty=True)


@pytest.fixture
def setup(harness: Harness) -> Setup:
    return Setup(harness)


def test_only_objects_with_neither_a_ledger_row_nor_a_dead_letter_are_missing(
    setup: Setup, harness: Harness
) -> None:
    loaded = drop(harness, "incoming/loaded.xlsx")
    harness.ingest(loaded)
    rejected = "s3://inbox/incoming/rejected.xlsx"
    harness.drop(rejected, {"S": [["no", "such", "table"], [1, 2, 3]]}, "v1")
    harness.ingest(rejected)
    drop(harness, "incoming/dead.xlsx", version="v7")
    setup.dlq.put(StorageEvent((ObjectCreated("inbox", "incoming/dead.xlsx", version_id="v7"),)))
    lost = drop(harness, "incoming/lost one.xlsx", version="v3")

    result = setup.run()

    assert [e.status for e in harness.warehouse.ledger] == [
        LoadStatus.LOADED,
        LoadStatus.REJECTED,
    ]
    assert result == ReconcileResult(
        listed=4,
        missing=(MissingObject(lost, "v3", harness.files.head(lost).size),),
        in_ledger=2,
        in_dlq=1,
        outside_sources=0,
        dlq_messages=1,
        poison=0,
    )


def test_a_ledger_row_for_an_earlier_version_does_not_cover_the_current_one(
    setup: Setup, harness: Harness
) -> None:
    uri = drop(harness, "incoming/a.xlsx", version="v1")
    harness.ingest(uri)
    drop(harness, "incoming/a.xlsx", version="v2")

    result = setup.run()

    assert [(m.uri, m.version) for m in result.missing] == [(uri, "v2")]
    assert result.in_ledger == 0


def test_dead_letters_cover_their_object_unless_they_name_another_version(
    setup: Setup, harness: Harness
) -> None:
    for key in ("old.xlsx", "any.xlsx", "sns.xlsx", "etag.xlsx"):
        drop(harness, f"incoming/{key}", version="v2")
    setup.dlq.put(StorageEvent((ObjectCreated("inbox", "incoming/old.xlsx", version_id="v1"),)))
    # No version at all: it stood for whatever version was current then.
    setup.dlq.put(StorageEvent((ObjectCreated("inbox", "incoming/any.xlsx"),)))
    inner = notification(ObjectCreated("inbox", "incoming/sns.xlsx", version_id="v2"))
    setup.dlq.put(decode(json.dumps({"Type": "Notification", "Message": inner})))
    # Unversioned buckets: the ETag is the version.
    setup.dlq.put(StorageEvent((ObjectCreated("inbox", "incoming/etag.xlsx", etag="v2"),)))
    setup.dlq.put(decode("{not json"))
    setup.dlq.put(decode(json.dumps({"Event": "s3:TestEvent", "Bucket": "inbox"})))

    result = setup.run()

    assert [m.uri for m in result.missing] == ["s3://inbox/incoming/old.xlsx"]
    assert (result.in_dlq, result.dlq_messages, result.poison) == (3, 6, 1)
    assert len(setup.dlq.visible) == 6  # looked at, not consumed


def test_only_the_bucket_and_prefix_asked_for_are_listed(setup: Setup, harness: Harness) -> None:
    wanted = drop(harness, "incoming/2026/a.xlsx")
    drop(harness, "incoming/2025/b.xlsx")
    drop(harness, "incoming/2026/c.xlsx", bucket="elsewhere")

    result = setup.run(prefix="incoming/2026/")

    assert result.listed == 1
    assert [m.uri for m in result.missing] == [wanted]


def test_objects_the_worker_would_ignore_are_counted_apart_and_never_sent(
    setup: Setup, harness: Harness
) -> None:
    drop(harness, "rejects/incoming/a.xlsx.load.rejects.xlsx")
    inside = drop(harness, "incoming/a.xlsx")

    result = setup.run(enqueue=True)

    assert (result.listed, result.outside_sources) == (2, 1)
    assert [m.uri for m in result.missing] == [inside]
    assert [o.uri for o in setup.queue.sent] == [inside]


def test_enqueued_notifications_are_ingested_by_the_worker_and_then_nothing_is_missing(
    setup: Setup, harness: Harness
) -> None:
    uris = [drop(harness, key) for key in ("incoming/a b+c.xlsx", "incoming/Übersicht.xlsx")]
    setup.dlq.put(decode("{poison"))

    first = setup.run(enqueue=True)
    sent = list(setup.queue.sent)
    setup.work()
    second = setup.run()

    assert (first.enqueued, [m.uri for m in first.missing]) == (2, uris)
    assert [(o.uri, o.size, o.event_name) for o in sent] == [
        (u, harness.files.head(u).size, "ObjectCreated:Put") for u in uris
    ]
    loaded = [e.source_uri for e in harness.warehouse.ledger if e.status is LoadStatus.LOADED]
    assert sorted(loaded) == sorted(uris)
    assert (second.missing, second.in_ledger, second.enqueued) == ((), 2, 0)
    assert [m.event for m in setup.dlq.visible] == [decode("{poison")]


def test_without_enqueue_nothing_is_sent(setup: Setup, harness: Harness) -> None:
    drop(harness, "incoming/a.xlsx")

    result = setup.run()

    assert len(result.missing) == 1
    assert result.enqueued == 0
    assert setup.queue.sent == []


def test_enqueue_without_a_queue_is_a_configuration_error(harness: Harness) -> None:
    drop(harness, "incoming/a.xlsx")
    use_case = Reconcile(
        harness.files, harness.warehouse, InMemoryDeadLetterQueue(InMemoryMessageSource()), ALLOWED
    )

    with pytest.raises(ConfigurationError, match="worker queue"):
        use_case.execute(ReconcileBucket("inbox", enqueue=True))

    assert use_case.execute(ReconcileBucket("inbox")).missing != ()


def test_an_empty_bucket_reconciles_to_nothing(harness: Harness) -> None:
    result = Setup(harness).run()

    assert result == ReconcileResult(0, (), 0, 0, 0, 0, 0)
