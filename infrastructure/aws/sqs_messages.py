"""An SQS queue behind the MessageSource port."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from application.ports import Message
from domain.errors import DatalakepError, TerminalError, TransientError
from domain.events import ObjectCreated
from infrastructure.aws.errors import error_code, is_transient
from infrastructure.aws.events import decode, notification

log = logging.getLogger(__name__)

# SQS's own limits; beyond them it refuses the request outright.
MAX_VISIBILITY_SECONDS = 43_200
MAX_WAIT_SECONDS = 20
MAX_BATCH = 10


def _clamp(value: float, low: int, high: int) -> int:
    return int(max(low, min(high, value)))


class SqsMessageSource:
    """Long-polls one queue; a held message is kept invisible by a heartbeat.

    Messages are received with ``visibility_timeout``, so one setting says how
    long a message this worker holds stays hidden, whatever the queue's default;
    ``keep_alive`` renews it every ``heartbeat_every`` seconds (a third of it by
    default) for files that take longer. A worker that dies stops the
    heartbeat, and the message comes back one ``visibility_timeout`` later.

    Bodies and receipt handles are never logged nor put in error messages: a
    receipt is enough to delete a message, and SQS echoes it in its errors.
    """

    def __init__(
        self,
        queue_url: str,
        client: Any | None = None,
        *,
        visibility_timeout: int,
        heartbeat_every: float | None = None,
    ) -> None:
        if not 0 < visibility_timeout <= MAX_VISIBILITY_SECONDS:
            raise ValueError(f"visibility_timeout must be 1..{MAX_VISIBILITY_SECONDS} seconds")
        every = visibility_timeout / 3 if heartbeat_every is None else heartbeat_every
        if not 0 < every < visibility_timeout:
            # A heartbeat as slow as the timeout would let the message reappear between beats.
            raise ValueError("heartbeat_every must be positive and below visibility_timeout")
        self.queue_url = queue_url
        self._client = client
        self._visibility_timeout = visibility_timeout
        self._heartbeat_every = every

    @property
    def client(self) -> Any:
        if self._client is None:
            from infrastructure.aws.clients import aws_client

            self._client = aws_client("sqs")
        return self._client

    # ------------------------------------------------------------- MessageSource

    def receive(self, max_messages: int = 10, wait_seconds: int = 20) -> Sequence[Message]:
        response = self._call(
            "receive",
            self.client.receive_message,
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=_clamp(max_messages, 1, MAX_BATCH),
            WaitTimeSeconds=_clamp(wait_seconds, 0, MAX_WAIT_SECONDS),
            VisibilityTimeout=self._visibility_timeout,
            # The non-deprecated spelling of AttributeNames.
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )
        return [_message(item) for item in response.get("Messages", [])]

    def delete(self, message: Message) -> None:
        self._call(
            "delete",
            self.client.delete_message,
            QueueUrl=self.queue_url,
            ReceiptHandle=message.receipt,
        )

    def release(self, message: Message, delay_seconds: int) -> None:
        self._change_visibility(message, _clamp(delay_seconds, 0, MAX_VISIBILITY_SECONDS))

    def send(self, event: ObjectCreated) -> None:
        body = notification(event)
        self._call("send", self.client.send_message, QueueUrl=self.queue_url, MessageBody=body)

    @contextmanager
    def keep_alive(self, message: Message) -> Iterator[None]:
        stop = threading.Event()
        beat = threading.Thread(
            target=self._heartbeat,
            args=(message, stop),
            name=f"sqs-heartbeat-{message.id}",
            daemon=True,
        )
        beat.start()
        try:
            yield
        finally:
            stop.set()
            # Waited for, not abandoned: a beat landing after the caller's
            # release(0) would hide the message for a whole visibility timeout.
            beat.join()

    # ------------------------------------------------------------- internals

    def _heartbeat(self, message: Message, stop: threading.Event) -> None:
        # The first beat is immediate: the message may have waited in a batch
        # for part of its visibility timeout already.
        pause = 0.0
        while not stop.wait(pause):
            pause = self._heartbeat_every
            try:
                self._change_visibility(message, self._visibility_timeout)
            except TransientError as error:
                log.warning("heartbeat for message %s failed, will retry: %s", message.id, error)
            except TerminalError as error:
                # Receipt invalid, message no longer in flight, queue gone, 12 h
                # limit reached: every later beat would fail the same way.
                log.warning("heartbeat for message %s stopped: %s", message.id, error)
                return
            except Exception as error:  # noqa: BLE001 - the worker must outlive its heartbeat
                log.warning(
                    "heartbeat for message %s failed, will retry: %s",
                    message.id,
                    type(error).__name__,
                )

    def _change_visibility(self, message: Message, seconds: int) -> None:
        self._call(
            "change visibility",
            self.client.change_message_visibility,
            QueueUrl=self.queue_url,
            ReceiptHandle=message.receipt,
            VisibilityTimeout=seconds,
        )

    def _call(self, action: str, operation: Any, **kwargs: Any) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response: dict[str, Any] = operation(**kwargs)
        except ClientError as error:
            raise _sqs_error(error, action) from None
        except BotoCoreError as error:
            raise TransientError(
                f"SQS {action}: queue unreachable ({type(error).__name__})",
                code="sqs_unavailable",
            ) from None
        return response


class SqsDeadLetterQueue:
    """Peeks at a dead-letter queue: every message received, none deleted.

    Each message received stays hidden for ``hold_seconds``, so that the next
    receive brings the ones not yet seen; once a receive brings nothing, all of
    them are handed back at once (visibility 0). Should they come round again
    before that (the hold ran out, as on a DLQ too large to read in time), the
    view cannot be known to be complete: TransientError, with a longer hold to
    try. Each peek adds one to the messages' ApproximateReceiveCount, which
    only matters for a DLQ that has a redrive policy of its own.

    SQS lets 120,000 messages of a standard queue be in flight at once; a
    larger DLQ fails the peek with SQS's OverLimit error.
    """

    def __init__(self, queue_url: str, client: Any | None = None, *, hold_seconds: int) -> None:
        self._queue = SqsMessageSource(queue_url, client, visibility_timeout=hold_seconds)
        self._hold_seconds = hold_seconds

    @property
    def queue_url(self) -> str:
        return self._queue.queue_url

    def peek(self) -> list[Message]:
        seen: dict[str, Message] = {}
        try:
            while batch := self._queue.receive(MAX_BATCH, wait_seconds=1):
                for message in batch:
                    if message.id in seen:
                        raise TransientError(
                            f"SQS peek: message {message.id} came back before the peek ended; "
                            f"the DLQ could not be read within the {self._hold_seconds} s hold",
                            code="dlq_peek_incomplete",
                            hold_seconds=self._hold_seconds,
                        )
                    seen[message.id] = message
        finally:
            self._hand_back(list(seen.values()))
        return list(seen.values())

    def _hand_back(self, messages: Sequence[Message]) -> None:
        failed = 0
        for start in range(0, len(messages), MAX_BATCH):
            chunk = messages[start : start + MAX_BATCH]
            entries = [
                {"Id": str(n), "ReceiptHandle": m.receipt, "VisibilityTimeout": 0}
                for n, m in enumerate(chunk)
            ]
            try:
                response = self._queue._call(
                    "hand back",
                    self._queue.client.change_message_visibility_batch,
                    QueueUrl=self._queue.queue_url,
                    Entries=entries,
                )
            except DatalakepError as error:
                # Not raised: it would hide the peek's own outcome, and these
                # messages reappear by themselves once their hold runs out.
                log.warning(
                    "SQS peek: %d message(s) stay hidden for up to %s s: %s",
                    len(chunk),
                    self._hold_seconds,
                    error,
                )
                continue
            failed += len(response.get("Failed", []))
        if failed:
            log.warning(
                "SQS peek: %d message(s) stay hidden for up to %s s: hand-back refused",
                failed,
                self._hold_seconds,
            )


def _message(item: dict[str, Any]) -> Message:
    attributes = item.get("Attributes", {})
    return Message(
        id=str(item["MessageId"]),
        event=decode(str(item["Body"])),
        receipt=str(item["ReceiptHandle"]),
        receive_count=int(attributes.get("ApproximateReceiveCount", 1)),
    )


def _sqs_error(error: Any, action: str) -> DatalakepError:
    # The code only: SQS error messages quote the receipt handle.
    code = error_code(error)
    if is_transient(error):
        return TransientError(f"SQS {action}: {code}", code="sqs_unavailable", sqs_code=code)
    return TerminalError(f"SQS {action}: {code}", code="sqs_error", sqs_code=code)
