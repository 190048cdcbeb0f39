"""The use case: one source file to validated rows in the warehouse, exactly once."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from datetime import datetime

import pyarrow as pa

from application.outcomes import outcome_of, report_outcome
from application.pipeline import (
    AlreadyLoaded,
    FileRun,
    IngestSettings,
    Refusal,
    SheetPipeline,
    failed_file,
    over_threshold,
    refusal_result,
    sheet_rejects,
    sheet_result,
)
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
from domain.errors import SchemaDriftError, TerminalError
from domain.ledger import LedgerEntry, LoadStatus
from domain.printable import printable
from domain.rejects import SheetRejects
from domain.routing import Router
from domain.validation import SheetValidation

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class _Run(FileRun):
    started_at: datetime
    # Ledger rows of refusals, written once the report they point to is.
    pending: list[LedgerEntry] = field(default_factory=list)


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
        validation_pool: Executor | None = None,
    ) -> None:
        self._files = files
        self._warehouse = warehouse
        self._reports = reports
        self._pipeline = SheetPipeline(files, reader, router, settings, progress, validation_pool)
        self._progress = self._pipeline.progress
        self._clock = clock
        self._new_id = new_id
        self._outcomes = tuple(outcomes)

    def execute(self, command: IngestFile) -> IngestResult:
        """Ingest ``command.uri``, then report the file's outcome."""
        started = self._clock()
        result = self._execute(command, started)
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
        info = command.info
        if info is None:
            try:
                info = self._files.head(command.uri)
            except TerminalError as error:
                return IngestResult(command.uri, None, (failed_file(command.uri, error),))
        if command.sequencer is not None and command.version in (info.version, info.etag):
            info = replace(info, sequencer=command.sequencer)  # the event named this version
        run = _Run(info=info, started_at=started)
        try:
            with self._pipeline.open(info) as workbook:
                self._ingest_workbook(run, workbook)
        except TerminalError as error:
            # Raised while opening: the file as a whole is unreadable.
            self._refuse(run, Refusal.of_file(error))
        run.report_now(self._reports)
        for entry in run.pending:
            self._warehouse.record(replace(entry, rejects_report=run.report_location))
        return IngestResult(info.uri, info.version, run.results_with_report())

    # ------------------------------------------------------------- stages

    def _ingest_workbook(self, run: _Run, workbook: Workbook) -> None:
        uri = run.info.uri

        def loaded_before() -> frozenset[str]:
            return self._warehouse.loaded_tables(uri, str(run.info.version))

        for verdict in self._pipeline.judge(uri, workbook, loaded_before):
            if isinstance(verdict, SheetResult):
                run.results.append(verdict)
            elif isinstance(verdict, Refusal):
                self._refuse(run, verdict)
            elif isinstance(verdict, AlreadyLoaded):
                self._skip(run, verdict)
            else:
                self._load_table(run, verdict.validations)
        if all(r.set_aside for r in run.results):
            # No sheet held data, so no table has a ledger row for this version; one
            # row without a table still tells reconcile the version was handled.
            why = "no sheet holds data (empty or ignored)"
            names = tuple(workbook.sheet_names)
            run.pending.append(
                self._entry(run, self._new_id(), None, names, LoadStatus.SKIPPED, why)
            )

    def _load_table(self, run: _Run, validations: Sequence[SheetValidation]) -> None:
        accepted = [v for v in validations if not v.over_threshold]
        # The ledger's id for this table's load, named in the report written before it.
        load_id = self._new_id()
        for v in validations:
            if v.rows_rejected and not v.over_threshold:
                run.report_sheets.append(sheet_rejects(v, load_id=load_id))
        refused = [self._refuse_over_threshold(run, v) for v in validations if v.over_threshold]
        loaded: list[SheetResult] = []
        if accepted:
            # The report goes out before the rows commit: once they have, a redelivered
            # message is skipped without validating, and a report not yet written then
            # never would be. Rewriting it on a retry is harmless (same id, same content).
            run.report_now(self._reports)
            loaded = self._load_accepted(run, accepted, load_id)
        # Report sheets in workbook order, whatever happened to each.
        refused_in_order, loaded_in_order = iter(refused), iter(loaded)
        run.results.extend(
            next(refused_in_order) if v.over_threshold else next(loaded_in_order)
            for v in validations
        )

    def _load_accepted(
        self, run: _Run, accepted: Sequence[SheetValidation], load_id: str
    ) -> list[SheetResult]:
        """One result per accepted sheet, in their order."""
        uri = run.info.uri
        contract = accepted[0].contract
        rows = pa.concat_tables([v.valid_rows() for v in accepted])
        request = LoadRequest(
            contract=contract,
            rows=rows.cast(arrow_schema(contract)),
            source_uri=uri,
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
        self._progress.stage(uri, None, f"loading {contract.name}", 0, rows_to_load)
        try:
            self._warehouse.ensure_table(contract)
            receipt = self._warehouse.load(request)
        except SchemaDriftError as error:
            self._record(run, load_id, contract.name, accepted, LoadStatus.FAILED, str(error))
            run.report_sheets.append(
                SheetRejects.refusal(None, contract.name, str(error), load_id=load_id)
            )
            return [
                sheet_result(uri, v, Outcome.FAILED, rows_loaded=0, load_id=load_id, error=error)
                for v in accepted
            ]
        loaded = receipt.status is LoadStatus.LOADED
        self._progress.stage(
            uri, None, f"loaded {contract.name}", receipt.rows_loaded, rows_to_load
        )
        if receipt.status is LoadStatus.STALE:
            log.info(
                "%s: stale, a newer version is loaded (load %s)",
                printable(uri),
                receipt.load_id,
            )
        outcome = _OUTCOMES[receipt.status]
        return [
            sheet_result(
                uri,
                v,
                outcome,
                rows_loaded=v.rows_read - v.rows_rejected if loaded else 0,
                load_id=receipt.load_id,
            )
            for v in accepted
        ]

    def _skip(self, run: _Run, loaded: AlreadyLoaded) -> None:
        load_id = self._new_id()
        entry = self._entry(run, load_id, loaded.table, loaded.sheets, LoadStatus.SKIPPED)
        self._warehouse.record(entry)
        for sheet in loaded.sheets:
            run.results.append(
                SheetResult(run.info.uri, sheet, loaded.table, Outcome.SKIPPED, load_id=load_id)
            )

    # ------------------------------------------------------------ refusals

    def _refuse(self, run: _Run, refusal: Refusal) -> None:
        """A sheet (or the file) refused before validation: result, report sheet, ledger row."""
        run.results.append(refusal_result(run.info.uri, refusal, _REFUSED[refusal.status]))
        load_id = self._new_id()
        error = str(refusal.error)
        run.report_sheets.append(
            SheetRejects.refusal(refusal.sheet, refusal.table, error, load_id=load_id)
        )
        sheets = () if refusal.sheet is None else (refusal.sheet,)
        run.pending.append(self._entry(run, load_id, refusal.table, sheets, refusal.status, error))

    def _refuse_over_threshold(self, run: _Run, v: SheetValidation) -> SheetResult:
        error = over_threshold(run.info.uri, v)
        load_id = self._new_id()
        run.report_sheets.append(sheet_rejects(v, sheet_error=str(error), load_id=load_id))
        self._record(run, load_id, v.contract.name, [v], LoadStatus.REJECTED, str(error))
        return sheet_result(run.info.uri, v, Outcome.REJECTED, rows_loaded=0, error=error)

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
        """A refusal of validated sheets, their counts kept, for the ledger."""
        run.pending.append(
            self._entry(
                run,
                load_id,
                table,
                tuple(v.sheet.name for v in validations),
                status,
                error,
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
        *,
        rows_read: int = 0,
        rows_rejected: int = 0,
    ) -> LedgerEntry:
        """The ledger row of an attempt that loaded nothing: every one is built here."""
        return LedgerEntry(
            load_id=load_id,
            source_uri=run.info.uri,
            source_version=str(run.info.version),
            table=table,
            sheets=sheets,
            status=status,
            rows_read=rows_read,
            rows_loaded=0,
            rows_rejected=rows_rejected,
            started_at=run.started_at,
            finished_at=self._clock(),
            error=error,
        )


# ---------------------------------------------------------------- helpers

_OUTCOMES = {
    LoadStatus.LOADED: Outcome.LOADED,
    LoadStatus.SKIPPED: Outcome.SKIPPED,
    LoadStatus.STALE: Outcome.STALE,
}
_REFUSED = {LoadStatus.REJECTED: Outcome.REJECTED, LoadStatus.FAILED: Outcome.FAILED}
