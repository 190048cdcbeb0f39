"""Every file ends in exactly one outcome: one INFO line, one call to each listener."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime

import pytest

from application.handle_event import HandleEvent, HandleStorageEvent
from application.outcomes import FileStatus, outcome_of
from application.results import IngestResult, Outcome, SheetResult
from application.worker import QueueWorker
from domain.errors import TransientError, UnreadableFileError, WarehouseUnavailableError
from domain.events import ObjectCreated, SourceRule, StorageEvent
from domain.routing import Router
from infrastructure.aws.events import decode
from tests.fakes.messages import InMemoryMessageSource
from tests.fakes.outcomes import InMemoryOutcomes
from tests.support.worker_settings import worker_settings
from tests.unit.conftest import TRAIN_HEADER, Harness, make_harness, passenger

pytestmark = pytest.mark.unit

ALLOWED = [SourceRule("inbox", "incoming/")]
EVENT_TIME = datetime(2026, 12, 1, 10, 0, 0)


@pytest.fixture
def outcomes() -> InMemoryOutcomes:
    return InMemoryOutcomes()


@pytest.fixture
def harness(router: Router, outcomes: InMemoryOutcomes) -> Harness:
    return make_harness(router, [outcomes])


def drop(
    harness: Harness, key: str, rows: list[list[object]], version: str = "v1"
) -> ObjectCreated:
    harness.drop(f"s3://inbox/{key}", {"S": [TRAIN_HEADER, *rows]}, version)
    return ObjectCreated("inbox", key, size=100, version_id=version, event_time=EVENT_TIME)


def handler(harness: Harness, outcomes: InMemoryOutcomes, **kw: object) -> HandleStorageEvent:
    return HandleStorageEvent(harness.use_case, harness.files, ALLOWED, outcomes=[outcomes], **kw)  # type: ignore[arg-type]


def outcome_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.name == "datalakep.outcome" and r.levelno == logging.INFO
    ]


def test_each_file_status_is_one_outcome_line_and_one_listener_call(
    harness: Harness, outcomes: InMemoryOutcomes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    loaded = drop(
        harness,
        "incoming/ok.xlsx",
        [passenger(1), passenger(2, Sex="?"), *(passenger(i) for i in range(3, 12))],
    )
    refused = drop(harness, "incoming/bad.xlsx", [passenger(1, Sex="?"), passenger(2, Sex="?")])
    broken = drop(harness, "incoming/enc.xlsx", [passenger(1)])
    harness.reader.break_file(
        broken.uri, UnreadableFileError("encrypted", code="encrypted_workbook")
    )
    foreign = ObjectCreated("inbox", "elsewhere/x.xlsx", version_id="v1")
    stale = drop(harness, "incoming/old.xlsx", [passenger(1)], version="v1")
    drop(harness, "incoming/old.xlsx", [passenger(1)], version="v2")
    heavy = drop(harness, "incoming/heavy.xlsx", [passenger(1)])
    queue = InMemoryMessageSource()

    use_case = handler(harness, outcomes, hand_off=queue)
    for obj in (loaded, refused, broken, foreign, stale):
        use_case.execute(HandleEvent(StorageEvent((obj,))))
    use_case.execute(HandleEvent(StorageEvent((heavy,)), heavy_file_bytes=50))
    use_case.execute(HandleEvent(StorageEvent((loaded,))))  # redelivered

    expected = [
        (loaded.uri, "loaded"),
        (refused.uri, "rejected"),
        (broken.uri, "failed"),
        (foreign.uri, "ignored"),
        (stale.uri, "stale"),
        (heavy.uri, "handed_off"),
        (loaded.uri, "skipped"),
    ]
    assert outcomes.statuses() == expected
    lines = outcome_lines(caplog)
    assert [(r.source, r.status) for r in lines] == expected  # type: ignore[attr-defined]
    first = outcomes.outcomes[0]
    assert (first.rows_read, first.rows_loaded, first.rows_rejected) == (11, 10, 1)
    assert first.tables == ("train_data",)
    assert first.version == "v1"
    assert first.rejects_report is not None
    assert first.load_ids
    assert [r.column for r in first.first_rejects] == ["Sex"]
    assert first.event_time == EVENT_TIME
    assert (first.event_lag_seconds or 0) > 0
    assert outcomes.outcomes[1].reason is not None
    assert "rejected" in outcomes.outcomes[1].reason
    assert outcomes.outcomes[2].error_code == "encrypted_workbook"
    assert lines[0].load_id == first.load_ids[0]  # type: ignore[attr-defined]


def test_a_dry_run_and_a_retried_file_have_no_outcome_yet(
    harness: Harness, outcomes: InMemoryOutcomes
) -> None:
    obj = drop(harness, "incoming/a.xlsx", [passenger(1)])
    harness.validate(obj.uri)
    harness.warehouse.fail_next_load = WarehouseUnavailableError("warehouse down")
    with pytest.raises(TransientError):
        handler(harness, outcomes).execute(HandleEvent(StorageEvent((obj,))))
    assert outcomes.outcomes == []


def test_a_failing_listener_is_logged_and_the_others_still_hear(
    harness: Harness, outcomes: InMemoryOutcomes, caplog: pytest.LogCaptureFixture
) -> None:
    second = InMemoryOutcomes()
    outcomes.fail_next = TransientError("SNS throttled", code="sns_unavailable")
    use_case = HandleStorageEvent(
        harness.use_case, harness.files, ALLOWED, outcomes=[outcomes, second]
    )
    use_case.execute(HandleEvent(StorageEvent((ObjectCreated("inbox", "other/a.xlsx"),))))
    assert second.statuses() == [("s3://inbox/other/a.xlsx", "ignored")]
    assert outcomes.outcomes == []
    [warning] = [
        r
        for r in caplog.records
        if r.levelno == logging.WARNING and "did not reach" in r.getMessage()
    ]
    assert warning.error_code == "sns_unavailable"  # type: ignore[attr-defined]


def test_every_release_names_the_object_the_attempt_and_the_delay(
    harness: Harness, outcomes: InMemoryOutcomes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    dlq = InMemoryMessageSource()
    queue = InMemoryMessageSource(max_receive_count=2, dlq=dlq)
    obj = drop(harness, "incoming/a b.xlsx", [passenger(1)])
    queue.put(StorageEvent((obj,)))
    queue.put(decode("not json"))
    harness.warehouse.fail_next_load = WarehouseUnavailableError("warehouse down")
    worker = QueueWorker(queue, handler(harness, outcomes), worker_settings(wait_seconds=0))

    worker.run(until_empty=True)

    releases = [r for r in caplog.records if r.name == "application.worker"]
    record = next(r for r in releases if vars(r).get("error_code") == "warehouse_unavailable")
    retry = vars(record)
    assert retry["source"] == obj.uri
    assert retry["attempt"] == 1
    assert retry["delay_seconds"] == queue.released[0][1]
    assert "s3://inbox/incoming/a b.xlsx (attempt 1)" in record.getMessage()
    poison = [r for r in releases if r.error_code == "malformed_event"]  # type: ignore[attr-defined]
    assert poison
    assert all(r.levelno == logging.ERROR for r in poison)
    assert all(r.message_id and isinstance(r.delay_seconds, int) for r in releases)  # type: ignore[attr-defined]
    assert outcomes.statuses() == [(obj.uri, "loaded")]


def test_a_file_the_warehouse_found_older_than_its_loaded_version_is_stale() -> None:
    def sheet(status: Outcome, table: str) -> SheetResult:
        return SheetResult("s3://inbox/incoming/a.xlsx", "S", table, status, load_id="newer")

    now = datetime(2026, 12, 1, 10, 0, 5)
    stale = IngestResult("s3://inbox/incoming/a.xlsx", "v1", (sheet(Outcome.STALE, "t"),))
    mixed = IngestResult(
        "s3://inbox/incoming/a.xlsx",
        "v1",
        (sheet(Outcome.SKIPPED, "t"), sheet(Outcome.STALE, "u"), sheet(Outcome.LOADED, "v")),
    )

    assert outcome_of(stale, started_at=EVENT_TIME, finished_at=now).status is FileStatus.STALE
    # Anything loaded makes the file loaded; stale outranks skipped among the rest.
    assert outcome_of(mixed, started_at=EVENT_TIME, finished_at=now).status is FileStatus.LOADED
    assert (
        outcome_of(
            replace(mixed, sheets=mixed.sheets[:2]), started_at=EVENT_TIME, finished_at=now
        ).status
        is FileStatus.STALE
    )
