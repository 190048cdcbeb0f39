"""Excel-family workbooks (.xlsx, .xlsm, .ods) through fastexcel, straight to Arrow.

fastexcel (Rust calamine) is ~20x faster than pandas+openpyxl; see README
"Choices". (.xls goes to xlrd, xls.py: calamine misreads real .xls files.)
What fastexcel does and how this module compensates (fastexcel 0.21):

- Rows: with ``header_row=None, skip_rows=0`` rows start at the sheet's
  absolute row 1 even when the used range starts lower (padded with nulls);
  ``header_row`` is an absolute 0-based row index. Columns start at the used
  range's first column, so the leading empty columns are padded back here:
  column ``c{i}`` is always spreadsheet column i (A=0), in previews, in
  RawSheets and therefore in reject reports.
- What is converted, and how (cell_text.py renders every path alike):
  numbers in their shortest round-trip form (``62.20387201595072``,
  ``1e-10``; integral ones as ``22``), booleans as ``true``/``false``,
  dates as ``2020-01-02``, date-times as ``2020-01-02 13:45:00``, times of
  day as ``13:45:00``, durations (``[h]:mm`` cells, .ods time cells) as
  ``25:03:00``, error cells as their Excel text (``#N/A``, ``#NAME?``) so
  that validation rejects them unless the contract takes text.
- Mixed columns: fastexcel coerces a column that mixes kinds (numbers as
  9-decimal text, booleans as 1/0, durations as date-times) and refuses
  some mixes outright (an error-only column, an .ods duration next to a
  date). So data rows are loaded with ``dtype_coercion="strict"``: a sheet
  whose every column holds one kind (the usual case, and the fast one)
  stays on fastexcel's typed columns; any other sheet is read cell by cell
  through python-calamine, which keeps each cell's kind, with error cells
  (which python-calamine gives as empty) taken from fastexcel's text load.
  Previews are read the same way, on a cut copy for .xlsx (below).
- Date systems: calamine takes ``date1904`` from the last ``workbookPr``
  element, and Excel 2013+ writes a second one (``x15:workbookPr``, without
  the flag) in ``extLst``: every date came out 1,462 days early. The flag
  is read from the workbook's own element (xlsx_parts.py) and, when
  calamine would miss it, calamine parses a copy where it cannot; typed
  dates are then right, and ``date_1904`` tells validation how to read
  serial numbers held as numbers or text. .ods dates carry no system.
- Package layout: parts are found as Office finds them (xlsx_parts.py);
  a package calamine would misread (``xl/SharedStrings.xml``, ``\\``
  separators, the workbook part outside ``xl/``) is handed to it as a
  canonical copy in memory. Canonical packages are read in place.
- An all-empty column makes fastexcel log a warning ("Could not determine
  dtype ...", logger ``fastexcel.types.dtype``) and read it as text.
- Formulas give their cached value; a file written without one (openpyxl)
  reads as empty.
- Hidden and very hidden sheets are read like visible ones: hiding a sheet is
  layout, not a statement that its rows are not data. Chart sheets of
  .xlsx/.xlsm are not listed.
- calamine can panic on odd files (pyo3 PanicException, a BaseException);
  that is reported as a corrupt workbook like its ordinary errors.
- Header labels come from the preview, not from fastexcel's column names,
  which it de-duplicates ("Age_1") and invents for blanks ("__UNNAMED__3").
  Every load parses the whole sheet (~1 KB of memory per row) even for a
  5-row preview, so .xlsx/.xlsm previews parse a copy cut to the first rows
  (xlsx_head.py): 1M rows previewed in ms instead of 5.5 s. .ods previews
  parse the whole sheet. The last preview is cached.
- Large sheets: a worksheet whose XML inflates to ``split_sheet_bytes`` or
  more is cut at row boundaries (xlsx_split.py) and its parts loaded
  strictly, a thread each (fastexcel releases the GIL), then joined into the
  whole sheet's typed columns. Whatever a part cannot decide alone (mixed
  kinds, kinds differing between parts, odd tags) sends the sheet back to the
  single parse, so the rows are the same either way.
- Sheet sizes are checked by the guards (sheet_extent.py) before calamine
  allocates anything, except for a sheet parsed in parts: its parts' pass
  checks them, and whatever parses it otherwise (the whole sheet's parse
  after all, the preview's cut copy) scans it first here. ``max_rows_per_sheet``
  is checked again on the parsed height before any Arrow conversion.
"""

from __future__ import annotations

import io
import logging
import os
import re
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import fastexcel
import pyarrow as pa
import python_calamine

