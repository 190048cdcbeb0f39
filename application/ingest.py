"""The use case: one source file to validated rows in the warehouse, exactly once."""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import pyarrow as pa

from application.outcomes import outcome_of, report_outcome
from application.ports import (
    FileSource,
    LoadRequest,
    OutcomeListener,
    ProgressListener,
    RejectsReportWriter,
    Warehouse,
    Workbook,
    WorkbookReader,
)
from application.results import IngestFile, IngestResult, Outcome, SheetResult
from domain.arrow_types import arrow_schema
from domain.clock import utc_now
from domain.errors import SchemaDriftError, TerminalError, UnroutableSheetError
from domain.ledger import LedgerEntry, LoadStatus
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


class _NoProgress:
    def stage(self, source: str, sheet: str | None, stage: str, done: int, total: int) -> None:
        return None


@dataclass
class _Run:
    """What one execution has learned so far about its file."""

    info: ObjectInfo
    started_at: datetime
    results: list[SheetResult] = field(default_factory=list)
    report_sheets: list[SheetRejects] = field(default_factory=list)
    # How many of report_sheets the written report holds, and where it is.
    reported: int = 0
    report_location: str | None = None
    # Ledger rows of refusals, written once the report they point to is.
    pending: list[LedgerEntry] = field(default_factory=list)

    @property
    def report_id(self) -> str:
        # Derived from the file version, so a retried message rewrites the
        # same report instead of leaving one copy per attempt.
        digest = hashlib.sha256(f"{self.info.uri}\0{self.info.version}".encode())
        return digest.hexdigest()[:16]


