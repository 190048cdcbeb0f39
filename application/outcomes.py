"""What finally happened to one file, said once: a log line and the listeners.

An operator asks "what happened to this file?"; the answer must be one record,
not something to reassemble from per-sheet lines. Every file reaching the
service ends in exactly one :class:`FileOutcome`: the ingest use case reports
the files it opened, the event handler the ones it never opens (ignored,
stale, handed off). Both go through :func:`report_outcome`, so the log line, the
metrics and the notification always agree. A retried file has no outcome yet:
its outcome comes with the attempt that ends it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from application.results import IngestResult, Outcome
from domain.errors import DatalakepError
from domain.rejects import CellReject

if TYPE_CHECKING:
    from application.ports import OutcomeListener

log = logging.getLogger("datalakep.outcome")

# Notifications and logs name the first few rejected cells; the report has them all.
FIRST_REJECTS = 5


class FileStatus(StrEnum):
    LOADED = "loaded"
    SKIPPED = "skipped"  # this version was loaded before
    # The event named a version that is no longer current (checked at the head), or
    # the warehouse already holds a newer version of the file (its receipt says so).
    STALE = "stale"
    REJECTED = "rejected"  # a sheet was refused (unroutable, over the reject ratio)
    FAILED = "failed"  # unreadable file, schema drift
    IGNORED = "ignored"  # outside aws.sources, a rejects report, a folder marker
    HANDED_OFF = "handed_off"  # too heavy for the Lambda: sent to the worker queue


@dataclass(frozen=True)
class FileOutcome:
    source: str
    status: FileStatus
    version: str | None = None
    tables: tuple[str, ...] = ()
    load_ids: tuple[str, ...] = ()
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    rejects_report: str | None = None
    error_code: str | None = None
    reason: str | None = None  # why it was refused, ignored or stale
    first_rejects: tuple[CellReject, ...] = ()
    duration_ms: int | None = None
    event_time: datetime | None = None  # when S3 said the object was created (naive UTC)
    finished_at: datetime | None = None  # when the outcome became final (naive UTC)

    @property
    def table(self) -> str | None:
        return ",".join(self.tables) or None

    @property
    def event_lag_seconds(self) -> float | None:
        """From the S3 event to the outcome (the commit, for a load)."""
        if self.event_time is None or self.finished_at is None:
            return None
        return (self.finished_at - self.event_time).total_seconds()

    def log_fields(self) -> dict[str, Any]:
        """The structured fields of the outcome's log line (absent ones left out)."""
        fields: dict[str, Any] = {
            "source": self.source,
            "version": self.version,
            "status": self.status.value,
            "table": self.table,
            "load_id": ",".join(self.load_ids) or None,
            "rows_read": self.rows_read,
            "rows_loaded": self.rows_loaded,
            "rows_rejected": self.rows_rejected,
            "rejects_report": self.rejects_report,
            "duration_ms": self.duration_ms,
            "error_code": self.error_code,
            "reason": self.reason,
        }
        return {k: v for k, v in fields.items() if v is not None}

    def describe(self) -> str:
        what = f"{self.source}: {self.status.value}"
        if self.status in (FileStatus.LOADED, FileStatus.REJECTED, FileStatus.SKIPPED):
            what += f", {self.rows_loaded} rows loaded, {self.rows_rejected} rejected"
        return f"{what}: {self.reason}" if self.reason else what


# Worst first: one refused sheet makes the file rejected, one failed sheet failed;
# a file with nothing loaded is stale if a newer version holds any of its tables.
_PRECEDENCE = (
    (Outcome.FAILED, FileStatus.FAILED),
    (Outcome.REJECTED, FileStatus.REJECTED),
    (Outcome.LOADED, FileStatus.LOADED),
    (Outcome.STALE, FileStatus.STALE),
)


def outcome_of(
    result: IngestResult,
    *,
    started_at: datetime,
    finished_at: datetime,
    event_time: datetime | None = None,
) -> FileOutcome:
    """One file's outcome from its sheets' results."""
    statuses = {s.status for s in result.sheets}
    status = next((f for o, f in _PRECEDENCE if o in statuses), FileStatus.SKIPPED)
    refused = [s for s in result.sheets if s.refused]
    rejects = [r for s in result.sheets for r in s.rejects[:FIRST_REJECTS]]
    return FileOutcome(
        source=result.source,
        status=status,
        version=result.version,
        tables=tuple(dict.fromkeys(s.table for s in result.sheets if s.table)),
        load_ids=tuple(dict.fromkeys(s.load_id for s in result.sheets if s.load_id)),
        rows_read=sum(s.rows_read for s in result.sheets),
        rows_loaded=sum(s.rows_loaded for s in result.sheets),
        rows_rejected=sum(s.rows_rejected for s in result.sheets),
        rejects_report=next((s.rejects_report for s in result.sheets if s.rejects_report), None),
        error_code=refused[0].error_code if refused else None,
        reason=refused[0].error if refused else None,
        first_rejects=tuple(rejects[:FIRST_REJECTS]),
        duration_ms=round((finished_at - started_at).total_seconds() * 1000),
        event_time=event_time,
        finished_at=finished_at,
    )


def report_outcome(outcome: FileOutcome, listeners: Sequence[OutcomeListener]) -> None:
    """The file's one INFO outcome line, then every listener (metrics, notifications).

    A listener that fails is logged and passed over: the rows are committed and
    the message is about to be deleted, so failing now would only load the file
    again as ``skipped`` and report the wrong outcome.
    """
    log.info(outcome.describe(), extra=outcome.log_fields())
    for listener in listeners:
        try:
            listener.file_outcome(outcome)
        except DatalakepError as error:
            log.warning(
                "the outcome of %s did not reach %s: %s",
                outcome.source,
                type(listener).__name__,
                error,
                extra={"source": outcome.source, "error_code": error.code},
            )
