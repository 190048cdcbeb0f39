"""The rejects report as two local files: an annotated workbook and a flat CSV.

The workbook is for the person who fixes the source: the rejected rows as they
read them, with every bad cell highlighted and commented. The CSV is for
machines and for reports too large to open comfortably: one line per problem.

Everything a report echoes back came from an untrusted file, so text that a
spreadsheet could evaluate is neutralised (see
:mod:`infrastructure.reports.neutralise`): quoted in the CSV, and in the
workbook typed as a string with Excel's own quote prefix, which keeps the
text exactly as read so that the fixed workbook can be uploaded again.
"""

from __future__ import annotations

import csv
import os
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from domain.rejects import RejectsReport
from infrastructure.reports.text import report_text

CSV_COLUMNS = ("source", "sheet", "row", "column", "value", "reason", "message")
# RejectReason has no member for a refused sheet; the CSV needs a reason anyway.
SHEET_ERROR_REASON = "sheet_error"

# Excel's hard limit: a sheet has 1,048,576 rows, one of them our header.
MAX_DATA_ROWS = 1_048_575
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]")
# Long enough to recognise the source, short enough to stay well under the
# 255-byte file name limit once the load id and suffixes are added.
_MAX_STEM_CHARS = 100


@dataclass(frozen=True)
class ReportPaths:
    xlsx: Path
    csv: Path


def safe_file_name(source_uri: str) -> str:
    """The source's file name without directories, safe on any disk.

    ``s3://bucket/in/Q1 sales.xlsx`` gives ``Q1_sales.xlsx``: the extension
    stays, so the reports on ``foo.xlsx`` and ``foo.csv`` are told apart by
    name. Leading dots are dropped so the report is never a hidden file nor ``..``.
    """
    name = re.split(r"[/\\]", source_uri.rstrip("/\\"))[-1]
    stem = _UNSAFE_NAME_CHARS.sub("_", name).lstrip(".")[:_MAX_STEM_CHARS]
    return stem or "source"


def _safe_component(value: str) -> str:
    return _UNSAFE_NAME_CHARS.sub("_", value).lstrip(".")[:_MAX_STEM_CHARS] or "load"


class LocalRejectsReportWriter:
    """Writes ``<source>.<load_id>.rejects.xlsx`` and ``.csv`` into a directory."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    def paths(self, report: RejectsReport) -> ReportPaths:
        base = f"{safe_file_name(report.source_uri)}.{_safe_component(report.load_id)}.rejects"
        return ReportPaths(
            xlsx=self._directory / f"{base}.xlsx",
            csv=self._directory / f"{base}.csv",
        )

    def write(self, report: RejectsReport) -> str:
        """Write both files and return the workbook's absolute path."""
        paths = self.paths(report)
        self._directory.mkdir(parents=True, exist_ok=True)
        _replace_atomically(paths.csv, lambda tmp: _write_csv(report, tmp))
        # Imported here: openpyxl costs ~60 ms of start-up, and most runs reject nothing.
        from infrastructure.reports.workbook import write_workbook

        _replace_atomically(paths.xlsx, lambda tmp: write_workbook(report, tmp, MAX_DATA_ROWS))
        return str(paths.xlsx.absolute())


def _replace_atomically(target: Path, write: Callable[[Path], None]) -> None:
    # A person (or a sync job) watching the directory must never open a
    # half-written report, and a failed write must not leave debris behind.
    # Not tempfile.mkstemp: its 0600 mode would survive the rename and hide
    # the report from colleagues; a random name created normally honours umask.
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


# ---------------------------------------------------------------- CSV


def _write_csv(report: RejectsReport, path: Path) -> None:
    source = report_text(report.source_uri)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for sheet in report.sheets:
            name = report_text(sheet.sheet)
            if sheet.sheet_error is not None:
                writer.writerow(
                    [source, name, "", "", "", SHEET_ERROR_REASON, report_text(sheet.sheet_error)]
                )
            for row in sheet.rows:
                for problem in row.problems:
                    writer.writerow(
                        [
                            source,
                            name,
                            problem.row,
                            report_text(problem.column),
                            report_text(problem.value),
                            problem.reason.value,
                            report_text(problem.message),
                        ]
                    )