from application.ports import LocalFile
from domain.arrays import counting
from domain.sheet import RawSheet, SheetPreview
from domain.source import ObjectInfo
from infrastructure.readers.failures import (
    check_sheet_count,
    check_sheet_height,
    no_such_sheet,
    parser_refusal,
)
from infrastructure.readers.guards.checks import too_many_cells
from infrastructure.readers.guards.sheet_extent import first_oversized_sheet
from infrastructure.readers.guards.xlsx_parts import (
    UNKNOWN,
    canonical_copy,
    read_xlsx_parts,
    xlsx_parts_of,
)
from infrastructure.readers.limits import ReaderLimits
from infrastructure.readers.parsers.cell_text import (
    TEXT,
    ArrowColumn,
    excel_text,
    fill_cells,
    iso_duration_text,
    python_cells_text,
)
from infrastructure.readers.parsers.raw_sheet import build_raw_sheet, empty_raw_sheet
from infrastructure.readers.parsers.xlsx_head import head_copy
from infrastructure.readers.parsers.xlsx_split import (
    PACKAGES_IN_MEMORY,
    Oversized,
    Package,
    PartPlan,
    RawPart,
    SheetSplitter,
    Unsplittable,
)

Row = tuple[str | None, ...]
# Previews are cut at least this deep so the usual preview-then-read of a
# header a few rows down needs one cut copy (the pipeline previews its header
# search rows and reads a header among them, from the cached head). Both parsers
# take in the whole cut: 64 rows cost the Kaggle sheet's preview 0.3-1 ms of CPU
# more than 32.
_MIN_CUT_ROWS = 32
# Threads for the per-column text conversion; the targets have two cores or so.
_THREADS = 2
# Below this many rows the columns are converted in this thread.
_THREADED_ROWS = 10_000
# Up to this many cells, cells read one by one are rendered as one array and cut
# into columns: each kernel then runs once, not once per column (the preview of
# the 12-column Kaggle workbook, cut copy included: 4.5 ms of CPU per column, 2.9 ms
# together). Rendering is cell by cell, so the text is the same either way; larger
# reads stay per column, not to hold a second list of every cell.
_RENDER_TOGETHER_CELLS = 65_536
# A load that refuses a column of mixed kinds rather than coerce it (numbers cut
# to 9 decimals in text, booleans made 1/0), its types inferred from every row.
_STRICT: dict[str, Any] = {
    "schema_sample_rows": None,
    "dtype_coercion": "strict",
    "whitespace_as_null": True,
}
# A sheet is parsed in parts only while each part is at least this many times the
# size of what every part parses again (shared strings, styles), unless that is
# small enough to cost each part a few milliseconds.
_SHARED_SHARE = 8
_SHARED_FREE_BYTES = 1024 * 1024
# Parts are cut no larger: calamine's buffers for a larger part are over glibc's
# 32 MiB mmap threshold, so each part's are mapped fresh and faulted in page by
# page (135,000 faults for the million-row sheet's parses in 33 MB parts, 46,000
# in 16 MB parts; 0.2 CPU s less).
_LARGEST_PART = 16 * 1024 * 1024
# The threads that parse a large sheet's parts (xlsx_split.py) are named so.
_PART_THREAD = "datalakep-part"


