"""What an operator and an uploader see, from real worker and Lambda processes on moto.

Each process's whole stdout and stderr is read back: every line must be JSON
(log records, EMF metric records, the worker's summary), every file must have
exactly one INFO outcome line, every EMF record must meet the specification,
and the SNS topic must carry one message per file with filterable attributes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools.demo import BUCKET, create_stack
from entrypoints.containers import DEFAULT_CONFIG
from infrastructure.aws.clients import aws_client
from tests.e2e.workbooks import passenger_csv
from tests.support.emf import emf_problems
from tests.unit.conftest import passenger

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = "incoming/ok/"
NAMESPACE = "datalakeP-e2e"

# key -> the outcome its file must have
FILES = {
    "incoming/ok/clean.csv": "loaded",
    "incoming/ok/one bad row.csv": "loaded",
    "incoming/ok/all bad.csv": "rejected",
    "incoming/elsewhere.csv": "ignored",
}


def bodies(start: int, tmp_path: Path) -> dict[str, bytes]:
    def csv_body(rows: list[list[object]]) -> bytes:
        return passenger_csv(tmp_path / "body.csv", rows).read_bytes()

    good = [passenger(start + i) for i in range(10)]
    return {
        "incoming/ok/clean.csv": csv_body(good),
        "incoming/ok/one bad row.csv": csv_body([*good[:9], passenger(start + 9, Sex="?")]),
        "incoming/ok/all bad.csv": csv_body([passenger(start + i, Age="old") for i in range(3)]),
        "incoming/elsewhere.csv": csv_body(good),
    }


def subscribe(topic: str, name: str, raw: bool, policy: dict[str, Any] | None = None) -> str:
    sqs, sns = aws_client("sqs"), aws_client("sns")
    url: str = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    attributes = {"RawMessageDelivery": str(raw).lower()}
    if policy:
        attributes["FilterPolicy"] = json.dumps(policy)
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes=attributes)
    return url


def drain(url: str) -> list[dict[str, Any]]:
    sqs = aws_client("sqs")
    found: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not batch:
            return found
        for message in batch:
            found.append(message)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def run(args: list[str], env: dict[str, str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Run a process; every line it wrote, stdout and stderr, parsed as JSON."""
    done = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    parsed = []
    for stream in (done.stdout, done.stderr):
        lines = stream.splitlines()
        assert all(line.strip() for line in lines)
        parsed.append([json.loads(line) for line in lines])  # raises on any non-JSON line
    return parsed[0], parsed[1]


