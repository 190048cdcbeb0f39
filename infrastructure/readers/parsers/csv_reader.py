"""CSV files as one-sheet workbooks, parsed by pyarrow.csv into text columns.

Rows are CSV records, numbered the way a spreadsheet program shows the file:
record 1 is row 1, a record with quoted line breaks is one row, and blank
lines are rows too (they are counted, then dropped as blank). So
``preview`` (Python's csv module, first records only) and ``read``
(pyarrow, the whole file) agree on every row number.

The header may sit below title rows. pyarrow's ``skip_rows`` counts physical
lines, not records, so the preview pass also counts the lines up to the
header and that count is what pyarrow skips.

Text is UTF-8 (a BOM is fine). A file that is not valid UTF-8 is read as
Windows-1252, the encoding Excel on Windows writes with "CSV (Comma
delimited)"; anything else is refused rather than loaded as mojibake. The
delimiter is always a comma.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Callable, Iterator, Sized
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, TextIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from application.ports import LocalFile
from domain.arrays import counting, true_at
from domain.errors import TerminalError, UnreadableFileError
from domain.sheet import RawSheet, SheetPreview
from domain.source import ObjectInfo
from infrastructure.readers.failures import unreadable
from infrastructure.readers.limits import MB, ReaderLimits
from infrastructure.readers.parsers.cell_text import TEXT, blank_to_null
from infrastructure.readers.parsers.raw_sheet import build_raw_sheet, empty_raw_sheet

if TYPE_CHECKING:
    from _csv import Reader

Row = tuple[str | None, ...]
InvalidRowHandler = Callable[[Any], str]
_CHUNK = 1 * MB
# pyarrow must find all skipped lines in its first block; a UTF-8 character
# takes at most 4 bytes once transcoded.
_MIN_BLOCK = 1 * MB


class ArrowCsvWorkbookReader:
    """Opens .csv files; run the guards first (FileTypeWorkbookReader does)."""

    def __init__(self, limits: ReaderLimits | None = None) -> None:
        self._limits = limits or ReaderLimits()

    @contextmanager
    def open(self, file: LocalFile, info: ObjectInfo) -> Iterator[CsvWorkbook]:
        yield CsvWorkbook(file.path, info, _encoding_of(file.path, info), self._limits)


@dataclass(frozen=True)
class _Scan:
    """What the csv module learnt reading the file up to the header."""

    header: Row | None  # None when the file has fewer records than header_row
    lines: int  # physical lines up to and including the header
    chars: int  # characters in those lines
    width: int  # fields in the first non-blank record below the header; 0 if none


class CsvWorkbook:
    def __init__(self, path: Path, info: ObjectInfo, encoding: str, limits: ReaderLimits) -> None:
        self._path = path
        self._info = info
        self._encoding = encoding
        self._limits = limits
        self._sheet = PurePosixPath(info.name).stem

    @property
    def sheet_names(self) -> tuple[str, ...]:
        return (self._sheet,)

    def preview(self, sheet: str, rows: int) -> SheetPreview:
        self._check_sheet(sheet)
        head: list[Row] = []
        with self._records() as (records, _):
            for record in records:
                if len(head) >= rows:
                    break
                head.append(_cells(record))
        return SheetPreview(sheet, tuple(head), 1)

    def prefetch(self, sheet: str, header_row: int) -> None:
        return None  # parsed in the calling thread: nothing to start ahead

    def read(self, sheet: str, header_row: int) -> RawSheet:
        self._check_sheet(sheet)
        if header_row < 1:
            raise ValueError(f"header_row is 1-based, got {header_row}")
        scan = self._scan(header_row)
        if scan.header is None or scan.width == 0:
            return empty_raw_sheet(
                source=self._info.uri,
                name=sheet,
                header=scan.header or (),
                header_row=header_row,
                date_1904=False,
            )
        table, skipped = self._parse(sheet, header_row, scan)
        return build_raw_sheet(
            source=self._info.uri,
            name=sheet,
            header=scan.header,
            header_row=header_row,
            columns=[blank_to_null(col) for col in table.columns],
            row_numbers=_row_numbers(header_row, table.num_rows, skipped),
        )

    def _scan(self, header_row: int) -> _Scan:
        with self._records() as (records, counter):
            header: Row | None = None
            for number, record in enumerate(records, start=1):
                if number == header_row:
                    header = _cells(record)
                    lines, chars = records.line_num, counter.chars
                    break
            else:
                return _Scan(None, 0, 0, 0)
            width = next((len(r) for r in records if any(c.strip() for c in r)), 0)
        return _Scan(header, lines, chars, width)

    def _parse(self, sheet: str, header_row: int, scan: _Scan) -> tuple[pa.Table, list[int]]:
        """Data records as a string table, and the ordinals of whitespace-only lines skipped."""
        try:
            return self._stream(sheet, header_row, scan), []
        except _NeedsRowNumbers:
            # The multi-threaded reader does not know row numbers of invalid
            # rows; the single-threaded one does, at the price of one core.
            return self._read_serially(sheet, header_row, scan)

    def _stream(self, sheet: str, header_row: int, scan: _Scan) -> pa.Table:
        seen_invalid = False

        def on_invalid(row: pa_csv.InvalidRow) -> str:
            nonlocal seen_invalid
            seen_invalid = True
            return "error"

        try:
            return self._batches(sheet, scan, on_invalid, threads=True, skipped=())
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            if seen_invalid:
                raise _NeedsRowNumbers from exc
            raise self._malformed(sheet, exc) from exc

    def _read_serially(
        self, sheet: str, header_row: int, scan: _Scan
    ) -> tuple[pa.Table, list[int]]:
        skipped: list[int] = []
        bad: list[pa_csv.InvalidRow] = []

        def on_invalid(row: pa_csv.InvalidRow) -> str:
            if not row.text.strip() and row.number is not None:
                skipped.append(row.number - scan.lines)
                return "skip"
            bad.append(row)
            return "error"

        # Streamed too, so that an early ragged row is reported without reading
        # the rest, and a file over the row limit is refused at the limit
        # instead of after loading all of it.
        try:
            table = self._batches(sheet, scan, on_invalid, threads=False, skipped=skipped)
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            if bad:
                raise self._ragged(sheet, header_row, scan, bad[0]) from exc
            raise self._malformed(sheet, exc) from exc
        return table, skipped

    def _batches(
        self,
        sheet: str,
        scan: _Scan,
        on_invalid: InvalidRowHandler,
        *,
        threads: bool,
        skipped: Sized,
    ) -> pa.Table:
        """Every row, in batches, refused as soon as it passes the row limit.

        ``skipped`` (blank lines the reader dropped so far) counts toward the limit.
        """
        batches = []
        rows = 0
        limit = self._limits.max_rows_per_sheet
        with pa_csv.open_csv(
            self._path, **self._options(scan, on_invalid, threads=threads)
        ) as reader:
            for batch in reader:
                rows += batch.num_rows
                if rows + len(skipped) > limit:
                    raise self._too_many_rows(sheet, f"more than {limit:,}")
                batches.append(batch)
        return pa.Table.from_batches(batches, schema=_schema(scan.width))

    def _options(
        self, scan: _Scan, on_invalid: InvalidRowHandler, *, threads: bool
    ) -> dict[str, Any]:
        names = [f"c{i}" for i in range(scan.width)]
        return {
            "read_options": pa_csv.ReadOptions(
                skip_rows=scan.lines,
                column_names=names,
                encoding=self._encoding,
                use_threads=threads,
                block_size=max(_MIN_BLOCK, 4 * scan.chars + 64 * 1024),
            ),
            "parse_options": pa_csv.ParseOptions(
                newlines_in_values=True,
                # Blank lines stay rows (all null) so later rows keep their numbers.
                ignore_empty_lines=False,
                invalid_row_handler=on_invalid,
            ),
            "convert_options": pa_csv.ConvertOptions(
                column_types={name: TEXT for name in names},
                # Only the empty field is null: "NA", "NULL", "#N/A" are values
                # for validation to judge, not pyarrow's default null markers.
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        }

    @contextmanager
    def _records(self) -> Iterator[tuple[Reader, _CharCounter]]:
        encoding = "utf-8-sig" if self._encoding == "utf8" else self._encoding
        try:
            with self._path.open(encoding=encoding, newline="") as fh:
                counter = _CharCounter(fh)
                yield csv.reader(counter), counter
        except (csv.Error, UnicodeDecodeError, OSError) as exc:
            raise self._malformed(self._sheet, exc) from exc

    def _check_sheet(self, sheet: str) -> None:
        if sheet != self._sheet:
            raise TerminalError(
                f"{self._info.uri}: no sheet {sheet!r}",
                code="no_such_sheet",
                source=self._info.uri,
                sheet=sheet,
            )

    def _too_many_rows(self, sheet: str, count: str) -> UnreadableFileError:
        limit = self._limits.max_rows_per_sheet
        return unreadable(
            self._info,
            "too_many_rows",
            f"the file has {count} rows, over the limit of {limit:,}",
            sheet=sheet,
            limit=limit,
        )

    def _malformed(self, sheet: str, exc: BaseException) -> UnreadableFileError:
        detail = " ".join(str(exc).split())[:500]
        return unreadable(self._info, "malformed_csv", f"not a readable CSV: {detail}", sheet=sheet)

    def _ragged(
        self, sheet: str, header_row: int, scan: _Scan, row: pa_csv.InvalidRow
    ) -> UnreadableFileError:
        where = "" if row.number is None else f"row {header_row + row.number - scan.lines} "
        text = row.text if len(row.text) <= 200 else row.text[:200] + "..."
        return unreadable(
            self._info,
            "malformed_csv",
            f"{where}has {row.actual_columns} fields where the rows below the header have "
            f"{row.expected_columns}: {text!r}",
            sheet=sheet,
            row=None if row.number is None else header_row + row.number - scan.lines,
        )


class _CharCounter:
    """Lines of a text file, counting the characters handed out."""

    def __init__(self, fh: TextIO) -> None:
        self._fh = fh
        self.chars = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = next(self._fh)
        self.chars += len(line)
        return line


class _NeedsRowNumbers(Exception):
    """The streaming pass met an invalid row; re-read serially to number it."""


def _cells(record: list[str]) -> Row:
    return tuple(cell if cell.strip() else None for cell in record)


def _schema(width: int) -> pa.Schema:
    return pa.schema([(f"c{i}", TEXT) for i in range(width)])


def _row_numbers(header_row: int, rows: int, skipped: list[int]) -> pa.Array:
    """Spreadsheet row of each parsed record, given the data ordinals skipped (1-based)."""
    numbers = counting(header_row + 1, rows + len(skipped))
    if skipped:
        numbers = numbers.filter(pc.invert(true_at(len(numbers), (s - 1 for s in skipped))))
    return numbers


def _encoding_of(path: Path, info: ObjectInfo) -> str:
    """pyarrow's name for the file's encoding: UTF-8 if it all decodes, else cp1252.

    One streaming pass over the bytes; deciding from the first lines alone
    would mis-read a file whose first accented name is on row 50,000.
    """
    for encoding in ("utf8", "cp1252"):
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            with path.open("rb") as fh:
                while chunk := fh.read(_CHUNK):
                    decoder.decode(chunk)
                decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        except OSError as exc:
            raise unreadable(info, "malformed_csv", f"cannot read the file: {exc}") from exc
        return encoding
    raise unreadable(info, "malformed_csv", "the file is neither UTF-8 nor Windows-1252 text")
