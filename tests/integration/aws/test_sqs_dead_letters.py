"""SqsDeadLetterQueue: a peek sees every message once and leaves them all in the queue."""

from __future__ import annotations

from typing import Any

import pytest

from domain.errors import TransientError
from domain.events import ObjectCreated
from infrastructure.aws.clients import aws_client
from infrastructure.aws.events import decode, notification
from infrastructure.aws.sqs_messages import SqsDeadLetterQueue

pytestmark = pytest.mark.integration


def make_queue(name: str) -> str:
    return str(aws_client("sqs").create_queue(QueueName=name)["QueueUrl"])


def drain(url: str) -> list[str]:
    """Every body receivable now, each once (hidden for 60 s once received)."""
    sqs, bodies = aws_client("sqs"), list[str]()
    while True:
        got = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60, WaitTimeSeconds=0
        ).get("Messages", [])
        if not got:
            return sorted(bodies)
        bodies += [m["Body"] for m in got]


def test_a_peek_sees_every_message_once_and_hands_them_all_back(aws: str) -> None:
    url = make_queue("dlq")
    events = [ObjectCreated("inbox", f"incoming/{n:02d}.xlsx") for n in range(25)]
    bodies = sorted(notification(e) for e in events)  # more than one receive brings
    for body in bodies:
        aws_client("sqs").send_message(QueueUrl=url, MessageBody=body)
    dlq = SqsDeadLetterQueue(url, hold_seconds=60)

    peeked = dlq.peek()

    assert sorted(o.key for m in peeked for o in m.event.objects) == [e.key for e in events]
    assert len({m.id for m in peeked}) == 25
    # Visible again at once, not after the 60 s hold.
    assert drain(url) == bodies


def test_a_second_peek_sees_the_same_messages(aws: str) -> None:
    url = make_queue("dlq")
    aws_client("sqs").send_message(QueueUrl=url, MessageBody="{poison")
    dlq = SqsDeadLetterQueue(url, hold_seconds=120)

    first, second = dlq.peek(), dlq.peek()

    assert [m.event for m in first] == [m.event for m in second] == [decode("{poison")]
    assert [m.id for m in first] == [m.id for m in second]


def test_an_empty_queue_peeks_as_nothing(aws: str) -> None:
    assert SqsDeadLetterQueue(make_queue("dlq"), hold_seconds=120).peek() == []


class _RedeliveringClient:
    """Delivers the same message on every receive, as SQS does once a hold runs out."""

    def __init__(self) -> None:
        self.handed_back: list[str] = []

    def receive_message(self, **_: Any) -> dict[str, Any]:
        return {"Messages": [{"MessageId": "m-1", "Body": "{}", "ReceiptHandle": "r-1"}]}

    def change_message_visibility_batch(self, **request: Any) -> dict[str, Any]:
        self.handed_back += [e["ReceiptHandle"] for e in request["Entries"]]
        return {"Successful": [{"Id": e["Id"]} for e in request["Entries"]], "Failed": []}


def test_a_message_seen_twice_means_an_incomplete_view_and_still_hands_back() -> None:
    client = _RedeliveringClient()
    dlq = SqsDeadLetterQueue("https://sqs.example/dlq", client=client, hold_seconds=5)

    with pytest.raises(TransientError, match="5 s hold") as raised:
        dlq.peek()

    assert raised.value.code == "dlq_peek_incomplete"
    assert client.handed_back == ["r-1"]
