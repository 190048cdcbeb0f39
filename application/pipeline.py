"""Route, read and validate a workbook's sheets: the steps ingesting and validating share.

Validating a file must not need the warehouse, its connection or its secret, yet it
must judge every sheet exactly as ingesting would. So the judging lives here, on
files, reader and router only, and returns refusals as values: each use case says
what a refusal means to it (a ledger row and a report sheet, or a line of output).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from application.ports import (
    FileSource,
    ProgressListener,
    RejectsReportWriter,
    Workbook,
    WorkbookReader,
)
from application.results import Outcome, SheetResult
from domain.errors import TerminalError, UnroutableSheetError
from domain.ledger import LoadStatus
from domain.printable import printable
from domain.rejects import RejectsReport, SheetRejects
from domain.routing import RouteDecision, Router, is_report_only_sheet
from domain.sheet import SheetPreview
from domain.source import ObjectInfo
from domain.validation import SheetValidation, reject_duplicate_keys, validate_sheet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestSettings:
    # How far down a sheet the header may sit below title rows.
    header_search_rows: int = 30


class NoProgress:
    def stage(self, source: str, sheet: str | None, stage: str, done: int, total: int) -> None:
        return None


@dataclass(frozen=True)
class Refusal:
    """A sheet refused before validation: unroutable (REJECTED) or unreadable (FAILED)."""

    sheet: str | None  # None: the file as a whole could not be opened
    table: str | None
    error: TerminalError
    status: LoadStatus

    @classmethod
    def of_file(cls, error: TerminalError) -> Refusal:
        return cls(None, None, error, LoadStatus.FAILED)


@dataclass(frozen=True)
class AlreadyLoaded:
    """A table this file version was loaded into before: its sheets are not read again."""

    table: str
    sheets: tuple[str, ...]


@dataclass(frozen=True)
class Validated:
    """One table's sheets read and validated, duplicate keys rejected across them."""

    validations: tuple[SheetValidation, ...]


# What the pipeline says about a workbook, piece by piece: a SheetResult is a sheet
# set aside (empty, or ignored by a rule), neither loaded nor refused.
Verdict = SheetResult | Refusal | AlreadyLoaded | Validated


class SheetPipeline:
    def __init__(
        self,
        files: FileSource,
        reader: WorkbookReader,
        router: Router,
        settings: IngestSettings | None = None,
        progress: ProgressListener | None = None,
        validation_pool: Executor | None = None,
    ) -> None:
        self._files = files
        self._reader = reader
        self._router = router
        self._settings = settings or IngestSettings()
        self.progress = progress or NoProgress()
        # Threads that check a long sheet's columns; None checks them in this thread.
        self._validation_pool = validation_pool

    @contextmanager
    def open(self, info: ObjectInfo) -> Iterator[Workbook]:
        """The file fetched and opened; a TerminalError means it is unreadable as a whole."""
        with self._files.fetch(info) as local, self._reader.open(local, info) as workbook:
            yield workbook

    def judge(
        self, uri: str, workbook: Workbook, loaded_before: Callable[[], Collection[str]]
    ) -> Iterator[Verdict]:
        """Every sheet's verdict, as it is reached: sheets set aside or refused while
        routing, in sheet order, then table by table (in the order of each table's first
        sheet) its unreadable sheets and its validations.

        Lazy, so the caller loads one table before the next is read. ``loaded_before``
        is asked once, after routing: the tables this file version already holds, whose
        sheets are then not read.
        """
        names = workbook.sheet_names
        routes: list[RouteDecision] = []
        for number, name in enumerate(names):
            self.progress.stage(uri, name, "routing", number, len(names))
            if self._router.ignores(uri, name):
                yield SheetResult(uri, name, None, Outcome.IGNORED)
                continue
            preview = workbook.preview(name, self._settings.header_search_rows)
            if preview.blank and _holds_no_rows(workbook, preview):
                yield SheetResult(uri, name, None, Outcome.EMPTY)
                continue
            if is_report_only_sheet(preview):
                # A rejects workbook uploaded again: its summary holds no rows.
                yield SheetResult(uri, name, None, Outcome.IGNORED)
                continue
            try:
                routes.append(self._router.route(uri, preview))
            except UnroutableSheetError as error:
                yield Refusal(name, None, error, LoadStatus.REJECTED)
        if routes:
            # The first sheet to read starts now, while the ledger is asked which tables
            # this version already holds: the warehouse's round trip (its connection, at
            # a cold start) overlaps the parse, where the reader can read ahead.
            workbook.prefetch(routes[0].sheet, routes[0].header_row)
        done = loaded_before()
        for table in dict.fromkeys(r.contract.name for r in routes):
            group = [r for r in routes if r.contract.name == table]
            if table in done:
                yield AlreadyLoaded(table, tuple(r.sheet for r in group))
            else:
                yield from self._read(uri, workbook, group)

    def _read(
        self, uri: str, workbook: Workbook, group: Sequence[RouteDecision]
    ) -> Iterator[Refusal | Validated]:
        validations: list[SheetValidation] = []
        for route in group:
            self.progress.stage(uri, route.sheet, "reading", 0, 0)
            try:
                sheet = workbook.read(route.sheet, route.header_row)
            except TerminalError as error:
                yield Refusal(route.sheet, route.contract.name, error, LoadStatus.FAILED)
                continue
            self.progress.stage(uri, route.sheet, "validating", sheet.num_rows, sheet.num_rows)
            validations.append(validate_sheet(sheet, route, self._validation_pool))
        yield Validated(tuple(reject_duplicate_keys(validations)))


