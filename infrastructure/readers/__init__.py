"""Spreadsheet and CSV readers: files on local disk to RawSheets of text.

``FileTypeWorkbookReader`` is the entry point; it runs the guards (size,
container type, encryption, zip bombs) before any parser touches the bytes.
The .csv and .xls readers are not imported here: dispatch.py imports each when
the first file of its kind arrives (parsers/csv_reader.py, parsers/xls.py).
"""

from infrastructure.readers.dispatch import FileTypeWorkbookReader
from infrastructure.readers.guards.checks import FileKind, inspect_file
from infrastructure.readers.limits import ReaderLimits
from infrastructure.readers.parsers.excel import FastexcelWorkbook, FastexcelWorkbookReader

__all__ = [
    "FastexcelWorkbook",
    "FastexcelWorkbookReader",
    "FileKind",
    "FileTypeWorkbookReader",
    "ReaderLimits",
    "inspect_file",
]
