"""S3 -> SQS -> worker/Lambda -> DuckDB over real HTTP against moto in server mode."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from application.handle_event import HandleEvent
from entrypoints.containers import worker_container
from entrypoints.demo import BUCKET, create_stack
from infrastructure.aws.clients import aws_client
from infrastructure.sample import generate_passengers, write_workbook

pytestmark = pytest.mark.e2e

KEYS = ["incoming/with space.xlsx", "incoming/plus+sign.xlsx", "incoming/Übersicht ß.xlsx"]


@pytest.fixture
def stack(aws: str, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    monkeypatch.setenv("DATALAKEP_ALLOWED_SOURCES", f"{BUCKET}/incoming/")
    return create_stack(visibility_timeout=30, max_receive_count=2)


def upload(tmp_path: Path, key: str, start: int, rows: int = 100) -> None:
    path = tmp_path / f"{start}.xlsx"
    write_workbook(generate_passengers("train_data", rows, seed=start, start_id=start), path)
    aws_client("s3").upload_file(str(path), BUCKET, key)


def run_worker(queue_url: str, db: Path) -> Any:
    container = worker_container(queue_url, None, f"duckdb:///{db}")
    container.config.worker.wait_seconds.from_value(1)
    try:
        return container.worker().run(until_empty=True)
    finally:
        container.shutdown_resources()


def ledger(db: Path) -> list[tuple[str, str]]:
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "SELECT source_uri, status FROM datalakep_load_ledger ORDER BY finished_at"
        ).fetchall()
    return [(str(a), str(b)) for a, b in rows]


def depth(url: str) -> int:
    attributes = aws_client("sqs").get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(v) for v in attributes.values())


def test_notifications_flow_into_duckdb_with_awkward_keys(
    stack: tuple[str, str], tmp_path: Path
) -> None:
    queue, dlq = stack
    for number, key in enumerate(KEYS):
        upload(tmp_path, key, start=1 + 100 * number)
    db = tmp_path / "wh.duckdb"

    stats = run_worker(queue, db)

    assert stats.deleted >= 3 and stats.retried == 0
    assert sorted(uri for uri, status in ledger(db) if status == "loaded") == sorted(
        f"s3://{BUCKET}/{k}" for k in KEYS
    )
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM train_data").fetchone() == (300,)
    assert depth(queue) == 0 and depth(dlq) == 0


def test_a_crash_before_delete_redelivers_and_the_reload_is_a_skip(
    stack: tuple[str, str], tmp_path: Path
) -> None:
    queue, _ = stack
    upload(tmp_path, KEYS[0], start=1)
    db = tmp_path / "wh.duckdb"
    container = worker_container(queue, None, f"duckdb:///{db}")
    try:
        # Process one message fully but "crash" before deleting it.
        messages = container.messages()
        handled = container.handle_event()
        for message in messages.receive(10, 1):
            handled.execute(HandleEvent(message.body))
            messages.release(message, 0)  # the visibility timeout runs out
    finally:
        container.shutdown_resources()

    run_worker(queue, db)

    assert [s for _, s in ledger(db)] == ["loaded", "skipped"]
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM train_data").fetchone() == (100,)
    assert depth(queue) == 0


def test_a_poison_message_reaches_the_dlq_without_blocking_others(
    stack: tuple[str, str], tmp_path: Path
) -> None:
    queue, dlq = stack
    aws_client("sqs").send_message(QueueUrl=queue, MessageBody="{not json")
    upload(tmp_path, KEYS[1], start=1)
    db = tmp_path / "wh.duckdb"
    container = worker_container(queue, None, f"duckdb:///{db}")
    container.config.worker.wait_seconds.from_value(1)
    container.config.worker.poison_backoff_s.from_value(0)
    worker = container.worker()
    try:
        for _ in range(4):
            worker.run(until_empty=True)
    finally:
        container.shutdown_resources()

    assert [s for _, s in ledger(db)] == ["loaded"]
    assert depth(queue) == 0
    body = aws_client("sqs").receive_message(QueueUrl=dlq, WaitTimeSeconds=1)["Messages"][0]["Body"]
    assert body == "{not json"


def test_lambda_handles_sqs_batches_direct_events_and_hands_off_heavy_files(
    stack: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue, _ = stack
    worker_queue = aws_client("sqs").create_queue(QueueName="heavy")["QueueUrl"]
    db = tmp_path / "wh.duckdb"
    monkeypatch.setenv("DATALAKEP_WAREHOUSE", f"duckdb:///{db}")
    monkeypatch.setenv("DATALAKEP_WORKER_QUEUE_URL", worker_queue)
    upload(tmp_path, KEYS[0], start=1)
    upload(tmp_path, KEYS[2], start=101, rows=3000)
    import entrypoints.lambda_handler as module

    lambda_module = importlib.reload(module)
    lambda_module.container.config.aws.heavy_file_bytes.from_value(50_000)
    try:
        sqs = aws_client("sqs")
        received = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        records = [
            {"eventSource": "aws:sqs", "messageId": m["MessageId"], "body": m["Body"]}
            for m in received["Messages"]
        ]
        records.append({"eventSource": "aws:sqs", "messageId": "poison", "body": "nope"})

        response = lambda_module.handler({"Records": records}, None)

        assert response == {"batchItemFailures": [{"itemIdentifier": "poison"}]}
        forwarded = sqs.receive_message(QueueUrl=worker_queue, WaitTimeSeconds=1)["Messages"]
        assert [json.loads(m["Body"])["Records"][0]["s3"]["object"]["key"] for m in forwarded] == [
            "incoming/%C3%9Cbersicht+%C3%9F.xlsx"
        ]
        direct = json.loads(forwarded[0]["Body"])
        lambda_module.container.config.aws.heavy_file_bytes.from_value(None)
        summary = lambda_module.handler(direct, None)
        assert summary["rows_loaded"] == 3000
    finally:
        lambda_module.container.shutdown_resources()
    assert sorted(s for _, s in ledger(db)) == ["loaded", "loaded"]


def test_the_demo_command_runs_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from entrypoints.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATALAKEP_ALLOWED_SOURCES", raising=False)
    assert main(["demo", "--warehouse", f"duckdb:///{tmp_path / 'demo.duckdb'}"]) == 0
    out = capsys.readouterr().out
    assert "train_data             5049" in out
    assert "'thirty' is not a number" in out
    assert "messages left in queue and DLQ: 0" in out
    [saved] = (tmp_path / "data" / "demo" / "rejects").glob("*.rejects.xlsx")
    assert saved.name.startswith("late_bookings_April_1912.xlsx.")
    assert str(saved) in out
