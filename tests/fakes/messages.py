"""An in-memory MessageSource with SQS's delivery semantics, minus the clock.

Time is not simulated: a released message is visible again at once (the delay
is only recorded) and an in-flight message stays in flight until it is deleted
or released. Everything else follows SQS: a new receipt per delivery, a
receive count, and a dead-letter queue once the count passes the limit.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from itertools import count

from application.ports import Message
from domain.errors import TerminalError
from domain.events import ObjectCreated, StorageEvent

# Shared by every instance: a message keeps its id when it moves to a DLQ, as in SQS.
_IDS = count(1)


class InMemoryMessageSource:
    def __init__(
        self, max_receive_count: int | None = None, dlq: InMemoryMessageSource | None = None
    ) -> None:
        self.max_receive_count = max_receive_count
        self.dlq = dlq
        self._visible: dict[str, Message] = {}
        self._in_flight: dict[str, Message] = {}
        self._receipts = count(1)
        self.deleted: list[str] = []
        self.sent: list[ObjectCreated] = []
        self.released: list[tuple[str, int]] = []
        self.heartbeats: list[str] = []
        # Ids under keep_alive right now.
        self.alive: set[str] = set()
        # Ids that passed max_receive_count with no dlq to take them.
        self.dropped: list[str] = []

    # ------------------------------------------------------------- test helpers

    def put(self, event: StorageEvent) -> Message:
        """Enqueue ``event`` as never received; returns the stored message."""
        message = Message(id=f"m-{next(_IDS)}", event=event, receipt="", receive_count=0)
        self._visible[message.id] = message
        return message

    @property
    def visible(self) -> list[Message]:
        return list(self._visible.values())

    @property
    def in_flight(self) -> list[Message]:
        return list(self._in_flight.values())

    def pending(self) -> list[Message]:
        """Every message not yet deleted: visible, then in flight."""
        return [*self._visible.values(), *self._in_flight.values()]

    # ------------------------------------------------------------- MessageSource

    def receive(self, max_messages: int = 10, wait_seconds: int = 20) -> Sequence[Message]:
        received: list[Message] = []
        for message in list(self._visible.values()):
            if len(received) >= max(1, min(max_messages, 10)):
                break
            del self._visible[message.id]
            if (
                self.max_receive_count is not None
                and message.receive_count >= self.max_receive_count
            ):
                self._dead_letter(message)
                continue
            delivered = replace(
                message,
                receipt=f"r-{next(self._receipts)}",
                receive_count=message.receive_count + 1,
            )
            self._in_flight[delivered.id] = delivered
            received.append(delivered)
        return received

    def delete(self, message: Message) -> None:
        if message.id in self.deleted:
            return  # SQS accepts a repeated delete
        self._take(message, "delete")
        self.deleted.append(message.id)

    def release(self, message: Message, delay_seconds: int) -> None:
        held = self._take(message, "release")
        self._visible[held.id] = held
        self.released.append((held.id, delay_seconds))

    @contextmanager
    def keep_alive(self, message: Message) -> Iterator[None]:
        self.heartbeats.append(message.id)
        self.alive.add(message.id)
        try:
            yield
        finally:
            self.alive.discard(message.id)

    def send(self, event: ObjectCreated) -> None:
        self.sent.append(event)
        self.put(StorageEvent((event,)))

    # ------------------------------------------------------------- internals

    def _take(self, message: Message, action: str) -> Message:
        if message.id in self.alive:
            # A beat landing after a release would hide the message again for a
            # whole visibility timeout; after a delete it fails. Heartbeats stop first.
            raise TerminalError(
                f"{action}: message {message.id} still has a heartbeat running",
                code="heartbeat_running",
            )
        held = self._in_flight.get(message.id)
        # Strict where SQS is lenient: a stale receipt means the message was
        # redelivered meanwhile, which a test should hear about.
        if held is None or held.receipt != message.receipt:
            raise TerminalError(
                f"{action}: message {message.id} is not in flight under this receipt",
                code="receipt_invalid",
            )
        del self._in_flight[message.id]
        return held

    def _dead_letter(self, message: Message) -> None:
        if self.dlq is None:
            self.dropped.append(message.id)
            return
        self.dlq._visible[message.id] = message


class InMemoryDeadLetterQueue:
    """A DeadLetterQueue over an InMemoryMessageSource (usually another queue's ``dlq``)."""

    def __init__(self, queue: InMemoryMessageSource) -> None:
        self.queue = queue
        self.peeks = 0

    def peek(self) -> Sequence[Message]:
        # Only what a receive could get: messages someone holds are invisible to SQS too.
        self.peeks += 1
        return self.queue.visible
