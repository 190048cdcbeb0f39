"""Spreadsheet and CSV readers: files on local disk to RawSheets of text.

``FileTypeWorkbookReader`` is the entry point; it runs the guards (size,
container type, encryption, zip bombs) before any parser touches the bytes.
"""

from infrastructure.readers.dispatch import FileTypeWorkbookReader
from infrastructure.readers.guards.checks import FileKind, inspect_file
from infrastructure.readers.limits import ReaderLimits
from infrastructure.readers.parsers.csv_reader import ArrowCsvWorkbookReader, CsvWorkbook
from infrastructure.readers.parsers.excel import FastexcelWorkbook, FastexcelWorkbookReader
from infrastructure.readers.parsers.xls import XlrdWorkbookReader, XlsWorkbook

__all__ = [
    "ArrowCsvWorkbookReader",
    "CsvWorkbook",
    "FastexcelWorkbook",
    "FastexcelWorkbookReader",
    "FileKind",
    "FileTypeWorkbookReader",
    "ReaderLimits",
    "XlrdWorkbookReader",
    "XlsWorkbook",
    "inspect_file",
]
