"""The use case behind both AWS entrypoints: one notification -> ingested files.

It decides what happens to the message that carried the notification:
acknowledge it (rows committed, or nothing to do), or hand it back for retry.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from application.events import MalformedEventError, ObjectCreated, SourceRule, parse_event
from application.ingest import IngestPassengerFile, utc_now
from application.log_context import bound
from application.outcomes import FileOutcome, FileStatus, report_outcome
from application.ports import FileSource, MessageSource, OutcomeListener
from application.results import IngestFile, IngestResult
from domain.errors import TerminalError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HandleEvent:
    payload: str | Mapping[str, Any]
    # Lambda sets this: larger objects go to the worker queue instead.
    heavy_file_bytes: int | None = None


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


class HandleStorageEvent:
    def __init__(
        self,
        ingest: IngestPassengerFile,
        files: FileSource,
        sources: Sequence[SourceRule],
        hand_off: MessageSource | None = None,
        outcomes: Sequence[OutcomeListener] = (),
    ) -> None:
        self._ingest = ingest
        self._files = files
        self._sources = tuple(sources)
        self._hand_off = hand_off
        self._outcomes = tuple(outcomes)

    def execute(self, command: HandleEvent) -> EventResult:
        """Transient errors propagate: the caller releases the message for retry."""
        try:
            event = parse_event(command.payload)
        except MalformedEventError as error:
            # Retrying cannot fix it; leaving it undeleted lets the queue's
            # redrive policy move it to the DLQ without blocking other messages.
            log.warning("poison message: %s", error)
            return EventResult(Disposition.RETRY, error=str(error))
        ignored = list(event.ignored)
        for reason in event.ignored:
            log.info("acknowledged without work: %s", reason)
        results: list[IngestResult] = []
        forwarded: list[str] = []
        for obj in event.objects:
            with bound(source=obj.uri, version=obj.version_id):
                if not any(rule.allows(obj.bucket, obj.key) for rule in self._sources):
                    # Checked before any S3 call: a foreign bucket is never read.
                    reason = "bucket/prefix not allowed by config"
                    self._report(obj, FileStatus.IGNORED, reason)
                    ignored.append(f"{obj.uri}: not an allowed bucket/prefix")
                    continue
                stale = self._stale(obj)
                if stale:
                    self._report(obj, FileStatus.STALE, stale)
                    ignored.append(stale)
                    continue
                if self._too_heavy(obj, command.heavy_file_bytes):
                    assert self._hand_off is not None
                    self._hand_off.send(obj.as_notification())
                    self._report(obj, FileStatus.HANDED_OFF, "too heavy for the Lambda")
                    forwarded.append(obj.uri)
                    continue
                results.append(self._ingest.execute(IngestFile(obj.uri, event_time=obj.event_time)))
        return EventResult(Disposition.ACK, tuple(results), tuple(forwarded), tuple(ignored))

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

    def _stale(self, obj: ObjectCreated) -> str | None:
        """An event for a version that is no longer current is stale.

        S3 may deliver out of order; loading the object it names would put an
        older version over a newer one. Comparing with what S3 holds now needs
        no state of our own, and the newer version's event loads it.
        """
        if obj.version_id is None and obj.etag is None:
            return None
        try:
            current = self._files.head(obj.uri)
        except TerminalError as error:
            if error.code == "not_found":
                return f"{obj.uri}: deleted since the event was sent"
            raise
        if obj.version_id is not None and current.version == obj.version_id:
            return None
        # An ETag names content, not a version: in a versioned bucket the current
        # version is a VersionId, which an ETag never equals.
        if obj.version_id is None and (current.etag or current.version) == obj.etag:
            return None
        return (
            f"{obj.uri}: stale event (version {obj.version_id or obj.etag}, now {current.version})"
        )

    def _too_heavy(self, obj: ObjectCreated, limit: int | None) -> bool:
        if limit is None or self._hand_off is None:
            return False
        size = obj.size if obj.size is not None else self._files.head(obj.uri).size
        return size > limit
