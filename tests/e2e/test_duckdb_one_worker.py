"""Two `datalakep worker` processes on one DuckDB file: the second stops at once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from devtools.demo import BUCKET, create_stack
from infrastructure.aws.clients import aws_client
from tests.conftest import CONFIG

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).parents[2]


def _worker(queue: str, config: Path, database: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "entrypoints.cli", "worker", "--queue-url", queue,
         "--config", str(config), "--warehouse", f"duckdb:///{database}"],
        cwd=ROOT, env={**os.environ, "DATALAKEP_ALLOWED_SOURCES": f"{BUCKET}/incoming/"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _counts(queue: str) -> tuple[int, int]:
    attributes = aws_client("sqs").get_queue_attributes(
        QueueUrl=queue,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


def test_a_second_worker_on_one_duckdb_file_exits_2_consuming_nothing(
    aws: str, tmp_path: Path
) -> None:
    first_queue, _ = create_stack()
    second_queue = aws_client("sqs").create_queue(QueueName="second")["QueueUrl"]
    aws_client("sqs").send_message(QueueUrl=second_queue, MessageBody='{"Records": []}')
    config = yaml.safe_load(CONFIG.read_text())
    config["worker"]["wait_seconds"] = 1
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    database = tmp_path / "one.duckdb"
    holder = _worker(first_queue, path, database)
    try:
        deadline = time.monotonic() + 30
        while not database.exists() and holder.poll() is None:
            assert time.monotonic() < deadline, "the first worker never opened the file"
            time.sleep(0.1)
        started = time.monotonic()
        second = _worker(second_queue, path, database)
        out, err = second.communicate(timeout=30)
        took = time.monotonic() - started
        assert holder.poll() is None  # the first one carries on
    finally:
        holder.terminate()
        holder.communicate(timeout=30)

    assert second.returncode == 2, err
    assert "DuckDB allows one writer" in err
    assert "PostgreSQL or Redshift" in err
    assert str(database) in err
    assert out == ""
    assert took < 15  # start-up only: no poll, no retry
    assert _counts(second_queue) == (1, 0)  # its message was never received
