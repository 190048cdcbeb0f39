"""The use case behind both AWS entrypoints: one notification -> ingested files.

It decides what happens to the message that carried the notification:
acknowledge it (rows committed, or nothing to do), or hand it back for retry.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from application.ingest import IngestPassengerFile
from application.log_context import bound
from application.outcomes import FileOutcome, FileStatus, report_outcome
from application.ports import FileSource, MessageSource, OutcomeListener
from application.results import IngestFile, IngestResult
from domain.clock import utc_now
from domain.errors import TerminalError
from domain.events import ObjectCreated, OwnOutputs, SourceRule, StorageEvent
from domain.printable import printable
from domain.source import ObjectInfo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HandleEvent:
    event: StorageEvent  # decoded by the adapter that received it
    # Lambda sets these: objects larger, or needing more scratch space or time than
    # the invocation has left, go to the worker queue instead.
    heavy_file_bytes: int | None = None
    seconds_left: float | None = None


class LocalCapacity(Protocol):
    """What this process can still take on: scratch space, and time before its deadline."""

    def shortfall(self, info: ObjectInfo, seconds_left: float | None) -> str | None:
        """Why ``info`` would not fit here (scratch space, time), or None when it would."""
        ...


class Disposition(StrEnum):
    ACK = "ack"  # delete the message: committed, skipped, ignored or terminally refused
    RETRY = "retry"  # leave it for redelivery (and, after maxReceiveCount, the DLQ)


@dataclass(frozen=True)
class EventResult:
    disposition: Disposition
    results: tuple[IngestResult, ...] = ()
    forwarded: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class _Dropped:
    """A file acknowledged without ingesting it, and its outcome."""

    status: FileStatus  # IGNORED or STALE
    reason: str  # without the URI, which the outcome line carries


class HandleStorageEvent:
    def __init__(
        self,
        ingest: IngestPassengerFile,
        files: FileSource,
        sources: Sequence[SourceRule],
        hand_off: MessageSource | None = None,
        own_outputs: OwnOutputs | None = None,
        capacity: LocalCapacity | None = None,
        outcomes: Sequence[OutcomeListener] = (),
    ) -> None:
        self._ingest = ingest
        self._files = files
        self._sources = tuple(sources)
        self._hand_off = hand_off
        self._own_outputs = own_outputs or OwnOutputs()
        self._capacity = capacity
        self._outcomes = tuple(outcomes)

    def execute(self, command: HandleEvent) -> EventResult:
        """Transient errors propagate: the caller releases the message for retry."""
        event = command.event
        if event.malformed is not None:
            # Retrying cannot fix it; leaving it undeleted lets the queue's
            # redrive policy move it to the DLQ without blocking other messages.
            log.warning("poison message: %s", printable(event.malformed))
            return EventResult(Disposition.RETRY, error=event.malformed)
        ignored = list(event.ignored)
        for reason in event.ignored:
            log.info("acknowledged without work: %s", printable(reason))
        results: list[IngestResult] = []
        forwarded: list[str] = []
        for obj in _distinct(event.objects):
            with bound(source=obj.uri, version=obj.version_id):
                result = self._one(obj, command)
            if isinstance(result, _Dropped):
                ignored.append(f"{obj.uri}: {result.reason}")
            elif result is None:
                forwarded.append(obj.uri)
            else:
                results.append(result)
        return EventResult(Disposition.ACK, tuple(results), tuple(forwarded), tuple(ignored))

    def _one(self, obj: ObjectCreated, command: HandleEvent) -> IngestResult | _Dropped | None:
        """Ingest ``obj`` here, drop it, or hand it off (None).

        Every path ends in the file's one outcome: ingest reports the files it
        opens, and this method the ones it drops or hands off.
        """
        dropped = self._not_for_us(obj)
        info = None if dropped else self._current(obj)
        if isinstance(info, _Dropped):
            dropped = info
        if dropped is not None:
            self._report(obj, dropped.status, dropped.reason)
            return dropped
        assert isinstance(info, ObjectInfo)
        elsewhere = self._beyond_reach(info, command)
        if elsewhere is not None and self._hand_off is not None:
            log.info("handing %s to the worker queue: %s", printable(obj.uri), elsewhere)
            self._hand_off.send(obj)
            self._report(obj, FileStatus.HANDED_OFF, elsewhere)
            return None
        if elsewhere is not None:
            # No worker queue: try here; a file that can never fit is refused
            # by the reader with a ledger row, one that cannot fit now retried.
            log.warning("%s: %s, and no worker queue is configured", printable(obj.uri), elsewhere)
        ingest = IngestFile(
            obj.uri,
            version=obj.version_id or obj.etag,
            sequencer=obj.sequencer,
            event_time=obj.event_time,
            info=info,  # one HEAD per object: a Lambda pays each one in its latency
        )
        return self._ingest.execute(ingest)

    def _report(self, obj: ObjectCreated, status: FileStatus, reason: str) -> None:
        """The outcome of a file that is never ingested here (ingest reports the others)."""
        outcome = FileOutcome(
            source=obj.uri,
            status=status,
            version=obj.version_id,
            reason=reason,
            event_time=obj.event_time,
            finished_at=utc_now(),
        )
        report_outcome(outcome, self._outcomes)

    def _not_for_us(self, obj: ObjectCreated) -> _Dropped | None:
        """Why ``obj`` is acknowledged without any S3 request, or None to go on."""
        where = printable(obj.uri)
        if self._own_outputs.holds(obj.bucket, obj.key):
            # Before the allow-list: when both cover the whole bucket, ingesting a
            # report would write a report of it, and so on, doubling each round.
            log.info("ignoring %s: written by datalakeP (aws.rejects_prefix or staging)", where)
            return _Dropped(FileStatus.IGNORED, "written by datalakeP")
        if not any(rule.allows(obj.bucket, obj.key) for rule in self._sources):
            log.warning(
                "ignoring %s: outside the allowed sources (aws.sources, DATALAKEP_ALLOWED_SOURCES)",
                where,
            )
            return _Dropped(FileStatus.IGNORED, "not an allowed bucket/prefix")
        if obj.key.endswith("/") and not obj.size:
            log.info("ignoring %s: a folder marker, not a file", where)
            return _Dropped(FileStatus.IGNORED, "folder marker")
        return None

    def _current(self, obj: ObjectCreated) -> ObjectInfo | _Dropped:
        """What S3 holds now under ``obj``'s key, or why the event is to be dropped.

        An event for a version that is no longer current is stale: S3 may deliver
        out of order, and loading the object it names would put an older version
        over a newer one. Comparing with what S3 holds now needs no state of our
        own, and the newer version's event loads it.
        """
        try:
            current = self._files.head(obj.uri)
        except TerminalError as error:
            if error.code == "not_found":
                return _Dropped(FileStatus.STALE, "deleted since the event was sent")
            raise
        if current.datalakep_output:
            log.info("ignoring %s: it carries datalakeP's report metadata", printable(obj.uri))
            return _Dropped(FileStatus.IGNORED, "written by datalakeP")
        if obj.version_id is None and obj.etag is None:
            return current
        if obj.version_id is not None and current.version == obj.version_id:
            return current
        # An ETag names content, not a version: in a versioned bucket the current
        # version is a VersionId, which an ETag never equals.
        if obj.version_id is None and (current.etag or current.version) == obj.etag:
            return current
        return _Dropped(
            FileStatus.STALE,
            f"stale event (version {obj.version_id or obj.etag}, now {current.version})",
        )

    def _beyond_reach(self, info: ObjectInfo, command: HandleEvent) -> str | None:
        """Why the worker queue should take ``info`` instead of this process, if it should."""
        limit = command.heavy_file_bytes
        if limit is not None and info.size > limit:
            return f"{info.size:,} bytes, above aws.heavy_file_bytes ({limit:,})"
        if self._capacity is None:
            return None
        return self._capacity.shortfall(info, command.seconds_left)


def _distinct(objects: Iterable[ObjectCreated]) -> list[ObjectCreated]:
    """One object per (bucket, key, version): a record repeated a thousand times is one file."""
    seen: dict[tuple[str, str, str | None], ObjectCreated] = {}
    for obj in objects:
        seen.setdefault((obj.bucket, obj.key, obj.version_id or obj.etag), obj)
    return list(seen.values())
