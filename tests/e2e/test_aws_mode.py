"""S3 -> SQS -> worker/Lambda -> DuckDB over real HTTP against moto in server mode."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from application.handle_event import HandleEvent
from devtools.demo import BUCKET, create_stack
from devtools.sample import generate_passengers, write_workbook
from domain.events import ObjectCreated
from entrypoints.aws_containers import worker_container
from infrastructure.aws.clients import aws_client
from infrastructure.aws.events import notification, parse_event
from tests.faults.harness import ROOT, wide_workbook

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

    assert stats.deleted >= 3
    assert stats.retried == 0
    assert sorted(uri for uri, status in ledger(db) if status == "loaded") == sorted(
        f"s3://{BUCKET}/{k}" for k in KEYS
    )
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM train_data").fetchone() == (300,)
    assert depth(queue) == 0
    assert depth(dlq) == 0


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
        assert messages is not None  # a queue URL was given
        handled = container.handle_event()
        for message in messages.receive(10, 1):
            handled.execute(HandleEvent(message.event))
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
    from devtools.demo import main

    monkeypatch.chdir(tmp_path)
    # The demo sets the allow-list in its own process's environment; recorded
    # here so it is undone after the test instead of leaking into the next ones.
    monkeypatch.setenv("DATALAKEP_ALLOWED_SOURCES", "")
    assert main(["--warehouse", f"duckdb:///{tmp_path / 'demo.duckdb'}"]) == 0
    out = capsys.readouterr().out
    assert "train_data             5049" in out
    assert "'thirty' is not a number" in out
    assert "messages left in queue and DLQ: 0" in out
    [saved] = (tmp_path / "data" / "demo" / "rejects").glob("*.rejects.xlsx")
    assert saved.name.startswith("late_bookings_April_1912.xlsx.")
    assert str(saved) in out


@dataclass(frozen=True)
class LambdaContext:
    """The one method of Lambda's context object the handler reads."""

    millis_left: int

    def get_remaining_time_in_millis(self) -> int:
        return self.millis_left


