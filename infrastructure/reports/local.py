"""The rejects report as two local files: an annotated workbook and a flat CSV.

The workbook is for the person who fixes the source: the rejected rows as they
read them, with every bad cell highlighted and commented. The CSV is for
machines and for reports too large to open comfortably: one line per problem.

Everything a report echoes back came from an untrusted file, so every text cell
is neutralised (see :mod:`infrastructure.reports.neutralise`) and, in the
workbook, explicitly typed as a string so that nothing is evaluated.
"""

from __future__ import annotations

import csv
import os
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.comments import Comment
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter

from domain.rejects import CellReject, RejectedRow, RejectsReport, SheetRejects
from infrastructure.reports.neutralise import neutralise

SUMMARY_SHEET = "summary"
ROW_COLUMN = "source_row"
ERRORS_COLUMN = "datalakep_errors"
CSV_COLUMNS = ("source", "sheet", "row", "column", "value", "reason", "message")
# RejectReason has no member for a refused sheet; the CSV needs a reason anyway.
SHEET_ERROR_REASON = "sheet_error"

# Excel's hard limits: a sheet has 1,048,576 rows (one is our header) and a
# cell holds 32,767 characters; a sheet title has at most 31.
MAX_DATA_ROWS = 1_048_575
_MAX_CELL_CHARS = 32_767
_MAX_TITLE_CHARS = 31
# Excel refuses "History" as a sheet title, and "summary" is ours.
_RESERVED_TITLES = frozenset({"history", SUMMARY_SHEET})
_INVALID_TITLE_CHARS = re.compile(r"[\[\]:*?/\\]")
# openpyxl is untyped; re-typing its pattern keeps the helpers below checked.
_ILLEGAL_XML_CHARS: re.Pattern[str] = ILLEGAL_CHARACTERS_RE
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]")
# Long enough to recognise the source, short enough to stay well under the
# 255-byte file name limit once the load id and suffixes are added.
_MAX_STEM_CHARS = 100

# Excel's own "Bad" cell style, which people already read as "fix this".
_BAD_FILL = PatternFill(fill_type="solid", start_color="FFFFC7CE", end_color="FFFFC7CE")
_BAD_FONT = Font(color="FF9C0006")
_HEADER_FONT = Font(bold=True)
_REFUSED_TAB_COLOUR = "FFC00000"
_AUTHOR = "datalakeP"


@dataclass(frozen=True)
class ReportPaths:
    xlsx: Path
    csv: Path


def safe_file_stem(source_uri: str) -> str:
    """The source's file name without directories or extension, safe on any disk.

    ``s3://bucket/in/Q1 sales.xlsx`` gives ``Q1_sales``. Leading dots are
    dropped so the report is never a hidden file nor ``..``.
    """
    name = re.split(r"[/\\]", source_uri.rstrip("/\\"))[-1]
    stem, dot, _extension = name.rpartition(".")
    if not dot or not stem:
        stem = name
    stem = _UNSAFE_NAME_CHARS.sub("_", stem).lstrip(".")[:_MAX_STEM_CHARS]
    return stem or "source"


def _safe_component(value: str) -> str:
    return _UNSAFE_NAME_CHARS.sub("_", value).lstrip(".")[:_MAX_STEM_CHARS] or "load"


class LocalRejectsReportWriter:
    """Writes ``<source>.<load_id>.rejects.xlsx`` and ``.csv`` into a directory."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    def paths(self, report: RejectsReport) -> ReportPaths:
        base = f"{safe_file_stem(report.source_uri)}.{_safe_component(report.load_id)}.rejects"
        return ReportPaths(
            xlsx=self._directory / f"{base}.xlsx",
            csv=self._directory / f"{base}.csv",
        )

    def write(self, report: RejectsReport) -> str:
        """Write both files and return the workbook's absolute path."""
        paths = self.paths(report)
        self._directory.mkdir(parents=True, exist_ok=True)
        _replace_atomically(paths.csv, lambda tmp: _write_csv(report, tmp))
        _replace_atomically(paths.xlsx, lambda tmp: _write_workbook(report, tmp))
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


# ---------------------------------------------------------------- text safety


def _xml_safe(value: str) -> str:
    # Control characters are illegal in XML (openpyxl refuses them); showing
    # them escaped tells the person exactly what is in the cell.
    return _ILLEGAL_XML_CHARS.sub(lambda m: f"\\x{ord(m.group()):02x}", value)


def _text(value: str | None) -> str | None:
    """A cell's text as it may appear in either file: inert, XML-legal, in size."""
    if value is None:
        return None
    safe = neutralise(_xml_safe(value)) or ""
    if len(safe) > _MAX_CELL_CHARS:
        safe = safe[: _MAX_CELL_CHARS - 1] + "…"
    return safe


def _string_cell(ws: Any, value: str | None) -> Any:
    cell = WriteOnlyCell(ws, value=_text(value))
    if value is not None:
        # openpyxl infers a formula from a leading "=" and an error from "#N/A";
        # the report must show exactly the text, so the type is forced.
        cell.data_type = "s"
    return cell


def _bold(ws: Any, value: str | None) -> Any:
    cell = _string_cell(ws, value)
    cell.font = _HEADER_FONT
    return cell


# ---------------------------------------------------------------- CSV


