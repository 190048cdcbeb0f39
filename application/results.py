"""Commands and results of the ingest and validate use cases."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from domain.rejects import CellReject
from domain.source import ObjectInfo


@dataclass(frozen=True)
class IngestFile:
    uri: str
    # From the storage event, where it has them: the version it announced and that
    # event's sequencer, which orders versions of one key exactly.
    version: str | None = None
    sequencer: str | None = None
    # When the S3 event said the object was created (naive UTC), for the lag metric.
    event_time: datetime | None = None
    # What the caller already read of the object (HandleStorageEvent heads it to
    # find stale events): ingest then downloads that version without asking again.
    info: ObjectInfo | None = None


@dataclass(frozen=True)
class CheckFile:
    """Validate ``uri`` as ingest would, loading nothing (an uploader checking a file first)."""

    uri: str
    # Write the annotated rejects report too (`validate --report DIR`).
    write_report: bool = False


class Outcome(StrEnum):
    LOADED = "loaded"
    SKIPPED = "skipped"
    STALE = "stale"  # a newer version of the file was loaded first: nothing loaded
    REJECTED = "rejected"  # refused as a whole: unroutable, or over the reject ratio
    FAILED = "failed"  # unreadable file, schema drift
    VALID = "valid"  # dry run, nothing to reject
    INVALID = "invalid"  # dry run, something would be rejected
    # Not data, so neither loaded nor refused, and no ledger row of its own:
    EMPTY = "empty"  # no header and no data (Excel's default Sheet2, Sheet3)
    IGNORED = "ignored"  # a routing rule with ignore: true matched (notes, instructions)


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
        """Rejected as a whole or failed: what makes the CLI exit non-zero.

        A dry run says INVALID both for a sheet it would refuse (with the error)
        and for one whose rows it would partly reject (without).
        """
        if self.status is Outcome.INVALID:
            return self.error is not None
        return self.status in (Outcome.REJECTED, Outcome.FAILED)

    @property
    def set_aside(self) -> bool:
        """Not data: an empty sheet, or one a routing rule ignores."""
        return self.status in (Outcome.EMPTY, Outcome.IGNORED)


@dataclass(frozen=True)
class IngestResult:
    source: str
    version: str | None
    sheets: tuple[SheetResult, ...]

    @property
    def ok(self) -> bool:
        return not any(s.refused for s in self.sheets)
