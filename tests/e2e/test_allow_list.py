"""Events outside the allowed sources never reach S3, in the Lambda and in the worker.

Every object named by a foreign event exists and is readable, so "nothing was
read" can only mean the allow-list stopped it. S3 requests are counted on the
very client the container's file source uses (botocore's ``before-send.s3``).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import unquote

import pytest
import yaml

from devtools.demo import BUCKET, PREFIX, create_stack
from devtools.sample import generate_passengers, write_workbook
from domain.events import ObjectCreated
from domain.ledger import LoadStatus
from entrypoints.aws_containers import AwsCore, worker_container
from infrastructure.aws.clients import aws_client
from infrastructure.aws.events import notification
from infrastructure.aws.s3_files import S3FileSource
from tests.conftest import CONFIG

pytestmark = pytest.mark.e2e

OTHER_BUCKET = "someone-elses-bucket"
ALLOWED = ObjectCreated(BUCKET, f"{PREFIX}allowed.xlsx")
FOREIGN = [
    ObjectCreated(BUCKET, "outside/train.xlsx"),  # another prefix of the allowed bucket
    ObjectCreated(BUCKET, "incoming-archive/train.xlsx"),  # a look-alike prefix
    ObjectCreated(BUCKET, "Incoming/train.xlsx"),  # keys, and so prefixes, are case-sensitive
    ObjectCreated(OTHER_BUCKET, f"{PREFIX}train.xlsx"),  # the allowed prefix, another bucket
]


@dataclass
class S3Requests:
    """Every HTTP request a botocore S3 client sends, by URL (decoded)."""

    urls: list[str] = field(default_factory=list)

    def __call__(self, request: Any, **_: Any) -> None:
        self.urls.append(unquote(request.url))

    def naming(self, obj: ObjectCreated) -> list[str]:
        return [url for url in self.urls if f"/{obj.bucket}/{obj.key}" in url]


@pytest.fixture
def stack(aws: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[str, str]:
    monkeypatch.setenv("DATALAKEP_ALLOWED_SOURCES", f"{BUCKET}/{PREFIX}")
    monkeypatch.setenv("DATALAKEP_WAREHOUSE", f"duckdb:///{tmp_path / 'wh.duckdb'}")
    queue, dlq = create_stack(visibility_timeout=30, max_receive_count=2)
    s3 = aws_client("s3")
    s3.create_bucket(Bucket=OTHER_BUCKET)
    for number, obj in enumerate([ALLOWED, *FOREIGN]):
        path = tmp_path / f"{number}.xlsx"
        write_workbook(generate_passengers("train_data", 20, seed=number, start_id=1), path)
        s3.upload_file(str(path), obj.bucket, obj.key)
    return queue, dlq


@contextmanager
def counting_s3(container: AwsCore) -> Iterator[S3Requests]:
    requests = S3Requests()
    files = container.files()
    assert isinstance(files, S3FileSource)
    client = files.client
    client.meta.events.register("before-send.s3", requests)
    try:
        yield requests
    finally:
        client.meta.events.unregister("before-send.s3", requests)


def s3_event(*objects: ObjectCreated) -> dict[str, Any]:
    return {"Records": [json.loads(notification(o))["Records"][0] for o in objects]}


def loaded_sources(container: AwsCore) -> list[str]:
    """The sources the container's warehouse holds rows of, from its ledger."""
    history = container.warehouse().history()
    return sorted(e.source_uri for e in history if e.status is LoadStatus.LOADED)


@pytest.fixture
def lambda_module(stack: tuple[str, str]) -> Iterator[ModuleType]:
    # The handler builds its container at import, from the environment set above.
    import entrypoints.lambda_handler as module

    reloaded = importlib.reload(module)
    try:
        yield reloaded
    finally:
        reloaded.container.shutdown_resources()


def test_a_direct_event_for_foreign_objects_makes_no_s3_request(
    lambda_module: ModuleType,
) -> None:
    with counting_s3(lambda_module.container) as requests:
        summary = lambda_module.handler(s3_event(*FOREIGN), None)

    assert requests.urls == []
    assert summary["files"] == []
    assert summary["rows_loaded"] == 0
    assert sorted(summary["ignored"]) == sorted(
        f"{o.uri}: not an allowed bucket/prefix" for o in FOREIGN
    )


