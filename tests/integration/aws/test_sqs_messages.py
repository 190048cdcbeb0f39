from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import pytest

from application.ports import Message
from domain.errors import TerminalError, TransientError
from domain.events import ObjectCreated, StorageEvent
from infrastructure.aws.clients import aws_client
from infrastructure.aws.sqs_messages import SqsMessageSource

pytestmark = pytest.mark.integration

# The key stands for a body: neither may reach a log line.
EVENT = ObjectCreated("inbox", "incoming/body-8f3a.xlsx", size=10)


def make_queue(name: str, **attributes: str) -> str:
    return str(aws_client("sqs").create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])


def count_calls(client: Any, operation: str) -> list[float]:
    calls: list[float] = []
    client.meta.events.register(
        f"before-call.sqs.{operation}", lambda **_: calls.append(time.monotonic())
    )
    return calls


def test_send_receive_release_delete(aws: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    source = SqsMessageSource(make_queue("work"), visibility_timeout=30)
    source.send(EVENT)

    [first] = source.receive(wait_seconds=0)
    assert source.receive(wait_seconds=0) == []
    source.release(first, 0)
    [again] = source.receive(wait_seconds=0)
    source.delete(again)

    assert (first.event.objects, first.receive_count) == ((EVENT,), 1)
    assert (again.id, again.receive_count) == (first.id, 2)
    assert again.receipt != first.receipt
    assert source.receive(wait_seconds=0) == []
    assert "body-8f3a" not in caplog.text
    assert again.receipt not in caplog.text


def test_a_release_with_a_delay_hides_the_message_until_then(aws: str) -> None:
    source = SqsMessageSource(make_queue("work"), visibility_timeout=30)
    source.send(EVENT)
    [message] = source.receive(wait_seconds=0)

    source.release(message, 2)
    started = time.monotonic()
    assert source.receive(wait_seconds=1) == []
    assert time.monotonic() - started >= 0.9  # the long poll did wait


def test_keep_alive_outlasts_the_visibility_timeout(aws: str) -> None:
    url = make_queue("work", VisibilityTimeout="2")
    source = SqsMessageSource(url, visibility_timeout=2, heartbeat_every=0.5)
    other = SqsMessageSource(url, client=_fresh_client(), visibility_timeout=2)
    beats = count_calls(source.client, "ChangeMessageVisibility")
    source.send(EVENT)
    [message] = source.receive(wait_seconds=0)

    with source.keep_alive(message):
        time.sleep(3.5)
        stolen = other.receive(wait_seconds=0)
        exiting = time.monotonic()
    exited = time.monotonic()

    assert stolen == []
    assert exited - exiting < 0.3  # stopped at once, not at the next beat
    assert len(beats) >= 4  # immediately, then every 0.5 s
    assert not [t for t in threading.enumerate() if t.name.startswith("sqs-heartbeat")]
    source.release(message, 0)
    [back] = other.receive(wait_seconds=0)
    assert back.id == message.id


def test_a_heartbeat_on_an_invalid_receipt_stops_quietly(
    aws: str, caplog: pytest.LogCaptureFixture
) -> None:
    source = SqsMessageSource(make_queue("work"), visibility_timeout=2, heartbeat_every=0.1)
    beats = count_calls(source.client, "ChangeMessageVisibility")
    bogus = Message(id="m-1", event=StorageEvent(), receipt="receipt-77c1")

    with caplog.at_level(logging.WARNING), source.keep_alive(bogus):
        time.sleep(0.35)

    assert len(beats) == 1
    assert "m-1" in caplog.text
    assert "ReceiptHandleIsInvalid" in caplog.text
    assert "receipt-77c1" not in caplog.text
    assert "body-8f3a" not in caplog.text


def test_messages_received_too_often_move_to_the_dead_letter_queue(aws: str) -> None:
    sqs = aws_client("sqs")
    dlq_url = make_queue("work-dlq")
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2})
    source = SqsMessageSource(make_queue("work", RedrivePolicy=policy), visibility_timeout=30)
    dlq = SqsMessageSource(dlq_url, visibility_timeout=30)
    source.send(EVENT)

    counts = []
    for _ in range(2):
        [message] = source.receive(wait_seconds=0)
        counts.append(message.receive_count)
        source.release(message, 0)

    assert counts == [1, 2]
    assert source.receive(wait_seconds=0) == []
    [dead] = dlq.receive(wait_seconds=0)
    assert (dead.id, dead.event.objects) == (message.id, (EVENT,))


def test_sqs_errors_are_classified(aws: str) -> None:
    missing = SqsMessageSource(f"{aws}/123456789012/no-such-queue", visibility_timeout=30)
    with pytest.raises(TerminalError) as caught:
        missing.send(EVENT)
    assert caught.value.code == "sqs_error"

    dead = SqsMessageSource(
        "http://127.0.0.1:9/1/q", client=_fresh_client("http://127.0.0.1:9"), visibility_timeout=30
    )
    with pytest.raises(TransientError):
        dead.receive(wait_seconds=0)


def _fresh_client(endpoint: str | None = None) -> Any:
    """A client of its own, as another worker process would have."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "sqs",
        endpoint_url=endpoint,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=1),
    )