class _QuietParts(logging.Filter):
    """Drops fastexcel's "Could not determine dtype" warnings from the part threads.

    A column empty in one part is no news: the part takes the column's type
    from the others (``_joined``).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.threadName or "").startswith(_PART_THREAD)


logging.getLogger("fastexcel.types.dtype").addFilter(_QuietParts())

# calamine's CellErrorType names, as fastexcel reports them, to Excel's text.
_ERROR_TEXT = {
    "Div0": "#DIV/0!",
    "NA": "#N/A",
    "Name": "#NAME?",
    "Null": "#NULL!",
    "Num": "#NUM!",
    "Ref": "#REF!",
    "Value": "#VALUE!",
    "GettingData": "#GETTING_DATA",
}
# e.g. "Expected float but got 'Error(Div0)'" or "... got 'String(\"  \")"
_CELL_ERROR = re.compile(r"got '(?P<kind>\w+)\((?P<payload>.*)\)'?\s*$", re.DOTALL)
_BLANK_DEBUG_STRING = re.compile(r'"(?:\s|\\[tnr])*"')


class FastexcelWorkbookReader:
    """Opens .xlsx/.xlsm/.ods files; run the guards first (FileTypeWorkbookReader does)."""

    def __init__(self, limits: ReaderLimits | None = None) -> None:
        self._limits = limits or ReaderLimits()

    @contextmanager
    def open(self, file: LocalFile, info: ObjectInfo) -> Iterator[FastexcelWorkbook]:
        source: Path | bytes = file.path
        parts = read_xlsx_parts(file.path) if zipfile.is_zipfile(file.path) else UNKNOWN
        if not parts.canonical:
            with _translated(info, None):
                copy = canonical_copy(file.path)
            if copy is not None:
                source = copy
                parts = xlsx_parts_of(zipfile.ZipFile(io.BytesIO(copy)))
        with _translated(info, None):
            reader = fastexcel.read_excel(source)
            names = reader.sheet_names
        check_sheet_count(info, len(names), self._limits.max_sheets)
        worksheets = parts.worksheet_names
        if worksheets is not None:
            names = [n for n in names if n in worksheets]
        workbook = FastexcelWorkbook(
            reader,
            source,
            info,
            tuple(names),
            parts.date_1904,
            self._limits,
            # Previews come from a cut copy when the package layout is understood,
            # and large sheets are parsed in parts then too.
            worksheets=parts.worksheets,
        )
        try:
            yield workbook
        finally:
            workbook.close()


@dataclass(frozen=True)
class _Head:
    """The first rows of one sheet as text, and what the load learnt about it."""

    sheet: str
    requested: int
    rows: tuple[Row, ...]
    # Rows from row 1 to the last used row; None when only a cut copy of the
    # sheet was parsed, which says the sheet is longer than ``rows``.
    height: int | None


class FastexcelWorkbook:
    def __init__(
        self,
        reader: fastexcel.ExcelReader,
        source: Path | bytes,
        info: ObjectInfo,
        sheet_names: tuple[str, ...],
        date_1904: bool,
        limits: ReaderLimits,
        *,
        worksheets: dict[str, str] | None = None,
    ) -> None:
        self._reader: fastexcel.ExcelReader | None = reader
        self._source = source
        self._cells: _CellReader | None = None
        self._info = info
        self._sheet_names = sheet_names
        self._date_1904 = date_1904
        self._limits = limits
        self._worksheets = worksheets  # sheet name -> zip member, when the layout is known
        self._cuttable = worksheets is not None
        self._cut: _Cut | None = None
        self._head_cache: _Head | None = None
        # Sheets whose extent is known to be within the limits: scanned by the guards
        # (any sheet not parsed in parts), or here.
        self._scanned: set[str] = set()

    @property
    def sheet_names(self) -> tuple[str, ...]:
        return self._sheet_names

    def close(self) -> None:
        # calamine holds the file open until the reader is dropped.
        self._reader = None
        self._cells = None
        self._cut = None
        self._head_cache = None

    def preview(self, sheet: str, rows: int) -> SheetPreview:
        if rows <= 0:
            self._check_sheet(sheet)
            return SheetPreview(sheet, (), 1)
        return SheetPreview(sheet, self._head(sheet, rows).rows[:rows], 1)

    def prefetch(self, sheet: str, header_row: int) -> None:
        return None  # parsed in the calling thread: nothing to start ahead

    def read(self, sheet: str, header_row: int) -> RawSheet:
        if header_row < 1:
            raise ValueError(f"header_row is 1-based, got {header_row}")
        head = self._head(sheet, header_row)
        if header_row > len(head.rows):
            return self._empty(sheet, (), header_row)
        header = head.rows[header_row - 1]
        if head.height is not None and header_row >= head.height:
            # Nothing below; also, calamine panics on a header past the end.
            return self._empty(sheet, header, header_row)
        with _translated(self._info, sheet):
            columns = self._data_columns(sheet, header_row - 1)
        rows = len(columns[0]) if columns else 0
        first = header_row + 1
        return build_raw_sheet(
            source=self._info.uri,
            name=sheet,
            header=header,
            header_row=header_row,
            columns=columns,
            row_numbers=counting(first, rows),
            date_1904=self._date_1904,
        )

    def _empty(self, sheet: str, header: Row, header_row: int) -> RawSheet:
        return empty_raw_sheet(
            source=self._info.uri,
            name=sheet,
            header=header,
            header_row=header_row,
            date_1904=self._date_1904,
        )

    def _head(self, sheet: str, rows: int) -> _Head:
        cached = self._head_cache
        if cached is not None and cached.sheet == sheet:
            whole_sheet = len(cached.rows) < cached.requested
            if rows <= cached.requested or whole_sheet:
                return cached
        with _translated(self._info, sheet):
            # Opening the readers is parsing too: python-calamine refuses some
            # packages fastexcel opened (a multi-disk zip directory, found by fuzzing).
            reader, cells_reader, whole = self._head_reader(sheet, rows)
            exact = self._exact_columns(reader, cells_reader, sheet, 0, rows)
        height = exact.height if whole else None
        first_col = exact.first_col
        cells = [col.to_pylist() for col in exact.columns]
        pad: Row = (None,) * first_col
        head_rows = tuple(pad + tuple(row) for row in zip(*cells, strict=True))
        self._head_cache = _Head(sheet, rows, head_rows, height)
        return self._head_cache

    def _head_reader(
        self, sheet: str, rows: int
    ) -> tuple[fastexcel.ExcelReader, _CellReader, bool]:
        """The readers to preview ``sheet`` from, and whether they hold the whole sheet."""
        reader = self._open_reader(sheet)
        if not self._cuttable:
            self._check_extent(sheet)
            return reader, self._cell_reader(), True
        if self._cut is None or self._cut.rows < rows:
            self._cut = self._make_cut(self._source, max(rows, _MIN_CUT_ROWS), self._worksheets)
            if self._cut is None:
                self._cuttable = False
                self._check_extent(sheet)
                return reader, self._cell_reader(), True
        cut = self._cut
        if sheet not in cut.scanned:
            # The cut's first rows can reach as far as the whole sheet's.
            self._check_extent(sheet, cut.data, whole=sheet in cut.complete)
            cut.scanned.add(sheet)
        return cut.reader, cut.cells, sheet in cut.complete

    def _cell_reader(self) -> _CellReader:
        if self._cells is None:
            self._cells = _CellReader(self._source)
        return self._cells

    @staticmethod
    def _make_cut(
        source: Path | bytes, rows: int, worksheets: dict[str, str] | None
    ) -> _Cut | None:
        try:
            package = io.BytesIO(source) if isinstance(source, bytes) else source
            copy = head_copy(package, rows, worksheets)
            if copy is None:
                return None
            return _Cut(
                rows,
                copy.data,
                fastexcel.read_excel(copy.data),
                _CellReader(copy.data),
                copy.complete,
            )
        except (
            zipfile.BadZipFile,
            zlib.error,
            ElementTree.ParseError,
            OSError,
            ValueError,
            # zipfile on a truncated member, an exotic compression method and
            # an encrypted member.
            EOFError,
            NotImplementedError,
            RuntimeError,
            fastexcel.FastExcelError,
            python_calamine.CalamineError,
        ):
            # Not fatal: the full parse then reports a broken file properly.
            return None

    def _data_columns(self, sheet: str, header_index: int) -> list[pa.Array]:
        first_col, columns = self._parted_columns(sheet, header_index) or self._whole_columns(
            sheet, header_index
        )
        rows = len(columns[0]) if columns else 0
        return [pa.nulls(rows, TEXT)] * first_col + columns

    def _whole_columns(self, sheet: str, header_index: int) -> tuple[int, list[pa.Array]]:
        """The sheet's data columns from one parse of the whole sheet."""
        reader = self._open_reader(sheet)
        self._check_extent(sheet)
        try:
            # No header_row: fastexcel would name the columns after the header's
            # labels, and its de-duplication of equal labels is worse than quadratic
            # (4,000 equal labels took 16 s; 16,384 would take an hour). The labels
            # come from the preview; here every row below the header is data, and
            # total_height counts from the sheet's first row.
            loaded = reader.load_sheet(
                sheet, header_row=None, skip_rows=header_index + 1, **_STRICT
            )
            self._check_height(sheet, loaded.total_height)
            return self._text_columns(loaded)
        except (
            fastexcel.UnsupportedColumnTypeCombinationError,
            fastexcel.CalamineCellError,
            _LossyConversion,
        ):
            # Some column holds more than one kind of cell: read cell by cell.
            exact = self._exact_columns(reader, self._cell_reader(), sheet, header_index + 1)
            return exact.first_col, exact.columns

    def _exact_columns(
        self,
        reader: fastexcel.ExcelReader,
        cells: _CellReader,
        sheet: str,
        skip_rows: int,
        n_rows: int | None = None,
    ) -> _Exact:
        """The sheet's rows from ``skip_rows`` on as text, every cell in its own kind.

        python-calamine gives each cell's value as it is stored; it gives
        error cells as empty, so their positions and kinds come from
        fastexcel's text load of the same rows, which also gives the sheet's
        height and first column.
        """
        loaded = reader.load_sheet(
            sheet,
            header_row=None,
            skip_rows=skip_rows,
            n_rows=n_rows,
            dtypes="string",
            whitespace_as_null=True,
        )
        self._check_height(sheet, loaded.total_height)
        selected = loaded.selected_columns
        first_col = selected[0].absolute_index if selected else 0
        batch, cell_errors = loaded.to_arrow_with_errors()
        values = cells.columns(
            sheet,
            first_row=skip_rows,
            rows=batch.num_rows,
            first_col=first_col,
            width=batch.num_columns,
        )
        patches = _error_patches(cell_errors)
        columns = []
        for index, text in enumerate(self._rendered(values, batch.num_rows)):
            if index in patches:
                text = fill_cells(text, *patches[index])
            columns.append(text)
        return _Exact(first_col, columns, loaded.total_height)

    def _rendered(self, values: list[list[object]], height: int) -> list[pa.Array]:
        """Columns of ``height`` cells read one by one, as text."""
        if len(values) * height > _RENDER_TOGETHER_CELLS:
            return [python_cells_text(column, date_1904=self._date_1904) for column in values]
        together = python_cells_text(
            [cell for column in values for cell in column], date_1904=self._date_1904
        )
        return [together.slice(i * height, height) for i in range(len(values))]

    def _text_columns(self, loaded: fastexcel.ExcelSheet) -> tuple[int, list[pa.Array]]:
        """A strictly typed load's columns: one kind of cell each, plus error cells."""
        typed = _typed(loaded)
        return typed.first_col, self._converted(typed.columns, typed.patches)

    def _converted(self, columns: list[ArrowColumn], patches: _Patches) -> list[pa.Array]:
        """Typed columns as validation takes them: floats as they are, the rest as text."""

        def convert(index: int, column: ArrowColumn) -> pa.Array:
            if index not in patches and pa.types.is_floating(column.type):
                # Purely numeric column: validation takes the numbers as they
                # are, which spares formatting a million floats as text only to
                # parse them back.
                return _contiguous(column)
            text = excel_text(column, date_1904=self._date_1904)
            if index in patches:
                text = fill_cells(text, *patches[index])
            return _contiguous(text)

        if not columns or len(columns[0]) < _THREADED_ROWS:
            # Handing a column to a thread costs ~0.1 ms: more than converting a
            # short one, and seconds for a short sheet 16,384 columns wide.
            return [convert(i, c) for i, c in enumerate(columns)]
        # Arrow's kernels release the GIL: two threads convert the columns in
        # a little over half the time.
        with ThreadPoolExecutor(max_workers=_THREADS) as pool:
            return list(pool.map(convert, range(len(columns)), columns))

    def _parted_columns(self, sheet: str, header_index: int) -> tuple[int, list[pa.Array]] | None:
        """The data columns of a large sheet parsed in parts on every core, or None.

        None when the sheet is small, or not of the shape the parts need
        (xlsx_split.py), or when a part meets anything the whole sheet's
        parse decides differently: a column of mixed kinds, a part whose
        kind for a column differs from another's, error-only columns, a
        sheet over the row limit, a parser error. The caller then parses the
        sheet whole, which decides each of those as it always has.
        Otherwise the typed columns are those of the whole sheet's strict
        load, part after part, and are converted to text the same way.
        """
        member = None if self._worksheets is None else self._worksheets.get(sheet)
        if member is None:
            return None
        limits = self._limits
        with closing(SheetSplitter(self._source, member, limits.max_cells_per_sheet)) as splitter:
            size = splitter.inflated_bytes
            if not limits.splits(size):
                return None
            plan = part_plan(size, splitter.shared_bytes, cores(), limits.split_sheet_bytes)
            if plan is None:
                return None

            def load(part: RawPart) -> _PartLoad:
                return self._load_part(splitter, sheet, header_index, part)

            try:
                loads = _in_parallel(splitter.parts(plan), load, plan.workers)
            except Unsplittable:
                if splitter.proven:
                    self._scanned.add(sheet)
                return None
            except Oversized as over:
                raise too_many_cells(self._info, over.extent, sheet, limits) from None
        # Every part checked: the sheet's extent with them.
        self._scanned.add(sheet)
        typed = _joined(loads, header_index)
        if typed is None:
            return None
        return typed.first_col, self._converted(typed.columns, typed.patches)

    def _load_part(
        self, splitter: SheetSplitter, sheet: str, header_index: int, part: RawPart
    ) -> _PartLoad:
        """One part, checked, then parsed."""
        try:
            package = splitter.package(part)
        except OSError as exc:
            # No memory file to be had (memory, descriptors): the whole parse needs none.
            raise Unsplittable(f"part {part.index}: {exc}") from exc
        with package:
            splitter.check(part, package)
            return self._parse_part(package, sheet, header_index, part)

    def _parse_part(
        self, package: Package, sheet: str, header_index: int, part: RawPart
    ) -> _PartLoad:
        """One part's strict load, its rows placed where they sit in the sheet's data."""
        # The part's first data row (1-based), the rows above it, and how many of
        # the sheet's data rows the part stands for, up to the next part's first.
        start = max(part.first_row, header_index + 2)
        above = start - 1
        span = None if part.end_row is None else part.end_row - start
        if span is not None and span <= 0:
            return _PartLoad(_Typed(0, [], {}), 0, 0)  # only rows above the data
        try:
            reader = fastexcel.read_excel(package.path)
            if part.first_row < start or above < 2:
                loaded = reader.load_sheet(sheet, header_row=None, skip_rows=above, **_STRICT)
                height = loaded.total_height
            else:
                # The row just above the part, which holds no cell of it, as the
                # header: with header_row=None calamine would allocate every row
                # from the sheet's first (0.2 s per part near row 600,000). Its
                # labels are fastexcel's own, all distinct. (Header row 0 means
                # the first non-empty row to fastexcel, hence above >= 2.)
                loaded = reader.load_sheet(sheet, header_row=above - 1, **_STRICT)
                height = above + loaded.total_height
            del reader  # the loaded sheet holds its cells
            if height > self._limits.max_rows_per_sheet:
                raise Unsplittable("over the row limit: the whole sheet's parse says so")
            typed = _typed(loaded)
        except Unsplittable:
            raise
        except Exception as exc:
            # Mixed kinds, an empty part, a damaged file: whatever it is, the
            # whole sheet's parse decides it (or reports it) as it always has.
            raise Unsplittable(f"part {part.index}: {exc}") from exc
        except BaseException as exc:
            if not _is_rust_panic(exc):
                raise
            raise Unsplittable(f"part {part.index}: {exc}") from exc
        rows = len(typed.columns[0]) if typed.columns else 0
        if span is not None and rows > span:
            raise Unsplittable(f"part {part.index} reaches into the next one")
        return _PartLoad(typed, span if span is not None else rows, height)

    def _check_extent(self, sheet: str, source: bytes | None = None, *, whole: bool = True) -> None:
        """Refuse ``sheet`` (``too_many_cells``) before calamine parses it, if the guards
        left its scan to the parser (a sheet parsed in parts) and nothing here did it yet.

        ``source``: the package about to be parsed, the workbook's own by default;
        ``whole``: whether it holds the whole sheet, which is then known to fit.
        """
        member = None if self._worksheets is None else self._worksheets.get(sheet)
        if member is None or sheet in self._scanned:
            return  # an unknown layout: the guards scanned every part
        with _zip(self._source) as archive:
            found = member in archive.NameToInfo
            if not found or not self._limits.splits(archive.getinfo(member).file_size):
                self._scanned.add(sheet)  # the guards' scan had it, or calamine reports it
                return
        with _zip(self._source if source is None else source) as archive:
            extent = first_oversized_sheet(archive, [member], self._limits.max_cells_per_sheet)
        if extent is not None:
            raise too_many_cells(self._info, extent, sheet, self._limits)
        if whole:
            self._scanned.add(sheet)

    def _check_height(self, sheet: str, height: int) -> None:
        check_sheet_height(self._info, sheet, height, self._limits.max_rows_per_sheet)

    def _check_sheet(self, sheet: str) -> None:
        if sheet not in self._sheet_names:
            raise no_such_sheet(self._info, sheet)

    def _open_reader(self, sheet: str) -> fastexcel.ExcelReader:
        self._check_sheet(sheet)
        if self._reader is None:
            raise RuntimeError(f"{self._info.uri}: workbook used after it was closed")
        return self._reader


