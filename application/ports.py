"""The seams between the use cases and the outside world.

Each port is a Protocol: adapters (``S3FileSource``, ``DuckDbWarehouse``...) and
in-memory fakes (``InMemoryWarehouse``...) satisfy them structurally.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

import pyarrow as pa

from application.outcomes import FileOutcome
from domain.contracts import TableContract
from domain.events import ObjectCreated, StorageEvent
from domain.ledger import LedgerEntry, LedgerFilter, LoadStatus, SourceOrder
from domain.rejects import RejectsReport
from domain.sheet import RawSheet, SheetPreview
from domain.source import ObjectInfo


@dataclass(frozen=True)
class LocalFile:
    """A source file made available on local disk for the readers."""

    path: Path
    size: int


class FileSource(Protocol):
    def head(self, uri: str) -> ObjectInfo:
        """Size and version of ``uri``; the version is never None.

        Raises TerminalError when the object does not exist.
        """
        ...

    def fetch(self, info: ObjectInfo) -> AbstractContextManager[LocalFile]:
        """The bytes of the version ``info`` (from ``head``) names, as a local file.

        Removed (if temporary) on exit. Raises TerminalError when that version
        is gone, so what is loaded is always what ``info`` describes.
        """
        ...


class ObjectListing(Protocol):
    """The current objects of a bucket, for reconciling them with the ledger.

    Apart from FileSource because only a bucket can be listed this way: ingestion
    never lists, and a local directory has no notifications to lose.
    """

    def list_objects(self, bucket: str, prefix: str = "") -> Iterable[ObjectInfo]:
        """Every current object under ``prefix``, its version as ``FileSource.head`` gives it."""
        ...


class Workbook(Protocol):
    """One opened file: a CSV is a workbook with a single sheet."""

    @property
    def sheet_names(self) -> tuple[str, ...]: ...

    def preview(self, sheet: str, rows: int) -> SheetPreview:
        """The first ``rows`` rows of ``sheet`` from row 1, every cell as text."""
        ...

    def read(self, sheet: str, header_row: int) -> RawSheet:
        """Every row below ``header_row`` (1-based), blank rows dropped, cells as text."""
        ...

    def prefetch(self, sheet: str, header_row: int) -> None:
        """Start reading ``sheet`` now, if the reader can: ``read(sheet, header_row)``
        is the next call that will want it, unless the file is dropped first.

        A reader whose parse runs elsewhere (a child process) overlaps it with what
        the caller does meanwhile; one that parses in the calling thread does nothing.
        """
        ...


class WorkbookReader(Protocol):
    def open(self, file: LocalFile, info: ObjectInfo) -> AbstractContextManager[Workbook]:
        """Open ``file`` under the configured limits.

        Raises UnreadableFileError (terminal) for encrypted, corrupt, oversized or
        unsupported files, naming the file and the reason.
        """
        ...


@dataclass(frozen=True)
class LoadRequest:
    contract: TableContract
    rows: pa.Table  # exactly the contract's columns, typed by domain.arrow_types
    source_uri: str
    source_version: str
    load_id: str
    sheets: tuple[str, ...]
    rows_read: int
    rows_rejected: int
    started_at: datetime
    rejects_report: str | None = None  # recorded in the ledger row
    # Where this version stands among the source's versions: a load commits only
    # if no newer version of the source is committed.
    source_order: SourceOrder = field(default_factory=SourceOrder)

    def ledger_entry(
        self, status: LoadStatus, rows_loaded: int, finished_at: datetime
    ) -> LedgerEntry:
        """The ledger row a load writes: ``loaded``, or ``skipped`` with no rows."""
        return LedgerEntry(
            load_id=self.load_id,
            source_uri=self.source_uri,
            source_version=self.source_version,
            table=self.contract.name,
            sheets=self.sheets,
            status=status,
            rows_read=self.rows_read,
            rows_loaded=rows_loaded,
            rows_rejected=self.rows_rejected,
            started_at=self.started_at,
            finished_at=finished_at,
            source_order=self.source_order,
            rejects_report=self.rejects_report,
        ).normalised()


@dataclass(frozen=True)
class LoadReceipt:
    # LOADED; SKIPPED when this version was loaded before; STALE when a newer
    # version of the source was committed first.
    status: LoadStatus
    load_id: str  # for a skip: the load that holds the rows; stale: the newer load
    rows_loaded: int


class Warehouse(Protocol):
    def ensure_table(self, contract: TableContract) -> None:
        """Create the table (contract columns plus lineage) if missing.

        Raises SchemaDriftError naming the columns when an existing table differs.
        """
        ...

    def loaded_tables(self, source_uri: str, source_version: str) -> frozenset[str]:
        """Tables into which this file version has already been loaded."""
        ...

    def load(self, request: LoadRequest) -> LoadReceipt:
        """Merge the rows and write the ledger row in one transaction.

        When the ledger already holds a load of this (version, table), nothing
        is changed but a ``skipped`` ledger row, and the receipt says SKIPPED.
        When it holds a load of a newer version of the source into the table
        (``source_order``), nothing is changed but a ``stale`` ledger row, and
        the receipt says STALE. Both are decided under the lock and in the
        transaction of the merge, so no older version commits after a newer one.
        """
        ...

    def record(self, entry: LedgerEntry) -> None:
        """Write a ledger row for an attempt that loaded nothing."""
        ...

    def history(
        self, limit: int | None = None, where: LedgerFilter | None = None
    ) -> Sequence[LedgerEntry]:
        """Ledger rows matching ``where`` (all without it), newest first."""
        ...

    def recorded_versions(self, source_uris: Collection[str]) -> frozenset[tuple[str, str]]:
        """Every (source_uri, source_version) of these URIs with a ledger row of any status.

        Any number of URIs: adapters query them in batches.
        """
        ...

    def close(self) -> None: ...


class RejectsReportWriter(Protocol):
    def write(self, report: RejectsReport) -> str:
        """Persist the report; return where a person can find it."""
        ...


class SecretProvider(Protocol):
    def get(self, name: str, *, fresh: bool = False) -> str:
        """The secret's value, read again when ``fresh`` (it may have been rotated).

        Raises TerminalError if it does not exist.
        """
        ...


class ProgressListener(Protocol):
    def stage(self, source: str, sheet: str | None, stage: str, done: int, total: int) -> None:
        """Called as a file advances, so long runs can show progress.

        ``stage`` is ``routing`` (done/total: sheets), ``reading`` (0/0: rows not
        known yet), ``validating`` (rows read), ``loading <table>`` (0 of the rows
        to load) or ``loaded <table>`` (rows loaded of those).
        """
        ...


class OutcomeListener(Protocol):
    """Told each file's final outcome: metrics, notifications to the uploader."""

    def file_outcome(self, outcome: FileOutcome) -> None:
        """Called once per file, after its rows are committed (or it was refused).

        Raises a DatalakepError when the outcome could not be passed on; the
        caller logs it and carries on, as the file's fate is already sealed.
        """
        ...