def _write_csv(report: RejectsReport, path: Path) -> None:
    source = _text(report.source_uri)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for sheet in report.sheets:
            name = _text(sheet.sheet)
            if sheet.sheet_error is not None:
                writer.writerow(
                    [source, name, "", "", "", SHEET_ERROR_REASON, _text(sheet.sheet_error)]
                )
            for row in sheet.rows:
                for problem in row.problems:
                    writer.writerow(
                        [
                            source,
                            name,
                            problem.row,
                            _text(problem.column),
                            _text(problem.value),
                            problem.reason.value,
                            _text(problem.message),
                        ]
                    )


# ---------------------------------------------------------------- workbook


def _write_workbook(report: RejectsReport, path: Path) -> None:
    # Write-only mode streams rows to disk: a report of 100k rejected rows
    # would otherwise hold a few million cell objects in memory.
    workbook = Workbook(write_only=True)
    titles = _sheet_titles(s.sheet for s in report.sheets)
    summary = workbook.create_sheet(SUMMARY_SHEET)
    shown = [min(len(s.rows), MAX_DATA_ROWS) for s in report.sheets]
    _write_summary(summary, report, titles, shown)
    for sheet, title, limit in zip(report.sheets, titles, shown, strict=True):
        _write_rejects_sheet(workbook.create_sheet(title), sheet, limit)
    workbook.save(path)


def _sheet_titles(names: Iterable[str]) -> list[str]:
    """Excel-valid titles, unique case-insensitively as Excel requires."""
    used = set(_RESERVED_TITLES)
    titles = []
    for name in names:
        base = _ILLEGAL_XML_CHARS.sub("_", _INVALID_TITLE_CHARS.sub("_", name))
        # Excel also refuses a title that starts or ends with an apostrophe.
        base = base[:_MAX_TITLE_CHARS].strip("'") or "sheet"
        title, n = base, 2
        while title.casefold() in used:
            suffix = f" ({n})"
            title = base[: _MAX_TITLE_CHARS - len(suffix)].rstrip("'") + suffix
            n += 1
        used.add(title.casefold())
        titles.append(title)
    return titles


def _write_summary(
    ws: Any, report: RejectsReport, titles: Sequence[str], shown: Sequence[int]
) -> None:
    ws.column_dimensions["A"].width = 24
    ws.column_dimensions["B"].width = 40
    for letter, width in zip("CDEFG", (24, 12, 14, 60, 50), strict=True):
        ws.column_dimensions[letter].width = width
    ws.append([_bold(ws, "Source"), _string_cell(ws, report.source_uri)])
    ws.append([_bold(ws, "Version"), _string_cell(ws, report.source_version)])
    ws.append([_bold(ws, "Load id"), _string_cell(ws, report.load_id)])
    ws.append([_bold(ws, "Rejected rows"), report.rejected_rows])
    ws.append([])
    ws.append(
        [
            _bold(ws, label)
            for label in (
                "Sheet",
                "Report sheet",
                "Table",
                "Header row",
                "Rejected rows",
                "Sheet error",
                "Note",
            )
        ]
    )
    for sheet, title, limit in zip(report.sheets, titles, shown, strict=True):
        note = None
        if limit < len(sheet.rows):
            note = f"only the first {limit:,} rows are shown here; the CSV lists every problem"
        ws.append(
            [
                _string_cell(ws, sheet.sheet),
                _string_cell(ws, title),
                _string_cell(ws, sheet.table),
                sheet.header_row,
                len(sheet.rows),
                _string_cell(ws, sheet.sheet_error),
                _string_cell(ws, note),
            ]
        )


def _sheet_width(sheet: SheetRejects) -> int:
    """Columns to show: the header, but also any longer row or flagged cell."""
    width = len(sheet.header)
    for row in sheet.rows:
        width = max(width, len(row.values), *(p.position + 1 for p in row.problems))
    return width


def _write_rejects_sheet(ws: Any, sheet: SheetRejects, limit: int) -> None:
    width = _sheet_width(sheet)
    labels = [*sheet.header, *([""] * (width - len(sheet.header)))]
    # Sheet views and column widths go out before the first row in write-only mode.
    ws.freeze_panes = "A2"
    if sheet.sheet_error is not None:
        ws.sheet_properties.tabColor = _REFUSED_TAB_COLOUR
    ws.column_dimensions["A"].width = len(ROW_COLUMN) + 2
    for index, label in enumerate(labels, start=2):
        ws.column_dimensions[get_column_letter(index)].width = min(max(len(label), 10), 40) + 2
    ws.column_dimensions[get_column_letter(width + 2)].width = 80
    ws.append([_bold(ws, x) for x in (ROW_COLUMN, *labels, ERRORS_COLUMN)])
    for row in sheet.rows[:limit]:
        ws.append(_row_cells(ws, row, width))


def _row_cells(ws: Any, row: RejectedRow, width: int) -> list[Any]:
    by_position: dict[int, list[CellReject]] = {}
    for problem in row.problems:
        by_position.setdefault(problem.position, []).append(problem)
    cells: list[Any] = [row.row]
    for position in range(width):
        value = row.values[position] if position < len(row.values) else None
        cell = _string_cell(ws, value)
        problems = by_position.get(position)
        if problems:
            cell.fill = _BAD_FILL
            cell.font = _BAD_FONT
            # A comment is never evaluated, so it only needs to be XML-legal.
            text = _xml_safe("\n".join(p.message for p in problems))[:_MAX_CELL_CHARS]
            cell.comment = Comment(text, _AUTHOR, height=40 + 20 * len(problems), width=320)
        cells.append(cell)
    errors = "; ".join(f"{p.column}: {p.message}" for p in row.problems)
    cells.append(_string_cell(ws, errors))
    return cells