def _contiguous(column: ArrowColumn) -> pa.Array:
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


# Excel error texts by batch column: (rows, texts), rows ascending.
_Patches = dict[int, tuple[list[int], list[str]]]


@dataclass(frozen=True)
class _Typed:
    """A strict load's columns, one kind each, and its error cells by column."""

    first_col: int  # the spreadsheet column (A=0) of columns[0]
    columns: list[ArrowColumn]
    patches: _Patches


def _typed(loaded: fastexcel.ExcelSheet) -> _Typed:
    # selected_columns, not available_columns(): every column is selected, and
    # available_columns() re-infers them all (~0.3 s per million rows).
    selected = loaded.selected_columns
    first_col = selected[0].absolute_index if selected else 0
    batch, cell_errors = loaded.to_arrow_with_errors()
    patches = _error_patches(cell_errors, lossy=_LossyConversion)
    return _Typed(first_col, batch.columns, patches)


@dataclass(frozen=True)
class _PartLoad:
    typed: _Typed
    rows: int  # the sheet data rows the part stands for: up to the next part's first
    height: int  # fastexcel's total_height: the sheet's rows up to the part's last used one


_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def cores(cpu_max: Path = _CPU_MAX) -> int:
    """The whole cores this process may keep busy: its CPU affinity, capped by a quota.

    A container given 1.5 CPUs (cgroup v2 ``cpu.max`` "150000 100000", as Docker's
    ``--cpus`` and ECS set it) sees every core of its host in its affinity, but
    parts parsed on more threads than it has whole cores only add their own cost.
    """
    found = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max":
            return max(1, min(found or 1, int(quota) // int(period)))
    except (OSError, ValueError):
        pass  # no cgroup v2 CPU controller here, or not readable: no quota to honour
    return found or 1


def part_plan(size: int, shared: int, workers: int, split_bytes: int) -> PartPlan | None:
    """How to cut a sheet of ``size`` inflated bytes into parts for ``workers`` threads,
    each part's package holding ``shared`` bytes of shared strings and styles again;
    None when parts would cost more than they save.
    """
    if workers < 2:
        return None  # on one core the parts would only add their own cost
    if not PACKAGES_IN_MEMORY:
        return None  # no memory files for the parts' packages (not Linux)
    # At least two parts per core: a part is parsed only once it is inflated, and
    # with one per core the last core waits for the whole sheet's inflate (100,000
    # rows, 45 MB: 2 parts read no faster than the whole sheet, 4 parts 1.26x
    # faster; medians of 6, idle machine).
    largest = min(-(-size // (2 * workers)), split_bytes, _LARGEST_PART)
    reparsed = shared * _SHARED_SHARE if shared > _SHARED_FREE_BYTES else 0
    if reparsed > largest:
        # Every part parses the shared strings again: with 12 MB of them beside
        # 113 MB of sheet, 4 parts took 3.8 CPU s against 2.4 whole.
        return None
    return PartPlan(size, largest, max(largest // 16, reparsed, 1), workers)


def _in_parallel(
    parts: Iterator[RawPart], load: Callable[[RawPart], _PartLoad], workers: int
) -> list[_PartLoad]:
    """``load`` of every part on ``workers`` threads, in order.

    Parts are cut (in this thread, inflating as it goes) only while fewer than
    ``workers + 1`` are waiting or loading: the sheet's XML in memory at once
    stays a few parts, whatever its length.
    """
    slots = threading.Semaphore(workers + 1)
    futures: list[Future[_PartLoad]] = []
    with ThreadPoolExecutor(workers, thread_name_prefix=_PART_THREAD) as pool:
        try:
            while True:
                slots.acquire()
                if any(f.done() and f.exception() is not None for f in futures):
                    break  # the result below raises it
                part = next(parts, None)
                if part is None:
                    break
                future = pool.submit(load, part)
                del part
                future.add_done_callback(lambda _: slots.release())
                futures.append(future)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
        try:
            return [future.result() for future in futures]
        finally:
            for future in futures:
                future.cancel()


def _joined(loads: list[_PartLoad], header_index: int) -> _Typed | None:
    """The parts' columns end to end, as the whole sheet's strict load gives them.

    None when a column holds values of one type in one part and of another
    in another: the whole sheet's strict load would have refused it. A part
    whose column is all null takes the column's type from the others (an
    all-null column alone is read as text, as fastexcel does).
    """
    used = [load for load in loads if load.typed.columns]
    if not used:
        return _Typed(0, [], {})
    first_col = min(load.typed.first_col for load in used)
    width = max(load.typed.first_col + len(load.typed.columns) for load in used) - first_col
    kinds: list[pa.DataType | None] = [None] * width
    for load in used:
        for index, column in enumerate(load.typed.columns):
            slot = load.typed.first_col - first_col + index
            if column.null_count == len(column):
                continue
            if kinds[slot] is None:
                kinds[slot] = column.type
            elif kinds[slot] != column.type:
                return None
    # The whole sheet's load ends at its last used row, which the last used part holds.
    rows = max(load.height for load in loads) - (header_index + 1)
    columns: list[ArrowColumn] = []
    patches: _Patches = {}
    for slot, found in enumerate(kinds):
        kind = found or TEXT
        pieces: list[pa.Array] = []
        offset = 0
        for load in loads:
            index = slot - (load.typed.first_col - first_col)
            if 0 <= index < len(load.typed.columns):
                column = load.typed.columns[index]
                pieces.append(column if column.type == kind else pa.nulls(len(column), kind))
                if load.rows > len(column):
                    pieces.append(pa.nulls(load.rows - len(column), kind))
                if index in load.typed.patches:
                    at, texts = load.typed.patches[index]
                    into = patches.setdefault(slot, ([], []))
                    into[0].extend(offset + row for row in at)
                    into[1].extend(texts)
            else:
                pieces.append(pa.nulls(load.rows, kind))
            offset += load.rows
        # Chunked: the conversion (_converted) makes each column contiguous on its
        # threads. Concatenated here, after the last part, the copy was serial
        # (0.03-0.3 s at a million rows); left in the parts' 80 chunks, validation
        # took half as long again.
        columns.append(pa.chunked_array(pieces, kind).slice(0, rows))
    return _Typed(first_col, columns, patches)


@dataclass(frozen=True)
class _Cut:
    rows: int
    data: bytes
    reader: fastexcel.ExcelReader
    cells: _CellReader
    complete: frozenset[str]  # sheets the cut copy holds whole
    scanned: set[str] = field(default_factory=set)  # sheets whose cut is within the limits


@dataclass(frozen=True)
class _Exact:
    first_col: int  # the spreadsheet column (A=0) of columns[0]
    columns: list[pa.Array]
    height: int  # rows from row 1 to the last used row


class _LossyConversion(Exception):
    """A typed load nulled a cell that was not empty; the sheet is read cell by cell."""


class _CellReader:
    """Cells by position through python-calamine, which keeps each cell's own kind.

    fastexcel types a column as a whole; where a column mixes kinds its
    text rendering loses (floats cut to 9 decimals, booleans as 1/0,
    durations as date-times). python-calamine hands over each cell as a
    Python value: slower (~8 s per million 12-column rows, against ~5 s),
    so it reads only the sheets fastexcel cannot type, and previews.
    """

    def __init__(self, source: Path | bytes) -> None:
        self._workbook = (
            python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(source))
            if isinstance(source, bytes)
            else python_calamine.CalamineWorkbook.from_path(str(source))
        )

    def columns(
        self, sheet: str, *, first_row: int, rows: int, first_col: int, width: int
    ) -> list[list[object]]:
        """``width`` x ``rows`` cells from (first_row, first_col), 0-based; None where empty."""
        columns: list[list[object]] = [[None] * rows for _ in range(width)]
        if not rows or not width:
            return columns
        data = self._workbook.get_sheet_by_name(sheet)
        start = data.start
        if start is None:
            return columns
        # iter_rows (python-calamine 0.9) yields rows from the sheet's row 1,
        # cells from the used range's first column.
        left = start[1]
        for index, row in enumerate(data.iter_rows()):
            at = index - first_row
            if at < 0:
                continue
            if at >= rows:
                break
            for offset, value in enumerate(row):
                column = left + offset - first_col
                if 0 <= column < width and value != "":
                    columns[column][at] = value
        return columns


def _zip(source: Path | bytes) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source)


@contextmanager
def _translated(info: ObjectInfo, sheet: str | None) -> Iterator[None]:
    """fastexcel/calamine failures as UnreadableFileError naming the file and sheet."""
    try:
        yield
    except (
        fastexcel.FastExcelError,
        python_calamine.CalamineError,
        pa.ArrowException,
        OSError,
        ValueError,
        zipfile.BadZipFile,
        ElementTree.ParseError,
        zlib.error,
        EOFError,
    ) as exc:
        raise parser_refusal(info, sheet, exc) from exc
    except BaseException as exc:
        if not _is_rust_panic(exc):
            raise
        raise parser_refusal(info, sheet, exc) from exc


def _error_patches(
    cell_errors: fastexcel.CellErrors | None, *, lossy: type[Exception] | None = None
) -> _Patches:
    """Excel error texts by batch column: (rows, texts), rows ascending.

    ``lossy``, when given, is raised for a cell that the load nulled but
    that held something other than an error or blank text: a typed column
    that could not hold it. A text load reports other kinds (an .ods
    duration) too; the cell-by-cell read renders those.
    """
    patches: _Patches = {}
    for error in cell_errors.errors if cell_errors is not None else ():
        row, col = error.offset_position
        match = _CELL_ERROR.search(error.detail)
        kind = match.group("kind") if match else ""
        payload = match.group("payload") if match else ""
        if kind == "Error":
            rows, texts = patches.setdefault(col, ([], []))
            rows.append(row)
            texts.append(_ERROR_TEXT.get(payload, f"#{payload.upper()}"))
        elif kind == "String" and _BLANK_DEBUG_STRING.fullmatch(payload):
            continue  # an empty or whitespace cell in a typed column: null is right
        elif (
            lossy is None
            and kind == "DurationIso"
            and (span := iso_duration_text(payload.strip('"')))
        ):
            # An .ods time cell: python-calamine gives a time of day or the ISO text.
            rows, texts = patches.setdefault(col, ([], []))
            rows.append(row)
            texts.append(span)
        elif lossy is not None:
            raise lossy(error.detail)
    for rows, texts in patches.values():
        order = sorted(range(len(rows)), key=rows.__getitem__)
        rows[:] = [rows[i] for i in order]
        texts[:] = [texts[i] for i in order]
    return patches


def _is_rust_panic(exc: BaseException) -> bool:
    # pyo3 creates PanicException at run time (module "pyo3_runtime"), so it
    # cannot be imported to be caught by class.
    kind = type(exc)
    return kind.__name__ == "PanicException" and kind.__module__ == "pyo3_runtime"
