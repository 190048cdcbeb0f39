"""``python -m devtools.demo``: the whole AWS path on one machine, with moto as AWS.

S3 bucket -> ObjectCreated notification -> SQS queue (with a DLQ) -> the
worker -> the embedded DuckDB warehouse. Nothing leaves 127.0.0.1. A developer
tool of the source checkout (scripts/demo), so not a ``datalakep`` command:
the wheel and the image carry no devtools.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any, TextIO

from domain.ledger import LoadStatus

BUCKET = "datalakep-demo"
PREFIX = "incoming/"
# Beside the demo's warehouse (data/demo/warehouse.duckdb), under the working directory.
REPORTS = Path("data") / "demo" / "rejects"
DEMO_WAREHOUSE = "duckdb:///data/demo/warehouse.duckdb"


@contextmanager
def local_aws() -> Iterator[str]:
    """moto in server mode on a free loopback port, with the AWS environment set."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        raise SystemExit(
            "the demo needs moto[server]: pip install -e '.[demo]' (scripts/demo does)"
        ) from None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    # moto keeps its state per process, not per server: start from nothing.
    import urllib.request

    urllib.request.urlopen(
        urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=10
    ).close()
    saved = {k: os.environ.get(k) for k in _ENV}
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "demo",
            "AWS_SECRET_ACCESS_KEY": "demo",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )

    try:
        yield endpoint
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


_ENV = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")


def create_stack(visibility_timeout: int = 60, max_receive_count: int = 5) -> tuple[str, str]:
    """Bucket, queue with DLQ, and the S3 -> SQS notification. Returns (queue, dlq) URLs."""
    from infrastructure.aws.clients import aws_client

    s3, sqs = aws_client("s3"), aws_client("sqs")
    s3.create_bucket(Bucket=BUCKET)
    dlq_url = sqs.create_queue(QueueName="datalakep-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}
    queue_url = sqs.create_queue(
        QueueName="datalakep-inbox",
        Attributes={
            "VisibilityTimeout": str(visibility_timeout),
            "RedrivePolicy": json.dumps(redrive),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    s3.put_bucket_notification_configuration(
        Bucket=BUCKET,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": queue_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": PREFIX}]}},
                }
            ]
        },
    )
    return queue_url, dlq_url


def sample_files(directory: Path) -> list[tuple[Path, str]]:
    """The demo's uploads: (local file, object key)."""
    from devtools.sample import generate_passengers, write_workbook

    files = []
    for table, rows, start, name in (
        ("train_data", 5000, 1, "train.xlsx"),
        ("test_data", 2000, 5001, "test.xlsx"),
        ("gender_submission", 2000, 5001, "gender_submission.csv"),
    ):
        path = directory / name
        write_workbook(generate_passengers(table, rows, seed=1, start_id=start), path)
        files.append((path, PREFIX + name))
    late = directory / "late.xlsx"
    _late_bookings(late)
    files.append((late, PREFIX + "late bookings April 1912.xlsx"))
    return files


def _late_bookings(path: Path) -> None:
    """A workbook a person might send: a title row, a few bad cells, a repeated key."""
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Late bookings"
    sheet.append(["Late bookings, April 1912"])
    sheet.append(["PassengerId", "Survived", "Pclass", "Name", "Sex", "Age",
                  "SibSp", "Parch", "Ticket", "Fare", "Cabin", "Embarked"])  # fmt: skip
    for i in range(50):
        sheet.append([9000 + i, i % 2, 3, f"Doe, Mr. John {i}", "male", 30, 0, 0, "A/5 1",
                      7.25, None, "S"])  # fmt: skip
    sheet.append([9050, 1, 2, "Roe, Mrs. Jane", "female", "thirty", 0, 0, "B 2", 13, None, "C"])
    sheet.append([9051, 0, 4, "Poe, Mr. Edgar", "male", 40, 0, 0, "C 3", 8.05, None, "X"])
    sheet.append([9005, 0, 3, "Doe, Mr. Duplicate", "male", 31, 0, 0, "A/5 2", 7.25, None, "S"])
    book.save(path)


