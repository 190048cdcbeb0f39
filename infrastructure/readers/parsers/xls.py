"""Legacy .xls (BIFF) workbooks through xlrd.

calamine (under fastexcel and python-calamine) misreads real .xls files:
it decodes BIFF8 strings stored as UTF-16 and code-page (BIFF5, cp1252)
text byte by byte (``D\\x00a\\x00y\\x00`` for ``Day``), and fastexcel lets
an embedded chart's cached series overwrite sheet cells. xlrd, the
reference reader for the format, gets both right (measured: see README
"Choices"). It is pure Python and slower, which a .xls bounds: at most
65,536 rows by 256 columns.

Cells become text through cell_text.py, as every reader's do: numbers in
their shortest round-trip form, booleans ``true``/``false``, dates by the
workbook's own date system (1900 or 1904), number formats with ``[h]``,
``[m]`` or ``[s]`` as durations (``25:03:00``), error cells as their Excel
text (``#N/A``). Chart sheets, macro sheets and VBA modules are not data
sheets and are not listed (xlrd skips them).
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TypeVar, cast

import pyarrow as pa
import xlrd

from application.ports import LocalFile
from domain.errors import DatalakepError
from domain.sheet import RawSheet, SheetPreview
from domain.source import ObjectInfo
from infrastructure.readers.failures import (
    check_sheet_count,
    check_sheet_height,
    no_such_sheet,
    parser_refusal,
)
from infrastructure.readers.limits import ReaderLimits
from infrastructure.readers.parsers.cell_text import (
    fill_cells,
    grouped_cells_text,
    python_cells_text,
)
from infrastructure.readers.parsers.raw_sheet import build_raw_sheet

Row = tuple[str | None, ...]
_T = TypeVar("_T")
# Elapsed-time formats: the bracketed unit does not wrap at 24 h / 60 min.
# xlrd's cell types by the kind cell_text.py renders them as; empty and blank
# cells are left out (null).
_KINDS = {
    xlrd.XL_CELL_TEXT: "text",
    xlrd.XL_CELL_NUMBER: "number",
    xlrd.XL_CELL_DATE: "date",
    xlrd.XL_CELL_BOOLEAN: "bool",
    xlrd.XL_CELL_ERROR: "error",
}
_DURATION_FORMAT = re.compile(r"\[(h+|m+|s+)\]", re.IGNORECASE)


class XlrdWorkbookReader:
    """Opens .xls files; run the guards first (FileTypeWorkbookReader does)."""

    def __init__(self, limits: ReaderLimits | None = None) -> None:
        self._limits = limits or ReaderLimits()

    def open(self, file: LocalFile, info: ObjectInfo) -> AbstractContextManager[XlsWorkbook]:
        return _open(file, info, self._limits)


@contextmanager
def _open(file: LocalFile, info: ObjectInfo, limits: ReaderLimits) -> Iterator[XlsWorkbook]:
    book = _translated(
        info,
        None,
        lambda: xlrd.open_workbook(
            str(file.path),
            formatting_info=True,  # cell formats: durations are told by theirs
            on_demand=True,
            logfile=io.StringIO(),  # xlrd writes its warnings to stdout otherwise
        ),
    )
    try:
        names = tuple(book.sheet_names())
        check_sheet_count(info, len(names), limits.max_sheets)
        yield XlsWorkbook(book, info, names, limits)
    finally:
        book.release_resources()


class XlsWorkbook:
    def __init__(
        self, book: xlrd.Book, info: ObjectInfo, sheet_names: tuple[str, ...], limits: ReaderLimits
    ) -> None:
        self._book = book
        self._info = info
        self._sheet_names = sheet_names
        self._limits = limits
        self._date_1904 = book.datemode == 1
        self._durations = {
            key
            for key, fmt in book.format_map.items()
            if _DURATION_FORMAT.search(fmt.format_str or "")
        }

    @property
    def sheet_names(self) -> tuple[str, ...]:
        return self._sheet_names

    def preview(self, sheet: str, rows: int) -> SheetPreview:
        return _translated(self._info, sheet, lambda: self._preview(sheet, rows))

    def prefetch(self, sheet: str, header_row: int) -> None:
        return None  # parsed in the calling thread: nothing to start ahead

    def read(self, sheet: str, header_row: int) -> RawSheet:
        if header_row < 1:
            raise ValueError(f"header_row is 1-based, got {header_row}")
        return _translated(self._info, sheet, lambda: self._read(sheet, header_row))

    def _preview(self, sheet: str, rows: int) -> SheetPreview:
        data = self._sheet(sheet)
        count = min(max(rows, 0), data.nrows)
        columns = [self._text(data, c, 0, count) for c in range(data.ncols)]
        cells = [column.to_pylist() for column in columns]
        return SheetPreview(sheet, tuple(tuple(row) for row in zip(*cells, strict=True)), 1)

    def _read(self, sheet: str, header_row: int) -> RawSheet:
        data = self._sheet(sheet)
        header: Row = ()
        if header_row <= data.nrows:
            header = tuple(
                self._text(data, c, header_row - 1, header_row).to_pylist()[0]
                for c in range(data.ncols)
            )
        first = header_row + 1
        rows = max(data.nrows - header_row, 0)
        columns = [self._text(data, c, header_row, data.nrows) for c in range(data.ncols)]
        return build_raw_sheet(
            source=self._info.uri,
            name=sheet,
            header=header,
            header_row=header_row,
            columns=columns if rows else (),
            row_numbers=pa.array(range(first, first + rows), pa.int64()),
            date_1904=self._date_1904,
        )

    def _sheet(self, sheet: str) -> xlrd.sheet.Sheet:
        if sheet not in self._sheet_names:
            raise no_such_sheet(self._info, sheet)
        data = self._book.sheet_by_name(sheet)
        check_sheet_height(self._info, sheet, data.nrows, self._limits.max_rows_per_sheet)
        return data

    def _text(self, data: xlrd.sheet.Sheet, column_index: int, start: int, end: int) -> pa.Array:
        kinds = data.col_types(column_index, start, end)
        values = data.col_values(column_index, start, end)
        # Each kind's rows and values, the kinds in _KINDS's order; blanks in none.
        found: dict[int, tuple[list[int], list[object]]] = {}
        for row, (code, value) in enumerate(zip(kinds, values, strict=True)):
            if code in _KINDS:
                rows, kept = found.setdefault(code, ([], []))
                rows.append(row)
                kept.append(value)
        groups = {kind: found[code] for code, kind in _KINDS.items() if code in found}
        if "bool" in groups:
            rows_, flags = groups["bool"]
            groups["bool"] = (rows_, [bool(v) for v in flags])
        if "error" in groups:
            rows_, codes = groups["error"]
            texts: list[object] = [xlrd.error_text_from_code.get(v, f"#ERROR{v}") for v in codes]
            groups["error"] = (rows_, texts)
        dates = groups.pop("date", None)
        column = grouped_cells_text(end - start, groups, date_1904=self._date_1904)
        if dates is None:
            return column
        # Dates, times of day and durations, told apart by each cell's format.
        date_rows, serials = dates
        moments = [
            self._moment(data, start + row, column_index, cast(float, serial))
            for row, serial in zip(date_rows, serials, strict=True)
        ]
        return fill_cells(column, date_rows, python_cells_text(moments, date_1904=self._date_1904))

    def _moment(self, data: xlrd.sheet.Sheet, row: int, column: int, serial: float) -> object:
        xf = self._book.xf_list[data.cell_xf_index(row, column)]
        if xf.format_key in self._durations:
            return dt.timedelta(days=serial)
        try:
            moment = xlrd.xldate_as_datetime(serial, self._book.datemode)
        except (ValueError, OverflowError, xlrd.xldate.XLDateError):
            return serial  # outside the calendar: the number itself
        if 0 <= serial < 1:
            return moment.time()
        return moment


def _translated(info: ObjectInfo, sheet: str | None, work: Callable[[], _T]) -> _T:
    """xlrd's failures, opening or reading, as a corrupt workbook naming the file and sheet.

    xlrd is pure Python and reports a damaged file with whatever its parsing
    code hits (XLRDError, but also struct.error, IndexError, AssertionError,
    KeyError, UnicodeDecodeError...): any exception but running out of
    memory (or our own refusals) means the bytes are not a readable workbook.
    """
    try:
        return work()
    except (MemoryError, DatalakepError):
        raise
    except Exception as exc:
        raise parser_refusal(info, sheet, exc) from exc