@dataclass
class FileRun:
    """What one execution has learned so far about its file."""

    info: ObjectInfo
    results: list[SheetResult] = field(default_factory=list)
    report_sheets: list[SheetRejects] = field(default_factory=list)
    # How many of report_sheets the written report holds, and where it is.
    reported: int = 0
    report_location: str | None = None

    def report_now(self, reports: RejectsReportWriter) -> None:
        """(Re)write the rejects report if it lacks some of the run's sheets."""
        if len(self.report_sheets) == self.reported:
            return
        report = RejectsReport(
            source_uri=self.info.uri,
            source_version=str(self.info.version),
            load_id=self.report_id,
            sheets=tuple(self.report_sheets),
        )
        self.report_location = reports.write(report)
        self.reported = len(self.report_sheets)

    @property
    def report_id(self) -> str:
        # Derived from the file version, so a retried message rewrites the
        # same report instead of leaving one copy per attempt.
        digest = hashlib.sha256(f"{self.info.uri}\0{self.info.version}".encode())
        return digest.hexdigest()[:16]

    def results_with_report(self) -> tuple[SheetResult, ...]:
        """The results, each with rejected rows or refused naming the report written."""
        location = self.report_location
        if location is None:
            return tuple(self.results)
        return tuple(
            replace(r, rejects_report=location) if r.rows_rejected or r.refused else r
            for r in self.results
        )


def failed_file(uri: str, error: TerminalError) -> SheetResult:
    """The one result of a file that could not be opened or read as a whole."""
    log.warning("file refused: %s", printable(error), extra={"error_code": error.code})
    return SheetResult(uri, None, None, Outcome.FAILED, error=str(error), error_code=error.code)


def over_threshold(uri: str, v: SheetValidation) -> TerminalError:
    """Why a sheet whose rejected rows exceed its table's limit is refused as a whole."""
    return TerminalError(
        f"{uri} [sheet {v.sheet.name}]: {v.rows_rejected} of {v.rows_read} rows "
        f"rejected ({v.reject_ratio:.1%}), above table {v.contract.name}'s limit of "
        f"{v.contract.max_reject_ratio:.1%}; nothing from this sheet was loaded",
        code="reject_ratio_exceeded",
    )


def sheet_rejects(
    v: SheetValidation, *, load_id: str, sheet_error: str | None = None
) -> SheetRejects:
    return SheetRejects(
        sheet=v.sheet.name,
        table=v.contract.name,
        header=v.sheet.header,
        header_row=v.sheet.header_row,
        rows=v.rejected_rows(),
        sheet_error=sheet_error,
        load_id=load_id,
    )


def sheet_result(
    uri: str,
    v: SheetValidation,
    status: Outcome,
    *,
    rows_loaded: int,
    load_id: str | None = None,
    error: TerminalError | None = None,
) -> SheetResult:
    return SheetResult(
        source=uri,
        sheet=v.sheet.name,
        table=v.contract.name,
        status=status,
        rows_read=v.rows_read,
        rows_loaded=rows_loaded,
        rows_rejected=v.rows_rejected,
        load_id=load_id,
        error=None if error is None else str(error),
        error_code=None if error is None else error.code,
        rejects=v.rejects,
    )


def refusal_result(uri: str, refusal: Refusal, status: Outcome) -> SheetResult:
    error = refusal.error
    if refusal.sheet is None:
        return failed_file(uri, error)
    return SheetResult(
        uri, refusal.sheet, refusal.table, status, error=str(error), error_code=error.code
    )


def _holds_no_rows(workbook: Workbook, preview: SheetPreview) -> bool:
    """Nothing below a blank preview either: data far down is a header problem, not empty."""
    try:
        below = workbook.read(preview.name, max(1, preview.first_row + len(preview.rows) - 1))
    except TerminalError:
        return False  # routing then refuses the sheet, naming why
    return below.num_rows == 0
