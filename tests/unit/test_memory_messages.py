from __future__ import annotations

import pytest

from domain.errors import TerminalError
from domain.events import ObjectCreated, StorageEvent
from tests.fakes.messages import InMemoryMessageSource

pytestmark = pytest.mark.unit


def event(key: str) -> StorageEvent:
    return StorageEvent((ObjectCreated("inbox", key),))


def test_a_received_message_is_in_flight_until_deleted() -> None:
    queue = InMemoryMessageSource()
    put = queue.put(event("a"))

    [message] = queue.receive()

    assert (message.id, message.event, message.receive_count) == (put.id, event("a"), 1)
    assert queue.receive() == []
    assert queue.visible == []
    assert queue.in_flight == [message]
    queue.delete(message)
    queue.delete(message)  # repeated deletes are accepted, as in SQS
    assert queue.pending() == []
    assert queue.deleted == [message.id]


def test_receive_honours_the_batch_size_in_order() -> None:
    queue = InMemoryMessageSource()
    for key in "abc":
        queue.put(event(key))

    assert [m.event for m in queue.receive(max_messages=2)] == [event("a"), event("b")]
    assert [m.event for m in queue.receive()] == [event("c")]


def test_release_records_the_delay_and_redelivers_with_a_new_receipt() -> None:
    queue = InMemoryMessageSource()
    queue.put(event("a"))
    [first] = queue.receive()

    queue.release(first, 30)
    [second] = queue.receive()

    assert queue.released == [(first.id, 30)]
    assert second.id == first.id
    assert second.receive_count == 2
    assert second.receipt != first.receipt
    assert queue.pending() == [second]


def test_a_stale_receipt_is_refused() -> None:
    queue = InMemoryMessageSource()
    queue.put(event("a"))
    [first] = queue.receive()
    queue.release(first, 0)
    queue.receive()

    for action in (queue.delete, lambda m: queue.release(m, 0)):
        with pytest.raises(TerminalError) as caught:
            action(first)
        assert caught.value.code == "receipt_invalid"


def test_messages_past_max_receive_count_move_to_the_dlq() -> None:
    dlq = InMemoryMessageSource()
    queue = InMemoryMessageSource(max_receive_count=2, dlq=dlq)
    put = queue.put(StorageEvent(malformed="poison"))

    for expected in (1, 2):
        [message] = queue.receive()
        assert message.receive_count == expected
        queue.release(message, 0)

    assert queue.receive() == []
    assert queue.pending() == []
    assert [(m.id, m.event.malformed) for m in dlq.visible] == [(put.id, "poison")]


def test_without_a_dlq_a_poison_message_is_dropped() -> None:
    queue = InMemoryMessageSource(max_receive_count=1)
    queue.put(StorageEvent(malformed="poison"))
    [message] = queue.receive()
    queue.release(message, 0)

    assert queue.receive() == []
    assert queue.dropped == [message.id]
    assert queue.pending() == []


def test_send_enqueues_and_keep_alive_records_heartbeats() -> None:
    queue = InMemoryMessageSource()
    handed_off = ObjectCreated("inbox", "incoming/heavy.xlsx")
    queue.send(handed_off)
    [message] = queue.receive()

    with queue.keep_alive(message):
        pass

    assert queue.sent == [handed_off]
    assert message.event.objects == (handed_off,)
    assert queue.heartbeats == [message.id]
