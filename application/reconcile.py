"""The use case: find the objects in a bucket that nothing ever processed.

S3 may drop or delay notifications. An object is accounted for when the ledger
has a row (any status) for its current version, or when the dead-letter queue
holds an event naming it; the rest are missing, and can be sent to the worker
queue again as ordinary ObjectCreated notifications.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from application.ports import DeadLetterQueue, MessageSource, ObjectListing, Warehouse
from domain.errors import ConfigurationError
from domain.events import ObjectCreated, SourceRule
from domain.printable import printable
from domain.source import ObjectInfo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReconcileBucket:
    bucket: str
    prefix: str = ""
    # Send each missing object to the worker queue as an ObjectCreated notification.
    enqueue: bool = False


@dataclass(frozen=True)
class MissingObject:
    uri: str
    version: str
    size: int


@dataclass(frozen=True)
class ReconcileResult:
    """Each listed object is counted once: outside the sources, in the ledger, in the
    DLQ, or missing, checked in that order."""

    listed: int
    missing: tuple[MissingObject, ...]
    in_ledger: int
    in_dlq: int
    # Not allowed by aws.sources: the worker would ignore a notification for them.
    outside_sources: int
    dlq_messages: int
    # DLQ messages that do not parse as an event, so name no object.
    poison: int
    enqueued: int = 0


class Reconcile:
    def __init__(
        self,
        objects: ObjectListing,
        warehouse: Warehouse,
        dead_letters: DeadLetterQueue,
        sources: Sequence[SourceRule],
        queue: MessageSource | None = None,
    ) -> None:
        self._objects = objects
        self._warehouse = warehouse
        self._dead_letters = dead_letters
        self._sources = tuple(sources)
        self._queue = queue

    def execute(self, command: ReconcileBucket) -> ReconcileResult:
        """Transient errors (S3, SQS or the warehouse unreachable) propagate: run it again.

        An object uploaded moments ago may still be on its way through the queue and
        show up as missing; sending it again costs a ``skipped`` ledger row, no more.
        """
        if command.enqueue and self._queue is None:
            raise ConfigurationError("reconcile --enqueue needs the worker queue's URL")
        listed = list(self._objects.list_objects(command.bucket, command.prefix))
        allowed = [o for o in listed if self._allowed(o.uri, command.bucket)]
        recorded = self._warehouse.recorded_versions([o.uri for o in allowed])
        unrecorded = [o for o in allowed if (o.uri, _version(o)) not in recorded]
        dead, messages, poison = self._dead_lettered()
        missing = [o for o in unrecorded if not _named(o, dead)]
        enqueued = self._enqueue(command.bucket, missing) if command.enqueue else 0
        return ReconcileResult(
            listed=len(listed),
            missing=tuple(MissingObject(o.uri, _version(o), o.size) for o in missing),
            in_ledger=len(allowed) - len(unrecorded),
            in_dlq=len(unrecorded) - len(missing),
            outside_sources=len(listed) - len(allowed),
            dlq_messages=messages,
            poison=poison,
            enqueued=enqueued,
        )

    def _allowed(self, uri: str, bucket: str) -> bool:
        key = uri.removeprefix(f"s3://{bucket}/")
        return any(rule.allows(bucket, key) for rule in self._sources)

    def _dead_lettered(self) -> tuple[dict[str, set[str | None]], int, int]:
        """URI -> versions named by DLQ events (None: an event naming no version)."""
        named: dict[str, set[str | None]] = {}
        messages = self._dead_letters.peek()
        poison = 0
        for message in messages:
            event = message.event
            if event.malformed is not None:
                log.info(
                    "DLQ message %s names no object: %s", message.id, printable(event.malformed)
                )
                poison += 1
                continue
            for obj in event.objects:
                named.setdefault(obj.uri, set()).add(obj.version_id or obj.etag)
        return named, len(messages), poison

    def _enqueue(self, bucket: str, missing: Sequence[ObjectInfo]) -> int:
        assert self._queue is not None
        for info in missing:
            key = info.uri.removeprefix(f"s3://{bucket}/")
            # No version in the event: the worker then loads whatever version is
            # current when it gets there, where a pinned one overwritten meanwhile
            # would be skipped as stale, its successor's notification maybe lost too.
            self._queue.send(ObjectCreated(bucket, key, size=info.size))
        return len(missing)


def _version(info: ObjectInfo) -> str:
    # Listings always carry a version; str() matches how ingestion writes the ledger.
    return str(info.version)


def _named(info: ObjectInfo, dead: dict[str, set[str | None]]) -> bool:
    versions = dead.get(info.uri)
    if versions is None:
        return False
    # An event naming no version stands for whatever version was current then.
    return None in versions or _version(info) in versions