def test_a_lambda_sqs_batch_reads_only_the_allowed_object(lambda_module: ModuleType) -> None:
    bodies = [
        json.dumps(s3_event(*FOREIGN[:2])),
        json.dumps(s3_event(FOREIGN[2], ALLOWED, FOREIGN[3])),
        # Wrapped by SNS on the way, as a fan-out topic would deliver it.
        json.dumps({"Type": "Notification", "Message": json.dumps(s3_event(*FOREIGN))}),
    ]
    records = [
        {"eventSource": "aws:sqs", "messageId": f"m-{n}", "body": body}
        for n, body in enumerate(bodies)
    ]
    with counting_s3(lambda_module.container) as requests:
        response = lambda_module.handler({"Records": records}, None)

    assert response == {"batchItemFailures": []}
    for obj in FOREIGN:
        assert requests.naming(obj) == [], obj.uri
    assert requests.naming(ALLOWED)  # the allowed event in the same batch was read
    assert len(requests.naming(ALLOWED)) == len(requests.urls)
    assert loaded_sources(lambda_module.container) == [ALLOWED.uri]


def test_the_worker_reads_only_the_allowed_object_and_acks_the_rest(
    stack: tuple[str, str], tmp_path: Path
) -> None:
    queue, dlq = stack
    sqs = aws_client("sqs")
    # Besides the notification S3 itself sent for the allowed upload:
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(s3_event(*FOREIGN)))
    for obj in FOREIGN:
        sqs.send_message(QueueUrl=queue, MessageBody=notification(obj))
    container = worker_container(queue, None, f"duckdb:///{tmp_path / 'wh.duckdb'}")
    container.config.worker.wait_seconds.from_value(1)
    try:
        with counting_s3(container) as requests:
            stats = container.worker().run(until_empty=True)
        loaded = loaded_sources(container)
    finally:
        container.shutdown_resources()

    for obj in FOREIGN:
        assert requests.naming(obj) == [], obj.uri
    assert requests.naming(ALLOWED)
    assert len(requests.naming(ALLOWED)) == len(requests.urls)
    assert loaded == [ALLOWED.uri]
    # Foreign events are acknowledged, not retried into the DLQ (S3's own
    # s3:TestEvent from setting up the notification is among the messages).
    assert stats.received >= 1 + 1 + len(FOREIGN)
    assert (stats.deleted, stats.retried) == (stats.received, 0)
    for url in (queue, dlq):
        attributes = sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        assert sum(int(v) for v in attributes.values()) == 0


@pytest.mark.parametrize("shipped", [[], None])
def test_an_empty_allow_list_stops_the_worker_reconcile_and_the_lambda_init(
    aws: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    shipped: list[Any] | None,
) -> None:
    from domain.errors import ConfigurationError
    from entrypoints.cli import main

    queue, dlq = create_stack()
    config = yaml.safe_load(CONFIG.read_text())
    config["aws"]["sources"] = shipped
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.delenv("DATALAKEP_ALLOWED_SOURCES", raising=False)
    monkeypatch.setenv("DATALAKEP_CONFIG", str(path))
    warehouse = f"duckdb:///{tmp_path / 'wh.duckdb'}"

    worker = main(["worker", "--queue-url", queue, "--until-empty", "--warehouse", warehouse])
    reconcile = main(["reconcile", "--bucket", BUCKET, "--dlq-url", dlq, "--warehouse", warehouse])
    errors = capsys.readouterr().err
    import entrypoints.lambda_handler as module

    with pytest.raises(ConfigurationError) as init:
        importlib.reload(module)

    assert (worker, reconcile) == (2, 2)
    assert errors.count("aws.sources") == 2
    assert errors.count("DATALAKEP_ALLOWED_SOURCES") == 2
    assert "aws.sources" in str(init.value)
    assert "DATALAKEP_ALLOWED_SOURCES" in str(init.value)
    # Nothing was consumed: S3's test event is still waiting.
    attributes = aws_client("sqs").get_queue_attributes(
        QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    assert int(attributes["ApproximateNumberOfMessages"]) == 1


def test_an_event_outside_the_allow_list_is_logged_naming_the_setting(
    lambda_module: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    lambda_module.handler(s3_event(FOREIGN[1]), None)

    [warning] = [
        r for r in caplog.records if r.levelname == "WARNING" and FOREIGN[1].key in r.getMessage()
    ]
    assert "aws.sources" in warning.getMessage()
    assert "DATALAKEP_ALLOWED_SOURCES" in warning.getMessage()