@dataclass(frozen=True)
class Message:
    """One queue message, as the worker sees it: its event already decoded by the adapter."""

    id: str
    event: StorageEvent
    receipt: str  # opaque handle for delete/release/extend
    receive_count: int = 1


class MessageSource(Protocol):
    def receive(self, max_messages: int = 10, wait_seconds: int = 20) -> Sequence[Message]:
        """Long-poll for up to ``max_messages``; empty after ``wait_seconds`` of nothing."""
        ...

    def delete(self, message: Message) -> None:
        """Acknowledge: only ever after the message's rows are committed."""
        ...

    def release(self, message: Message, delay_seconds: int) -> None:
        """Give the message back to the queue, visible again after ``delay_seconds``."""
        ...

    def keep_alive(self, message: Message) -> AbstractContextManager[None]:
        """Keep ``message`` invisible to other consumers while the block runs (heartbeat)."""
        ...

    def send(self, event: ObjectCreated) -> None:
        """Enqueue ``event`` in the queue's own format (the Lambda's hand-off, reconcile)."""
        ...


class DeadLetterQueue(Protocol):
    """The messages the pipeline gave up on, looked at without being consumed.

    A port of its own, not a MessageSource method: reconciliation may read the
    DLQ but must never delete from it or send to it, and with only ``peek`` to
    call it cannot. A peek is also another contract than ``receive``: every
    message is held until the whole queue has been seen, then all handed back.
    """

    def peek(self) -> Sequence[Message]:
        """Every message now in the queue, each once; all of them are still there after.

        Raises TransientError when a complete view could not be had (try again).
        """
        ...