def outcomes(lines: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    return Counter(
        (line["source"], line["status"])
        for line in lines
        if line.get("logger") == "datalakep.outcome" and line["level"] == "INFO"
    )


@pytest.fixture
def setup(aws: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("DATALAKEP_ALLOWED_SOURCES", f"{BUCKET}/{ALLOWED}")
    queue, _ = create_stack(visibility_timeout=30, max_receive_count=2)
    topic = aws_client("sns").create_topic(Name="datalakep-outcomes")["TopicArn"]
    everything = subscribe(topic, "all-outcomes", raw=False)
    rejections = subscribe(topic, "rejections", raw=True, policy={"status": ["rejected"]})
    config = yaml.safe_load(DEFAULT_CONFIG.read_text())
    config["aws"]["outcome_topic_arn"] = topic
    config["aws"]["outcome_report_url_seconds"] = 600
    config["metrics"] = {"namespace": NAMESPACE}
    config["worker"]["wait_seconds"] = 1
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATALAKEP_CONFIG": str(path),
        "DATALAKEP_WAREHOUSE": f"duckdb:///{tmp_path / 'wh.duckdb'}",
    }
    return {"queue": queue, "all": everything, "rejections": rejections, "env": env}


def check_run(
    stdout: list[dict[str, Any]], stderr: list[dict[str, Any]], uploads: list[str]
) -> list[dict[str, Any]]:
    logs = [line for line in stdout + stderr if "_aws" not in line]
    expected = Counter((f"s3://{BUCKET}/{k}", FILES[k]) for k in uploads)
    assert outcomes(logs) == expected
    emf = [line for line in stdout if "_aws" in line]
    for record in emf:
        assert emf_problems(json.dumps(record)) == []
        assert record["_aws"]["CloudWatchMetrics"][0]["Namespace"] == NAMESPACE
    counted = [k for k in uploads if FILES[k] != "ignored"]
    assert sorted(r["source"] for r in emf) == sorted(f"s3://{BUCKET}/{k}" for k in counted)
    assert all(r["EventLagSeconds"] >= 0 for r in emf)
    return logs


def test_worker_and_lambda_write_json_lines_metrics_and_notifications(
    setup: dict[str, Any], tmp_path: Path
) -> None:
    s3, sqs = aws_client("s3"), aws_client("sqs")
    for key, body in bodies(1, tmp_path).items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)

    # The Lambda, on an SQS event-source batch of every notification.
    received = drain(setup["queue"])
    event = {
        "Records": [
            {
                "eventSource": "aws:sqs",
                "messageId": m["MessageId"],
                "body": m["Body"],
                "attributes": {"ApproximateReceiveCount": "1"},
            }
            for m in received
        ]
        + [
            {
                "eventSource": "aws:sqs",
                "messageId": "poison",
                "body": "not json",
                "attributes": {"ApproximateReceiveCount": "3"},
            }
        ]
    }
    (tmp_path / "event.json").write_text(json.dumps(event))
    invoke = (
        "import json, sys, types\n"
        "import entrypoints.lambda_handler as h\n"
        "event = json.load(open(sys.argv[1]))\n"
        "context = types.SimpleNamespace(aws_request_id='req-42')\n"
        "failed = [{'itemIdentifier': 'poison'}]\n"
        "assert h.handler(event, context) == {'batchItemFailures': failed}\n"
    )
    out, err = run(["-c", invoke, str(tmp_path / "event.json")], setup["env"])
    logs = check_run(out, err, list(FILES))
    # The init's sweep of scratch that killed processes left (other tests' workers)
    # logs before any invocation, so it has no request id; every other line has it.
    invocation = [line for line in logs if line["logger"] != "infrastructure.scratch"]
    assert [line for line in invocation if line.get("aws_request_id") != "req-42"] == []
    assert {line["message_id"] for line in logs if "source" in line} <= {
        m["MessageId"] for m in received
    }
    [retry] = [x for x in logs if x.get("message_id") == "poison" and "attempt" in x]
    assert (retry["level"], retry["attempt"], retry["error_code"]) == (
        "WARNING",
        3,
        "malformed_event",
    )

    # The worker, on the same files uploaded again (new versions, new rows).
    for key, body in bodies(101, tmp_path).items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    out, err = run(
        ["-m", "entrypoints.cli", "worker", "--queue-url", setup["queue"], "--until-empty"],
        setup["env"],
    )
    logs = check_run(out, err, list(FILES))
    worker_ids = {line.get("worker") for line in logs if line.get("logger") == "datalakep.outcome"}
    assert len(worker_ids) == 1
    assert None not in worker_ids
    assert "worker: 4 messages, 4 deleted" in out[-1]["message"]

    # SNS: one message per file outcome of both runs, in its envelope with attributes.
    envelopes = drain(setup["all"])
    messages = [json.loads(e["Body"]) for e in envelopes]
    notes = [json.loads(m["Message"]) for m in messages]
    assert Counter((n["source"], n["status"]) for n in notes) == Counter(
        (f"s3://{BUCKET}/{k}", s) for k, s in FILES.items() for _ in range(2)
    )
    for message, note in zip(messages, notes, strict=True):
        attributes = message["MessageAttributes"]
        assert attributes["status"] == {"Type": "String", "Value": note["status"]}
        assert attributes["table"]["Value"] == (note["table"] or "none")
    one_bad = next(n for n in notes if n["source"].endswith("one bad row.csv"))
    assert (one_bad["rows_loaded"], one_bad["rows_rejected"]) == (9, 1)
    assert [r["column"] for r in one_bad["first_rejects"]] == ["Sex"]
    assert one_bad["rejects_report"].startswith(f"s3://{BUCKET}/rejects/incoming/ok/")
    url = one_bad["rejects_report_url"]
    assert url.startswith("http://127.0.0.1:")  # a presigned URL on the local moto server
    with urllib.request.urlopen(url) as response:  # noqa: S310 - http to moto, checked above
        assert response.read(2) == b"PK"  # the annotated workbook, with no credentials

    # A raw subscription filtered on status gets only the rejections.
    raw = drain(setup["rejections"])
    assert (
        sorted(json.loads(m["Body"])["source"] for m in raw)
        == [f"s3://{BUCKET}/incoming/ok/all bad.csv"] * 2
    )
    assert all(m["MessageAttributes"]["status"]["StringValue"] == "rejected" for m in raw)
    assert (
        sqs.get_queue_attributes(
            QueueUrl=setup["queue"], AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]["ApproximateNumberOfMessages"]
        == "0"
    )
