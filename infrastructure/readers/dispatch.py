"""The WorkbookReader the application uses: guards first, then the parser for the kind."""

from __future__ import annotations

from contextlib import AbstractContextManager

from application.ports import LocalFile, Workbook
from domain.source import ObjectInfo
from infrastructure.readers.guards.checks import FileKind, inspect_file
from infrastructure.readers.limits import ReaderLimits
from infrastructure.readers.parsers.csv_reader import ArrowCsvWorkbookReader
from infrastructure.readers.parsers.excel import FastexcelWorkbookReader
from infrastructure.readers.parsers.xls import XlrdWorkbookReader


class FileTypeWorkbookReader:
    """Reads .xlsx, .xlsm, .xls, .ods and .csv files under ``limits``.

    .xlsx/.xlsm/.ods go to fastexcel (excel.py), .xls to xlrd (xls.py), .csv
    to pyarrow (csv_reader.py).

    The kind comes from the extension and must agree with the file's magic
    bytes (guards.py); macros in .xlsm files are never run, only cell values
    are read.
    """

    def __init__(self, limits: ReaderLimits | None = None, *, scan_extent: bool = True) -> None:
        self._limits = limits or ReaderLimits()
        self._scan_extent = scan_extent
        self._excel = FastexcelWorkbookReader(self._limits)
        self._xls = XlrdWorkbookReader(self._limits)
        self._csv = ArrowCsvWorkbookReader(self._limits)

    @property
    def limits(self) -> ReaderLimits:
        return self._limits

    def open(self, file: LocalFile, info: ObjectInfo) -> AbstractContextManager[Workbook]:
        kind = inspect_file(file, info, self._limits, scan_extent=self._scan_extent)
        if kind is FileKind.CSV:
            return self._csv.open(file, info)
        if kind is FileKind.XLS:
            return self._xls.open(file, info)
        return self._excel.open(file, info)