@pytest.fixture
def lambda_module(stack: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("DATALAKEP_WAREHOUSE", f"duckdb:///{tmp_path / 'wh.duckdb'}")
    heavy = aws_client("sqs").create_queue(QueueName=HEAVY_QUEUE)["QueueUrl"]
    monkeypatch.setenv("DATALAKEP_WORKER_QUEUE_URL", heavy)
    import entrypoints.lambda_handler as module

    reloaded = importlib.reload(module)
    try:
        yield reloaded
    finally:
        reloaded.container.shutdown_resources()


HEAVY_QUEUE = "datalakep-heavy"


def sqs_record(message_id: str, body: str) -> dict[str, str]:
    return {"eventSource": "aws:sqs", "messageId": message_id, "body": body}


def test_one_bad_record_fails_only_itself_in_a_lambda_sqs_batch(
    lambda_module: Any, tmp_path: Path
) -> None:
    upload(tmp_path, "incoming/good.xlsx", start=1)
    aws_client("s3").put_object(Bucket=BUCKET, Key="incoming/corrupt.xlsx", Body=b"PK\x03\x04no")
    nested = "[" * 100_000 + "]" * 100_000
    infinite = notification(ObjectCreated(BUCKET, "incoming/good.xlsx"))
    infinite = infinite.replace('"key"', '"size": 1e999, "key"')
    records = [
        sqs_record("nested", nested),
        sqs_record("corrupt", notification(ObjectCreated(BUCKET, "incoming/corrupt.xlsx"))),
        sqs_record("infinite", infinite),
        sqs_record("good", notification(ObjectCreated(BUCKET, "incoming/good.xlsx"))),
    ]

    response = lambda_module.handler({"Records": records}, LambdaContext(600_000))

    # The corrupt file is terminal: recorded, reported and acknowledged, never retried.
    assert response == {"batchItemFailures": [{"itemIdentifier": "nested"},
                                              {"itemIdentifier": "infinite"}]}  # fmt: skip
    history = lambda_module.container.warehouse().history()
    assert sorted((e.source_uri, e.status.value) for e in history) == [
        (f"s3://{BUCKET}/incoming/corrupt.xlsx", "failed"),
        (f"s3://{BUCKET}/incoming/good.xlsx", "loaded"),
    ]
    reports = aws_client("s3").list_objects_v2(Bucket=BUCKET, Prefix="rejects/incoming/")
    assert [Path(o["Key"]).name.split(".")[0] for o in reports["Contents"]] == ["corrupt"] * 2


def test_a_lambda_short_of_time_hands_the_file_to_the_worker_queue(
    lambda_module: Any, tmp_path: Path
) -> None:
    upload(tmp_path, "incoming/late.xlsx", start=1)
    event = json.loads(notification(ObjectCreated(BUCKET, "incoming/late.xlsx")))

    summary = lambda_module.handler(event, LambdaContext(2_000))

    assert summary["forwarded"] == [f"s3://{BUCKET}/incoming/late.xlsx"]
    heavy = aws_client("sqs").get_queue_url(QueueName=HEAVY_QUEUE)["QueueUrl"]
    [sent] = aws_client("sqs").receive_message(QueueUrl=heavy, WaitTimeSeconds=1)["Messages"]
    assert [o.uri for o in parse_event(sent["Body"]).objects] == summary["forwarded"]


# The runtime's log handler stands in as basicConfig; the handler sets the level.
LAMBDA = "import json, logging, sys; logging.basicConfig(); " \
    "import entrypoints.lambda_handler as h; " \
    "print(json.dumps(h.handler(json.loads(sys.argv[1]), None)))"  # fmt: skip


@pytest.mark.parametrize("worker_queue", [True, False])
def test_a_lambda_with_a_small_tmp_hands_off_or_refuses_the_file_and_never_crashes(
    stack: tuple[str, str], tmp_path: Path, worker_queue: bool
) -> None:
    # /tmp as Lambda's, but 4 MB; no usable /dev/shm. The workbook is 1 MB, its rows
    # about 5 MB as Arrow: more than this /tmp holds.
    path = wide_workbook(tmp_path / "wide.xlsx", 20_000)
    aws_client("s3").upload_file(str(path), BUCKET, "incoming/wide.xlsx")
    small, db = tmp_path / "tmp", tmp_path / "wh.duckdb"
    small.mkdir()
    heavy = aws_client("sqs").create_queue(QueueName=HEAVY_QUEUE)["QueueUrl"]
    env = {**os.environ, "TMPDIR": str(small), "DATALAKEP_WAREHOUSE": f"duckdb:///{db}"}
    env.pop("DATALAKEP_WORKER_QUEUE_URL", None)
    if worker_queue:
        env["DATALAKEP_WORKER_QUEUE_URL"] = heavy
    event = notification(ObjectCreated(BUCKET, "incoming/wide.xlsx"))
    script = (
        f"mount -t tmpfs -o size=4m tmpfs {small} && mount -t tmpfs -o size=1m tmpfs /dev/shm"
        ' && "$@"; rc=$?; ls -A "$TMPDIR"; exit $rc'
    )

    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", script, "sh", sys.executable, "-c", LAMBDA, event],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    # stdout: the function's JSON log and EMF records, its summary, then `ls` of /tmp.
    lines = done.stdout.splitlines()
    emitted = ('{"timestamp"', '{"_aws"')
    records = [json.loads(line) for line in lines if line.startswith(emitted[0])]
    summary_line, *left = [line for line in lines if not line.startswith(emitted)]
    summary = json.loads(summary_line)
    uri = f"s3://{BUCKET}/incoming/wide.xlsx"
    assert left == []  # nothing stays in /tmp
    [outcome] = [r for r in records if r["logger"] == "datalakep.outcome"]
    assert outcome["source"] == uri
    if worker_queue:
        assert summary["forwarded"] == [uri]
        assert "MB of scratch" in outcome["reason"]
        assert outcome["status"] == "handed_off"
        assert depth(heavy) == 1
    else:
        assert summary["forwarded"] == []
        assert summary["files"] == [uri]
        with duckdb.connect(str(db), read_only=True) as con:
            [(status, error)] = con.execute(
                "SELECT status, error FROM datalakep_load_ledger"
            ).fetchall()
        assert status == "failed"
        assert "MB of scratch space" in error
        assert outcome["status"] == "failed"
