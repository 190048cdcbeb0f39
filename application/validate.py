"""The dry run: judge a file's sheets exactly as ingest would, and load nothing.

An uploader checks a file before sending it, often from a laptop that cannot reach
the warehouse and must never read its secret. So this use case has no warehouse at
all: files, reader and router (and the report writer, for `validate --report`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Executor

from application.pipeline import (
    FileRun,
    IngestSettings,
    Refusal,
    SheetPipeline,
    Validated,
    failed_file,
    over_threshold,
    refusal_result,
    sheet_rejects,
    sheet_result,
)
from application.ports import (
    FileSource,
    ProgressListener,
    RejectsReportWriter,
    Workbook,
    WorkbookReader,
)
from application.results import CheckFile, IngestResult, Outcome, SheetResult
from domain.errors import TerminalError
from domain.ledger import LoadStatus
from domain.rejects import SheetRejects
from domain.routing import Router
from domain.validation import SheetValidation


class ValidateFile:
    def __init__(
        self,
        files: FileSource,
        reader: WorkbookReader,
        router: Router,
        reports: RejectsReportWriter,
        settings: IngestSettings | None = None,
        progress: ProgressListener | None = None,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        validation_pool: Executor | None = None,
    ) -> None:
        self._files = files
        self._reports = reports
        self._pipeline = SheetPipeline(files, reader, router, settings, progress, validation_pool)
        self._new_id = new_id

    def execute(self, command: CheckFile) -> IngestResult:
        """What ingesting ``command.uri`` would do, sheet by sheet; no outcome is reported.

        A sheet ingest would refuse is INVALID with its error (FAILED when unreadable),
        one whose rows it would partly reject INVALID without, the others VALID.
        """
        try:
            info = self._files.head(command.uri)
        except TerminalError as error:
            return IngestResult(command.uri, None, (failed_file(command.uri, error),))
        run = FileRun(info=info)
        try:
            with self._pipeline.open(info) as workbook:
                self._check_workbook(run, workbook)
        except TerminalError as error:
            # Raised while opening: the file as a whole is unreadable.
            self._refuse(run, Refusal.of_file(error))
        if command.write_report:
            run.report_now(self._reports)
        return IngestResult(info.uri, info.version, run.results_with_report())

    def _check_workbook(self, run: FileRun, workbook: Workbook) -> None:
        uri = run.info.uri
        # As if nothing were loaded yet: a dry run reads and judges every table.
        for verdict in self._pipeline.judge(uri, workbook, frozenset):
            if isinstance(verdict, SheetResult):
                run.results.append(verdict)
            elif isinstance(verdict, Refusal):
                self._refuse(run, verdict)
            elif isinstance(verdict, Validated):
                self._judge_table(run, verdict.validations)

    def _judge_table(self, run: FileRun, validations: Sequence[SheetValidation]) -> None:
        uri = run.info.uri
        # The id ingest would give the table's load, as its report would name it.
        load_id = self._new_id()
        for v in validations:
            if v.rows_rejected and not v.over_threshold:
                run.report_sheets.append(sheet_rejects(v, load_id=load_id))
        for v in validations:
            if v.over_threshold:
                error = over_threshold(uri, v)
                run.report_sheets.append(
                    sheet_rejects(v, sheet_error=str(error), load_id=self._new_id())
                )
                run.results.append(
                    sheet_result(uri, v, Outcome.INVALID, rows_loaded=0, error=error)
                )
            else:
                status = Outcome.INVALID if v.rows_rejected else Outcome.VALID
                run.results.append(sheet_result(uri, v, status, rows_loaded=0))

    def _refuse(self, run: FileRun, refusal: Refusal) -> None:
        # An unreadable sheet fails here as it would in ingest; an unroutable one is INVALID.
        status = Outcome.FAILED if refusal.status is LoadStatus.FAILED else Outcome.INVALID
        run.results.append(refusal_result(run.info.uri, refusal, status))
        run.report_sheets.append(
            SheetRejects.refusal(
                refusal.sheet, refusal.table, str(refusal.error), load_id=self._new_id()
            )
        )