class IngestPassengerFile:
    def __init__(
        self,
        files: FileSource,
        reader: WorkbookReader,
        router: Router,
        warehouse: Warehouse,
        reports: RejectsReportWriter,
        settings: IngestSettings | None = None,
        progress: ProgressListener | None = None,
        clock: Callable[[], datetime] = utc_now,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        outcomes: Sequence[OutcomeListener] = (),
    ) -> None:
        self._files = files
        self._reader = reader
        self._router = router
        self._warehouse = warehouse
        self._reports = reports
        self._settings = settings or IngestSettings()
        self._progress = progress or _NoProgress()
        self._clock = clock
        self._new_id = new_id
        self._outcomes = tuple(outcomes)

    def execute(self, command: IngestFile) -> IngestResult:
        """Ingest ``command.uri``, then report the file's outcome (not for a dry run)."""
        started = self._clock()
        result = self._execute(command, started)
        if not command.dry_run:
            outcome = outcome_of(
                result,
                started_at=started,
                finished_at=self._clock(),
                event_time=command.event_time,
            )
            report_outcome(outcome, self._outcomes)
        return result

    def _execute(self, command: IngestFile, started: datetime) -> IngestResult:
        """Ingest every sheet of ``command.uri``.

        Terminal problems (a bad file, a bad sheet, schema drift) end up in the
        result, the ledger and the rejects report. Transient ones (the warehouse
        is down) propagate, so the caller retries the whole file; completed
        tables are then skipped by the ledger.
        """
        try:
            info = self._files.head(command.uri)
        except TerminalError as error:
            return IngestResult(command.uri, None, (self._failed_file(command, error),))
        if command.sequencer is not None and command.version in (info.version, info.etag):
            info = replace(info, sequencer=command.sequencer)  # the event named this version
        run = _Run(info=info, started_at=started)
        try:
            with (
                self._files.fetch(info) as local,
                self._reader.open(local, info) as workbook,
            ):
                self._ingest_workbook(command, run, workbook)
        except TerminalError as error:
            # Raised while opening: the file as a whole is unreadable.
            run.results.append(self._failed_file(command, error, run))
        self._report_now(command, run)
        location = run.report_location
        for entry in run.pending:
            self._warehouse.record(replace(entry, rejects_report=location))
        if location is not None:
            run.results = [
                _with_report(r, location) if r.rows_rejected or r.refused else r
                for r in run.results
            ]
        return IngestResult(info.uri, info.version, tuple(run.results))

    # ------------------------------------------------------------- stages

    def _ingest_workbook(self, command: IngestFile, run: _Run, workbook: Workbook) -> None:
        uri = run.info.uri
        names = workbook.sheet_names
        routes: list[RouteDecision] = []
        for number, name in enumerate(names):
            self._progress.stage(uri, name, "routing", number, len(names))
            if self._router.ignores(uri, name):
                run.results.append(SheetResult(uri, name, None, Outcome.IGNORED))
                continue
            preview = workbook.preview(name, self._settings.header_search_rows)
            if preview.blank and _holds_no_rows(workbook, preview):
                run.results.append(SheetResult(uri, name, None, Outcome.EMPTY))
                continue
            if is_report_only_sheet(preview):
                # A rejects workbook uploaded again: its summary holds no rows.
                run.results.append(SheetResult(uri, name, None, Outcome.IGNORED))
                continue
            try:
                routes.append(self._router.route(uri, preview))
            except UnroutableSheetError as error:
                self._refuse_sheet(command, run, name, None, error)
        loaded_before = (
            frozenset()
            if command.dry_run
            else self._warehouse.loaded_tables(uri, str(run.info.version))
        )
        for table in dict.fromkeys(r.contract.name for r in routes):
            group = [r for r in routes if r.contract.name == table]
            if table in loaded_before:
                self._skip(run, group)
                continue
            validations = []
            for route in group:
                sheet_name = route.sheet
                self._progress.stage(uri, sheet_name, "reading", 0, 0)
                try:
                    sheet = workbook.read(sheet_name, route.header_row)
                except TerminalError as error:
                    self._fail_sheet(command, run, sheet_name, table, error)
                    continue
                self._progress.stage(uri, sheet_name, "validating", sheet.num_rows, sheet.num_rows)
                validations.append(validate_sheet(sheet, route))
            self._load_table(command, run, reject_duplicate_keys(validations))
        if not routes and not command.dry_run and all(r.set_aside for r in run.results):
            # No sheet held data, so no table has a ledger row for this version; one
            # row without a table still tells reconcile the version was handled.
            why = "no sheet holds data (empty or ignored)"
            run.pending.append(
                self._entry(run, self._new_id(), None, names, LoadStatus.SKIPPED, why)
            )

    def _load_table(
        self, command: IngestFile, run: _Run, validations: Sequence[SheetValidation]
    ) -> None:
        accepted = [v for v in validations if not v.over_threshold]
        # The ledger's id for this table's load, named in the report written before it.
        load_id = self._new_id()
        for v in validations:
            if v.rows_rejected and not v.over_threshold:
                run.report_sheets.append(_sheet_rejects(v, load_id=load_id))
        outcome: dict[int, SheetResult] = {}
        for v in validations:
            if v.over_threshold:
                outcome[id(v)] = self._refuse_over_threshold(command, run, v)
        if accepted and command.dry_run:
            for v in accepted:
                status = Outcome.INVALID if v.rows_rejected else Outcome.VALID
                outcome[id(v)] = _result(run, v, status, rows_loaded=0)
        elif accepted:
            # The report goes out before the rows commit: once they have, a redelivered
            # message is skipped without validating, and a report not yet written then
            # never would be. Rewriting it on a retry is harmless (same id, same content).
            self._report_now(command, run)
            outcome.update(self._load_accepted(run, accepted, load_id))
        # Report sheets in workbook order, whatever happened to each.
        run.results.extend(outcome[id(v)] for v in validations)

    def _load_accepted(
        self, run: _Run, accepted: Sequence[SheetValidation], load_id: str
    ) -> dict[int, SheetResult]:
        contract = accepted[0].contract
        rows = pa.concat_tables([v.valid_rows() for v in accepted])
        request = LoadRequest(
            contract=contract,
            rows=rows.cast(arrow_schema(contract)),
            source_uri=run.info.uri,
            source_version=str(run.info.version),
            load_id=load_id,
            sheets=tuple(v.sheet.name for v in accepted),
            rows_read=sum(v.rows_read for v in accepted),
            rows_rejected=sum(v.rows_rejected for v in accepted),
            started_at=run.started_at,
            source_order=run.info.order,
            rejects_report=run.report_location if any(v.rows_rejected for v in accepted) else None,
        )
        del rows  # the request holds the only copy the load needs
        rows_to_load = request.rows.num_rows
        self._progress.stage(run.info.uri, None, f"loading {contract.name}", 0, rows_to_load)
        try:
            self._warehouse.ensure_table(contract)
            receipt = self._warehouse.load(request)
        except SchemaDriftError as error:
            self._record(run, load_id, contract.name, accepted, LoadStatus.FAILED, str(error))
            run.report_sheets.append(
                SheetRejects("", contract.name, (), 0, (), sheet_error=str(error), load_id=load_id)
            )
            return {
                id(v): _result(run, v, Outcome.FAILED, rows_loaded=0, load_id=load_id, error=error)
                for v in accepted
            }
        loaded = receipt.status is LoadStatus.LOADED
        self._progress.stage(
            run.info.uri, None, f"loaded {contract.name}", receipt.rows_loaded, rows_to_load
        )
        if receipt.status is LoadStatus.STALE:
            log.info(
                "%s: stale, a newer version is loaded (load %s)",
                printable(run.info.uri),
                receipt.load_id,
            )
        outcome = _OUTCOMES[receipt.status]
        return {
            id(v): _result(
                run,
                v,
                outcome,
                rows_loaded=v.rows_read - v.rows_rejected if loaded else 0,
                load_id=receipt.load_id,
            )
            for v in accepted
        }

    def _skip(self, run: _Run, group: Sequence[RouteDecision]) -> None:
        table = group[0].contract.name
        sheets = tuple(r.sheet for r in group)
        load_id = self._new_id()
        self._warehouse.record(self._entry(run, load_id, table, sheets, LoadStatus.SKIPPED))
        for sheet in sheets:
            run.results.append(
                SheetResult(run.info.uri, sheet, table, Outcome.SKIPPED, load_id=load_id)
            )

    # ------------------------------------------------------------ refusals

    def _refuse_sheet(
        self,
        command: IngestFile,
        run: _Run,
        sheet: str,
        table: str | None,
        error: TerminalError,
    ) -> None:
        status = Outcome.INVALID if command.dry_run else Outcome.REJECTED
        run.results.append(
            SheetResult(
                run.info.uri,
                sheet,
                table,
                status,
                error=str(error),
                error_code=error.code,
            )
        )
        load_id = self._new_id()
        run.report_sheets.append(
            SheetRejects(sheet, table, (), 0, (), sheet_error=str(error), load_id=load_id)
        )
        if not command.dry_run:
            run.pending.append(
                self._entry(run, load_id, table, (sheet,), LoadStatus.REJECTED, str(error))
            )

    def _fail_sheet(
        self, command: IngestFile, run: _Run, sheet: str, table: str, error: TerminalError
    ) -> None:
        run.results.append(
            SheetResult(
                run.info.uri, sheet, table, Outcome.FAILED, error=str(error), error_code=error.code
            )
        )
        load_id = self._new_id()
        run.report_sheets.append(
            SheetRejects(sheet, table, (), 0, (), sheet_error=str(error), load_id=load_id)
        )
        if not command.dry_run:
            run.pending.append(
                self._entry(run, load_id, table, (sheet,), LoadStatus.FAILED, str(error))
            )

    def _refuse_over_threshold(
        self, command: IngestFile, run: _Run, v: SheetValidation
    ) -> SheetResult:
        limit = v.contract.max_reject_ratio
        message = (
            f"{run.info.uri} [sheet {v.sheet.name}]: {v.rows_rejected} of {v.rows_read} rows "
            f"rejected ({v.reject_ratio:.1%}), above table {v.contract.name}'s limit of "
            f"{limit:.1%}; nothing from this sheet was loaded"
        )
        status = Outcome.INVALID if command.dry_run else Outcome.REJECTED
        load_id = self._new_id()
        run.report_sheets.append(_sheet_rejects(v, sheet_error=message, load_id=load_id))
        if not command.dry_run:
            self._record(run, load_id, v.contract.name, [v], LoadStatus.REJECTED, message)
        error = TerminalError(message, code="reject_ratio_exceeded")
        return _result(run, v, status, rows_loaded=0, error=error)

    def _failed_file(
        self, command: IngestFile, error: TerminalError, run: _Run | None = None
    ) -> SheetResult:
        if run is not None:
            load_id = self._new_id()
            run.report_sheets.append(
                SheetRejects("", None, (), 0, (), sheet_error=str(error), load_id=load_id)
            )
            if not command.dry_run:
                run.pending.append(
                    self._entry(run, load_id, None, (), LoadStatus.FAILED, str(error))
                )
        log.warning("file refused: %s", printable(error), extra={"error_code": error.code})
        uri = command.uri if run is None else run.info.uri  # one name per file, opened or not
        return SheetResult(uri, None, None, Outcome.FAILED, error=str(error), error_code=error.code)

    # ------------------------------------------------------------- ledger

    def _record(
        self,
        run: _Run,
        load_id: str,
        table: str,
        validations: Sequence[SheetValidation],
        status: LoadStatus,
        error: str,
    ) -> None:
        sheets = tuple(v.sheet.name for v in validations)
        entry = self._entry(run, load_id, table, sheets, status, error=error)
        run.pending.append(
            replace(
                entry,
                rows_read=sum(v.rows_read for v in validations),
                rows_rejected=sum(v.rows_rejected for v in validations),
            )
        )

    def _entry(
        self,
        run: _Run,
        load_id: str,
        table: str | None,
        sheets: tuple[str, ...],
        status: LoadStatus,
        error: str | None = None,
    ) -> LedgerEntry:
        """The ledger row of an attempt that loaded nothing: every one is built here."""
        return LedgerEntry(
            load_id=load_id,
            source_uri=run.info.uri,
            source_version=str(run.info.version),
            table=table,
            sheets=sheets,
            status=status,
            rows_read=0,
            rows_loaded=0,
            rows_rejected=0,
            started_at=run.started_at,
            finished_at=self._clock(),
            error=error,
        )

    def _report_now(self, command: IngestFile, run: _Run) -> None:
        """(Re)write the rejects report if it lacks some of the run's sheets."""
        if not command.writes_report or len(run.report_sheets) == run.reported:
            return
        run.report_location = self._write_report(run)
        run.reported = len(run.report_sheets)

    def _write_report(self, run: _Run) -> str:
        report = RejectsReport(
            source_uri=run.info.uri,
            source_version=str(run.info.version),
            load_id=run.report_id,
            sheets=tuple(run.report_sheets),
        )
        return self._reports.write(report)


# ---------------------------------------------------------------- helpers

_OUTCOMES = {
    LoadStatus.LOADED: Outcome.LOADED,
    LoadStatus.SKIPPED: Outcome.SKIPPED,
    LoadStatus.STALE: Outcome.STALE,
}


def _holds_no_rows(workbook: Workbook, preview: SheetPreview) -> bool:
    """Nothing below a blank preview either: data far down is a header problem, not empty."""
    try:
        below = workbook.read(preview.name, max(1, preview.first_row + len(preview.rows) - 1))
    except TerminalError:
        return False  # routing then refuses the sheet, naming why
    return below.num_rows == 0


def _sheet_rejects(
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


def _result(
    run: _Run,
    v: SheetValidation,
    status: Outcome,
    *,
    rows_loaded: int,
    load_id: str | None = None,
    error: TerminalError | None = None,
) -> SheetResult:
    return SheetResult(
        source=run.info.uri,
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


def _with_report(result: SheetResult, location: str) -> SheetResult:
    return replace(result, rejects_report=location)
