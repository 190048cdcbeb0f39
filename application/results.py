"""Commands and results of the ingestion use case."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from domain.rejects import CellReject


@dataclass(frozen=True)
class IngestFile:
    uri: str
    # Validate only: no table is created, no row, ledger row or report written.
    dry_run: bool = False
    # When the S3 event said the object was created (naive UTC), for the lag metric.
    event_time: datetime | None = None


class Outcome(StrEnum):
    LOADED = "loaded"
    SKIPPED = "skipped"
    REJECTED = "rejected"  # refused as a whole: unroutable, or over the reject ratio
    FAILED = "failed"  # unreadable file, schema drift
    VALID = "valid"  # dry run, nothing to reject
    INVALID = "invalid"  # dry run, something would be rejected


@dataclass(frozen=True)
class SheetResult:
    source: str
    sheet: str | None  # None when the file could not be opened at all
    table: str | None
    status: Outcome
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    load_id: str | None = None
    rejects_report: str | None = None
    error: str | None = None
    error_code: str | None = None
    rejects: tuple[CellReject, ...] = ()

    @property
    def refused(self) -> bool:
        """Rejected as a whole or failed: what makes the CLI exit non-zero."""
        return self.status in (Outcome.REJECTED, Outcome.FAILED)


@dataclass(frozen=True)
class IngestResult:
    source: str
    version: str | None
    sheets: tuple[SheetResult, ...]

    @property
    def ok(self) -> bool:
        return not any(s.refused for s in self.sheets)
