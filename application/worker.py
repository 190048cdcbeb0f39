"""The EC2 worker's loop: long-poll, handle, delete only after commit.

Nothing one message does may end the loop: whatever it raises, that message is
released with a backoff (so the redrive policy takes it to the DLQ after
maxReceiveCount) and the others carry on. The loop ends on a stop request
(SIGTERM, SIGINT) or, with ``until_empty``, on an empty poll.
"""

from __future__ import annotations

import logging
import random
import threading
from contextlib import ExitStack
from dataclasses import dataclass, field

from application.handle_event import Disposition, HandleEvent, HandleStorageEvent
from application.log_context import bound
from application.ports import Message, MessageSource
from domain.errors import DatalakepError, TerminalError, TransientError
from domain.printable import printable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerSettings:
    """The ``worker:`` section of the config, which states every default once."""

    wait_seconds: int
    max_messages: int
    base_backoff_s: int
    max_backoff_s: int
    # A poison message is released after this long, so it reaches the DLQ
    # after maxReceiveCount tries without spinning.
    poison_backoff_s: int


@dataclass
class WorkerStats:
    received: int = 0
    deleted: int = 0
    retried: int = 0
    files: int = 0
    rows_loaded: int = 0
    failures: list[str] = field(default_factory=list)


class QueueWorker:
    def __init__(
        self,
        messages: MessageSource,
        handler: HandleStorageEvent,
        settings: WorkerSettings,
        stop: threading.Event | None = None,
    ) -> None:
        self._messages = messages
        self._handler = handler
        self._settings = settings
        self.stop = stop or threading.Event()

    def run(self, until_empty: bool = False) -> WorkerStats:
        """Poll until ``stop`` is set (SIGTERM), or until one poll comes back empty."""
        stats = WorkerStats()
        polls_failed = 0
        while not self.stop.is_set():
            try:
                batch = self._messages.receive(
                    self._settings.max_messages, self._settings.wait_seconds
                )
            except TransientError as error:
                # The queue is unreachable for now: wait, then poll again.
                polls_failed += 1
                delay = self._backoff(polls_failed)
                log.warning("receive failed: %s; polling again in %ss", printable(error), delay)
                self.stop.wait(delay)
                continue
            polls_failed = 0
            if not batch:
                if until_empty:
                    break
                continue
            # Every message of the batch is kept alive from the start, not just the
            # one being handled: a heavy file can take longer than the visibility
            # timeout, and the messages queued behind it would otherwise reappear
            # to other workers meanwhile.
            waiting = {m.id: self._alive(m) for m in batch}
            try:
                for message in batch:
                    alive = waiting.pop(message.id)
                    # A stop request finishes the current message, then returns the
                    # rest of the batch to the queue untouched for another worker.
                    if self.stop.is_set():
                        alive.close()
                        self._release(message, 0, "stopping: returned to the queue", logging.INFO)
                        continue
                    stats.received += 1
                    with bound(message_id=message.id):
                        self._process(message, alive, stats)
            finally:
                for alive in waiting.values():
                    alive.close()
        return stats

    def _alive(self, message: Message) -> ExitStack:
        alive = ExitStack()
        alive.enter_context(self._messages.keep_alive(message))
        return alive

    def _process(self, message: Message, alive: ExitStack, stats: WorkerStats) -> None:
        """Handle one message; its heartbeat (``alive``) stops before it is deleted or released."""
        try:
            with alive:
                result = self._handler.execute(HandleEvent(message.event))
        except TransientError as error:
            delay = self._backoff(message.receive_count)
            stats.retried += 1
            stats.failures.append(str(error))
            self._release(message, delay, f"retrying: {error}", logging.WARNING, error.code)
            return
        except TerminalError as error:
            # Ingest turns bad files into results; reaching here means the
            # event itself could not be served (e.g. access denied). Let the
            # redrive policy take it to the DLQ.
            stats.retried += 1
            stats.failures.append(str(error))
            self._release(
                message,
                self._settings.poison_backoff_s,
                f"cannot be served, the DLQ takes it after maxReceiveCount: {error}",
                logging.ERROR,
                error.code,
            )
            return
        except Exception as error:  # noqa: BLE001 - one message must never end the worker
            # No error class says what it is (a parser bug, a full disk, a body
            # the JSON decoder chokes on): transient for this message only, with
            # its traceback logged once for whoever fixes the cause.
            stats.retried += 1
            stats.failures.append(printable(f"{type(error).__name__}: {error}"))
            self._release(
                message,
                self._backoff(message.receive_count),
                f"unexpected {type(error).__name__}: retrying",
                logging.ERROR,
                "unexpected",
                traceback=True,
            )
            return
        if result.disposition is Disposition.RETRY:
            stats.retried += 1
            stats.failures.append(result.error or "retry")
            self._release(
                message,
                self._settings.poison_backoff_s,
                f"malformed, the DLQ takes it after maxReceiveCount: {result.error}",
                logging.ERROR,
                "malformed_event",
            )
            return
        if not self._settle(message, None):
            return
        stats.deleted += 1
        for ingested in result.results:
            stats.files += 1
            stats.rows_loaded += sum(s.rows_loaded for s in ingested.sheets)

    def _release(
        self,
        message: Message,
        delay: int,
        why: str,
        level: int,
        error_code: str | None = None,
        *,
        traceback: bool = False,
    ) -> None:
        """Hand ``message`` back, in a line naming its objects, attempt and delay.

        The objects come from the body itself: an operator searches logs by file,
        and a message id means nothing to whoever uploaded it. A release at the
        queue's maxReceiveCount is the last: SQS then moves it to the DLQ.
        """
        sources = message.event.uris
        log.log(
            level,
            "%s (attempt %s): %s; visible again in %ss",
            ", ".join(printable(s) for s in sources) or "a message naming no object",
            message.receive_count,
            printable(why),
            delay,
            exc_info=traceback,
            extra={
                "source": ",".join(sources) or None,
                "message_id": message.id,
                "attempt": message.receive_count,
                "delay_seconds": delay,
                "error_code": error_code,
            },
        )
        self._settle(message, delay)

    def _settle(self, message: Message, release_after: int | None) -> bool:
        """Delete ``message`` (None) or release it after a delay; False if SQS refused.

        A refusal is logged, not raised: the message reappears once its visibility
        timeout ends, and a load already committed is then a ledger skip.
        """
        try:
            if release_after is None:
                self._messages.delete(message)
            else:
                self._messages.release(message, release_after)
        except DatalakepError as error:
            action = "delete" if release_after is None else "release"
            log.warning("message %s: cannot %s it: %s", message.id, action, printable(error))
            return False
        return True

    def _backoff(self, receive_count: int) -> int:
        # Exponential with full jitter, capped, so a recovering warehouse is not
        # hit by every worker at the same instant.
        ceiling = min(
            self._settings.max_backoff_s, self._settings.base_backoff_s * 2**receive_count
        )
        return max(1, int(random.uniform(0, ceiling)))
