"""`datalakep reconcile` against moto (S3, SQS with a DLQ) and DuckDB, as an operator runs it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest

from devtools.demo import BUCKET, create_stack
from entrypoints.cli import main
from infrastructure.aws.clients import aws_client
from infrastructure.aws.events import parse_event
from tests.e2e.test_aws_mode import ledger, run_worker, upload

pytestmark = pytest.mark.e2e

INGESTED, DEAD, LOST = "incoming/a.xlsx", "incoming/b dead.xlsx", "incoming/c lost+found ß.xlsx"


@pytest.fixture(params=["unversioned", "versioned"])
def stack(
    request: pytest.FixtureRequest, aws: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, str]:
    monkeypatch.setenv("DATALAKEP_ALLOWED_SOURCES", f"{BUCKET}/incoming/")
    monkeypatch.delenv("DATALAKEP_WORKER_QUEUE_URL", raising=False)
    queue, dlq = create_stack(visibility_timeout=30, max_receive_count=2)
    if request.param == "versioned":
        aws_client("s3").put_bucket_versioning(
            Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"}
        )
    return queue, dlq


def notifications(queue: str, expected: int) -> dict[str, dict[str, Any]]:
    """The queue's S3 notifications by object key, each received (so hidden for 30 s)."""
    sqs, found = aws_client("sqs"), {}
    for _ in range(10):
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in got.get("Messages", []):
            objects = parse_event(message["Body"]).objects
            if not objects:  # s3:TestEvent, sent when the notification was configured
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
            for obj in objects:
                found[obj.key] = message
        if len(found) == expected:
            return found
    raise AssertionError(f"{len(found)} of {expected} notifications arrived: {sorted(found)}")


def as_s3_sends_it(body: str) -> str:
    """The notification with the versionId that S3 puts in it for a versioned bucket.

    moto leaves it out, and the worker would skip an event naming only the ETag
    of an object whose version is a VersionId as stale.
    """
    event = json.loads(body)
    for record in event["Records"]:
        obj = record["s3"]["object"]
        head = aws_client("s3").head_object(Bucket=BUCKET, Key=unquote_plus(obj["key"]))
        if head.get("VersionId"):
            obj["versionId"] = head["VersionId"]
    return json.dumps(event)


def current_version(key: str) -> str:
    head = aws_client("s3").head_object(Bucket=BUCKET, Key=key)
    return str(head.get("VersionId") or head["ETag"].strip('"'))


def drain(url: str) -> list[str]:
    sqs, bodies = aws_client("sqs"), []
    while got := sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60, WaitTimeSeconds=0
    ).get("Messages", []):
        bodies += [m["Body"] for m in got]
    return sorted(bodies)


def reconcile(
    capsys: pytest.CaptureFixture[str], db: Path, dlq: str, *extra: str
) -> tuple[int, list[dict[str, Any]], str]:
    capsys.readouterr()  # drop what ran before (an in-process worker's EMF lines on stdout)
    code = main(
        [
            "reconcile",
            "--bucket",
            BUCKET,
            "--prefix",
            "incoming/",
            "--dlq-url",
            dlq,
            "--warehouse",
            f"duckdb:///{db}",
            "--json",
            *extra,
        ]
    )
    out = capsys.readouterr()
    # The summary is stderr's last line; moto's server logs there too.
    summary = out.err.strip().splitlines()[-1]
    return code, [json.loads(line) for line in out.out.splitlines()], summary


def test_reconcile_finds_the_lost_object_and_enqueue_gets_it_loaded(
    stack: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    queue, dlq = stack
    sqs = aws_client("sqs")
    for number, key in enumerate((INGESTED, DEAD, LOST)):
        upload(tmp_path, key, start=1 + 100 * number, rows=20)
    events = notifications(queue, 3)
    for message in events.values():
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    # INGESTED's goes to the worker; DEAD's ends in the DLQ beside a poison
    # message; LOST's notification is the one S3 dropped.
    dead_body = as_s3_sends_it(events[DEAD]["Body"])
    sqs.send_message(QueueUrl=queue, MessageBody=as_s3_sends_it(events[INGESTED]["Body"]))
    sqs.send_message(QueueUrl=dlq, MessageBody=dead_body)
    sqs.send_message(QueueUrl=dlq, MessageBody="{not json")
    db = tmp_path / "wh.duckdb"
    assert run_worker(queue, db).files == 1

    code, listed, summary = reconcile(capsys, db, dlq)

    lost_uri = f"s3://{BUCKET}/{LOST}"
    assert code == 1
    assert listed == [
        {"source": lost_uri, "version": current_version(LOST), "size": listed[0]["size"],
         "enqueued": False}
    ]  # fmt: skip
    assert listed[0]["size"] > 0
    assert "1 of 3 object(s) missing; 1 in the ledger; 1 in the DLQ (2 message(s), 1 naming" in (
        summary
    )
    assert sorted(uri for uri, _ in ledger(db)) == [f"s3://{BUCKET}/{INGESTED}"]

    code, sent, _ = reconcile(capsys, db, dlq, "--enqueue", "--queue-url", queue)
    stats = run_worker(queue, db)

    assert code == 0
    assert [(s["source"], s["enqueued"]) for s in sent] == [(lost_uri, True)]
    assert stats.files == 1
    assert stats.retried == 0
    assert sorted(ledger(db)) == [
        (f"s3://{BUCKET}/{INGESTED}", "loaded"),
        (lost_uri, "loaded"),
    ]

    code, again, summary = reconcile(capsys, db, dlq)

    assert (code, again) == (0, [])
    assert summary.startswith("0 of 3 object(s) missing; 2 in the ledger; 1 in the DLQ")
    # Three peeks later, the DLQ still holds both messages, visible.
    assert drain(dlq) == sorted([dead_body, "{not json"])


def test_the_table_output_names_the_missing_object(
    stack: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, dlq = stack
    upload(tmp_path, LOST, start=1, rows=5)

    warehouse = f"duckdb:///{tmp_path / 'wh.duckdb'}"
    code = main(["reconcile", "--bucket", BUCKET, "--dlq-url", dlq, "--warehouse", warehouse])

    out = capsys.readouterr().out
    assert code == 1
    assert f"s3://{BUCKET}/{LOST}  {current_version(LOST)}" in out
    assert "1 of 1 object(s) missing" in out
    assert "none sent (--enqueue sends them)" in out


def test_without_a_dlq_or_with_enqueue_but_no_queue_it_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATALAKEP_WORKER_QUEUE_URL", raising=False)
    # Sources allowed, so what is refused is the missing DLQ or queue.
    monkeypatch.setenv("DATALAKEP_ALLOWED_SOURCES", f"{BUCKET}/incoming/")
    warehouse = ["--warehouse", f"duckdb:///{tmp_path / 'wh.duckdb'}"]

    no_dlq = main(["reconcile", "--bucket", BUCKET, *warehouse])
    no_dlq_err = capsys.readouterr().err
    no_queue = main(
        [
            "reconcile",
            "--bucket",
            BUCKET,
            "--dlq-url",
            "http://127.0.0.1:1/q",
            "--enqueue",
            *warehouse,
        ]
    )
    no_queue_err = capsys.readouterr().err

    assert (no_dlq, no_queue) == (2, 2)
    assert "--dlq-url" in no_dlq_err
    assert "worker queue" in no_queue_err
