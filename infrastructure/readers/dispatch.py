"""The WorkbookReader the application uses: guards first, then the parser for the kind."""

from __future__ import annotations

from contextlib import AbstractContextManager

from application.ports import LocalFile, Workbook
from domain.source import ObjectInfo
from infrastructure.readers.guards.checks import FileKind, inspect_file
from infrastructure.readers.limits import ReaderLimits
from infrastructure.readers.parsers.excel import FastexcelWorkbookReader


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

    @property
    def limits(self) -> ReaderLimits:
        return self._limits

    def open(self, file: LocalFile, info: ObjectInfo) -> AbstractContextManager[Workbook]:
        kind = inspect_file(file, info, self._limits, scan_extent=self._scan_extent)
        # The .csv and .xls readers are imported by the first file of their kind: most
        # processes never see one, and their imports (xlrd, the CSV sniffing) were
        # 15-20 ms of every cold start here (`python -X importtime`).
        if kind is FileKind.CSV:
            from infrastructure.readers.parsers.csv_reader import ArrowCsvWorkbookReader

            return ArrowCsvWorkbookReader(self._limits).open(file, info)
        if kind is FileKind.XLS:
            from infrastructure.readers.parsers.xls import XlrdWorkbookReader

            return XlrdWorkbookReader(self._limits).open(file, info)
        return self._excel.open(file, info)
