"""An in-memory WorkbookReader: sheets given as lists of rows.

It follows the real readers' rules (cells as text, blank rows dropped, row
numbers as a spreadsheet shows them) so use-case tests need no files.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime

import pyarrow as pa

from application.ports import LocalFile
from domain.errors import TerminalError, UnreadableFileError
from domain.sheet import RawSheet, SheetPreview
from domain.source import ObjectInfo

Rows = Sequence[Sequence[object]]


def as_text(value: object) -> str | None:
    """How the real readers render a cell."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


class InMemoryWorkbook:
    def __init__(self, uri: str, sheets: Mapping[str, Rows], date_1904: bool = False) -> None:
        self._uri = uri
        self._sheets = {
            name: [[as_text(c) for c in row] for row in rows] for name, rows in sheets.items()
        }
        self._date_1904 = date_1904
        # What the caller asked for, to check a read started ahead is the one read.
        self.prefetched: list[tuple[str, int]] = []
        self.reads: list[tuple[str, int]] = []

    @property
    def sheet_names(self) -> tuple[str, ...]:
        return tuple(self._sheets)

    def preview(self, sheet: str, rows: int) -> SheetPreview:
        return SheetPreview(sheet, tuple(tuple(r) for r in self._rows(sheet)[:rows]), 1)

    def prefetch(self, sheet: str, header_row: int) -> None:
        self.prefetched.append((sheet, header_row))

    def read(self, sheet: str, header_row: int) -> RawSheet:
        self.reads.append((sheet, header_row))
        all_rows = self._rows(sheet)
        header = all_rows[header_row - 1] if header_row <= len(all_rows) else []
        # Like the real readers: cells right of the header are read, as unnamed columns.
        width = max((len(r) for r in all_rows[header_row - 1 :]), default=0)
        header = (list(header) + [None] * width)[:width]
        kept: list[list[str | None]] = []
        numbers: list[int] = []
        for offset, row in enumerate(all_rows[header_row:]):
            cells = (list(row) + [None] * width)[:width]
            if any(c is not None and c.strip() for c in cells):
                kept.append(cells)
                numbers.append(header_row + 1 + offset)
        columns = {f"c{i}": pa.array([r[i] for r in kept], pa.string()) for i in range(width)}
        return RawSheet(
            source=self._uri,
            name=sheet,
            header=tuple(c or "" for c in header),
            header_row=header_row,
            cells=pa.table(columns) if columns else pa.table({}),
            row_numbers=pa.array(numbers, pa.int64()),
            date_1904=self._date_1904,
        )

    def _rows(self, sheet: str) -> list[list[str | None]]:
        if sheet not in self._sheets:
            raise TerminalError(f"{self._uri}: no sheet {sheet!r}", code="no_such_sheet")
        return self._sheets[sheet]


class InMemoryWorkbookReader:
    def __init__(self) -> None:
        self.workbooks: dict[str, InMemoryWorkbook] = {}
        self.unreadable: dict[str, UnreadableFileError] = {}
        self.opened: list[str] = []

    def add(self, uri: str, sheets: Mapping[str, Rows], date_1904: bool = False) -> None:
        self.workbooks[uri] = InMemoryWorkbook(uri, sheets, date_1904)

    def break_file(self, uri: str, error: UnreadableFileError) -> None:
        """Make ``uri`` unreadable, as a corrupt or encrypted file would be."""
        self.unreadable[uri] = error

    @contextmanager
    def open(self, file: LocalFile, info: ObjectInfo) -> Iterator[InMemoryWorkbook]:
        self.opened.append(info.uri)
        if info.uri in self.unreadable:
            raise self.unreadable[info.uri]
        workbook = self.workbooks.get(info.uri)
        if workbook is None:
            raise UnreadableFileError(f"{info.uri}: unknown workbook", code="corrupt_workbook")
        yield workbook
