"""The rejects report's annotated workbook, written with openpyxl.

The workbook goes round trip: a person fixes the highlighted cells and
uploads it again. So its data sheets keep the original header, and every cell
is written so that a reader gives back exactly the text it gave the first time
(see :func:`typed_value`); routing ignores the helper columns and the summary.

Imported only when a report is written: openpyxl is slow to import and most
ingests reject nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.comments import Comment
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter

from domain.rejects import (
    REPORT_ERRORS_COLUMN,
    REPORT_ROW_COLUMN,
    REPORT_SUMMARY_LABELS,
    REPORT_SUMMARY_SHEET,
    CellReject,
    RejectedRow,
    RejectsReport,
    SheetRejects,
)
from infrastructure.reports.neutralise import needs_neutralising
from infrastructure.reports.text import ILLEGAL_XML_CHARS, MAX_CELL_CHARS, fit_cell, xml_safe

# Excel's own "Bad" cell style, which people already read as "fix this".
_BAD_FILL = PatternFill(fill_type="solid", start_color="FFFFC7CE", end_color="FFFFC7CE")
_BAD_FONT = Font(color="FF9C0006")
_HEADER_FONT = Font(bold=True)
_REFUSED_TAB_COLOUR = "FFC00000"
_AUTHOR = "datalakeP"
_MAX_TITLE_CHARS = 31
# Excel refuses "History" as a sheet title, and "summary" is ours.
_RESERVED_TITLES = frozenset({"history", REPORT_SUMMARY_SHEET})
_INVALID_TITLE_CHARS = re.compile(r"[\[\]:*?/\\]")
# The text forms readers give typed cells (infrastructure/readers/parsers/cell_text.py).
_INTEGER = re.compile(r"-?(0|[1-9]\d*)")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
# Digits only: float() also takes "nan", "inf" and "1_000", none of which a reader renders.
_DECIMAL_NUMBER = re.compile(r"-?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?")
_EXACT_INT_LIMIT = 2**53
_BOOLEANS = {"true": True, "false": False}


def typed_value(text: str) -> int | float | bool | date | datetime | None:
    """The number, boolean, date or date-time whose reader text is exactly ``text``.

    Readers render typed cells as ``22``, ``0.9167``, ``true``, ``2020-01-02``
    and ``2020-01-02 13:45:00``; a cell written back typed reads back as the
    same text, so a fixed report validates as its source did. Any other text
    (``007``, ``22.0``, ``thirty``) has no such twin and stays text.
    """
    if _INTEGER.fullmatch(text):
        whole = int(text)
        return whole if abs(whole) <= _EXACT_INT_LIMIT and text != "-0" else None
    if text in _BOOLEANS:
        return _BOOLEANS[text]
    try:
        if _DATE.fullmatch(text):
            return date.fromisoformat(text)
        if _DATETIME.fullmatch(text):
            return datetime.fromisoformat(text)
    except ValueError:
        return None  # 2020-02-30: text it is
    if not _DECIMAL_NUMBER.fullmatch(text):
        return None
    number = float(text)
    # Python and Arrow both print a double in its shortest round-trip form; a
    # whole one (22.0, -0.0) reads back as an integer ("22", "0"), so it stays text.
    return number if repr(number) == text and not number.is_integer() else None


def _string_cell(ws: Any, value: str | None) -> Any:
    cell = WriteOnlyCell(ws, value=None if value is None else fit_cell(xml_safe(value)))
    if value is not None:
        # openpyxl infers a formula from a leading "=" and an error from "#N/A";
        # the report must show exactly the text, so the type is forced.
        cell.data_type = "s"
        if needs_neutralising(value):
            # Excel's and Calc's own "this is text" flag: shown and read back
            # without the quote, never evaluated, even after the cell is edited.
            cell.quotePrefix = True
    return cell


def _value_cell(ws: Any, value: str | None) -> Any:
    typed = None if value is None else typed_value(value)
    if typed is None:
        return _string_cell(ws, value)
    return WriteOnlyCell(ws, value=typed)


def _bold(ws: Any, value: str | None) -> Any:
    cell = _string_cell(ws, value)
    cell.font = _HEADER_FONT
    return cell


def write_workbook(report: RejectsReport, path: Path, max_rows: int) -> None:
    """Write the workbook, showing at most ``max_rows`` rejected rows per sheet."""
    # Write-only mode streams rows to disk: a report of 100k rejected rows
    # would otherwise hold a few million cell objects in memory.
    workbook = Workbook(write_only=True)
    titles = _sheet_titles(s.sheet for s in report.sheets)
    summary = workbook.create_sheet(REPORT_SUMMARY_SHEET)
    shown = [min(len(s.rows), max_rows) for s in report.sheets]
    _write_summary(summary, report, titles, shown)
    for sheet, title, limit in zip(report.sheets, titles, shown, strict=True):
        _write_rejects_sheet(workbook.create_sheet(title), sheet, limit)
    workbook.save(path)


def _sheet_titles(names: Iterable[str]) -> list[str]:
    """Excel-valid titles, unique case-insensitively as Excel requires."""
    used = set(_RESERVED_TITLES)
    titles = []
    for name in names:
        base = ILLEGAL_XML_CHARS.sub("_", _INVALID_TITLE_CHARS.sub("_", name))
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
    for letter, width in zip("CDEFGH", (24, 12, 14, 60, 50, 38), strict=True):
        ws.column_dimensions[letter].width = width
    # The third names the report file, the same on every retry; each sheet's
    # ledger load_id is in the sheet rows below.
    values = (report.source_uri, report.source_version, report.load_id)
    for label, value in zip(REPORT_SUMMARY_LABELS, values, strict=True):
        ws.append([_bold(ws, label), _string_cell(ws, value)])
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
                "Load id",
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
                _string_cell(ws, sheet.load_id),
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
    ws.column_dimensions["A"].width = len(REPORT_ROW_COLUMN) + 2
    for index, label in enumerate(labels, start=2):
        ws.column_dimensions[get_column_letter(index)].width = min(max(len(label), 10), 40) + 2
    ws.column_dimensions[get_column_letter(width + 2)].width = 80
    ws.append([_bold(ws, x) for x in (REPORT_ROW_COLUMN, *labels, REPORT_ERRORS_COLUMN)])
    for row in sheet.rows[:limit]:
        ws.append(_row_cells(ws, row, width))


def _row_cells(ws: Any, row: RejectedRow, width: int) -> list[Any]:
    by_position: dict[int, list[CellReject]] = {}
    for problem in row.problems:
        by_position.setdefault(problem.position, []).append(problem)
    cells: list[Any] = [row.row]
    for position in range(width):
        value = row.values[position] if position < len(row.values) else None
        cell = _value_cell(ws, value)
        problems = by_position.get(position)
        if problems:
            cell.fill = _BAD_FILL
            cell.font = _BAD_FONT
            # A comment is never evaluated, so it only needs to be XML-legal.
            text = xml_safe("\n".join(p.message for p in problems))[:MAX_CELL_CHARS]
            cell.comment = Comment(text, _AUTHOR, height=40 + 20 * len(problems), width=320)
        cells.append(cell)
    errors = "; ".join(f"{p.column}: {p.message}" for p in row.problems)
    cells.append(_string_cell(ws, errors))
    return cells