def run_demo(warehouse_url: str, config_file: str | None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    import logging

    from entrypoints.aws_containers import worker_container
    from infrastructure.aws.clients import aws_client

    # moto's web server logs every request; the demo's own output is the story.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with local_aws() as endpoint:
        out.write(f"moto (local AWS) on {endpoint}\n")
        queue_url, dlq_url = create_stack()
        out.write(f"bucket s3://{BUCKET}, queue {queue_url} (DLQ after 5 receives)\n\n")
        work = Path(tempfile.mkdtemp(prefix="datalakep-demo-"))
        s3 = aws_client("s3")  # made after local_aws() points the environment at moto
        try:
            for path, key in sample_files(work):
                s3.upload_file(str(path), BUCKET, key)
                out.write(f"uploaded s3://{BUCKET}/{key}\n")
        finally:
            shutil.rmtree(work, ignore_errors=True)
        os.environ["DATALAKEP_ALLOWED_SOURCES"] = f"{BUCKET}/{PREFIX}"
        container = worker_container(queue_url, config_file, warehouse_url)
        container.config.worker.wait_seconds.from_value(1)
        # The demo prints a summary for a person; EMF records are for CloudWatch.
        container.config.metrics.from_value(False)
        try:
            stats = container.worker().run(until_empty=True)
            counts = _table_counts(container)
        finally:
            container.shutdown_resources()
        out.write(
            f"\nworker: {stats.received} messages, {stats.deleted} deleted after commit, "
            f"{stats.retried} left for retry, {stats.rows_loaded} rows loaded\n\n"
        )
        out.write(f"rows per table in {warehouse_url}:\n")
        for table, count in counts.items():
            out.write(f"  {table:<20} {count:>6}\n")
        s3 = aws_client("s3")
        reports = s3.list_objects_v2(Bucket=BUCKET, Prefix="rejects/").get("Contents", [])
        out.write("\nrejects reports (the .xlsx highlights each bad cell):\n")
        for obj in reports:
            out.write(f"  s3://{BUCKET}/{obj['Key']}\n")
        for obj in reports:
            if obj["Key"].endswith(".csv"):
                body = s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read().decode()
                out.write(f"\n{obj['Key']}:\n{body}")
        # moto's bucket goes away with the demo: keep the workbooks where a person can open them.
        saved = _save_locally(s3, [o["Key"] for o in reports if o["Key"].endswith(".xlsx")])
        if saved:
            out.write("\nopen the annotated workbook, fix the red cells, and load it again:\n")
            for path in saved:
                out.write(f"  {path}\n")
            out.write(f"  datalakep ingest '{saved[0]}' --warehouse {warehouse_url}\n")
        left = _queue_depth(queue_url) + _queue_depth(dlq_url)
        out.write(f"\nmessages left in queue and DLQ: {left}\n")
    return 0 if stats.retried == 0 else 1


def _save_locally(s3: Any, keys: list[str]) -> list[Path]:
    REPORTS.mkdir(parents=True, exist_ok=True)
    saved = []
    for key in keys:
        path = REPORTS / PurePosixPath(key).name
        s3.download_file(BUCKET, key, str(path))
        saved.append(path.absolute())
    return saved


def _table_counts(container: Any) -> dict[str, int]:
    """Rows loaded per table, from the ledger: the port has no table reads."""
    counts = {contract.name: 0 for contract in container.catalog()}
    for entry in container.warehouse().history():
        if entry.status is LoadStatus.LOADED and entry.table in counts:
            counts[entry.table] += entry.rows_loaded
    return counts


def _queue_depth(url: str) -> int:
    from infrastructure.aws.clients import aws_client

    attributes = aws_client("sqs").get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(v) for v in attributes.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.demo",
        description="local AWS (moto): S3 -> SQS -> worker -> DuckDB, end to end",
    )
    parser.add_argument("--config", metavar="FILE", help="config YAML (default: $DATALAKEP_CONFIG)")
    parser.add_argument("--warehouse", metavar="URL", help=f"default: a fresh {DEMO_WAREHOUSE}")
    args = parser.parse_args(argv)
    url = args.warehouse
    if url is None:
        # A fresh warehouse each time, so the demo always shows loads, not skips.
        Path(DEMO_WAREHOUSE.removeprefix("duckdb:///")).unlink(missing_ok=True)
        url = DEMO_WAREHOUSE
    return run_demo(url, args.config)


if __name__ == "__main__":
    raise SystemExit(main())
