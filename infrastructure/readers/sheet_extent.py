"""How many cells calamine would allocate for each sheet, found before it does.

calamine stores a sheet densely: (last row - first row + 1) x (last column -
first column + 1) cells of ~32 bytes, whatever lies between. A 2 KB .xlsx
with cells A1 and XFD1048576 makes it request 550 GB and the process aborts
(a Rust allocation failure, not an exception). The zip guards cannot see
this: the file is tiny and barely compressed.

So the worksheet XML is streamed through zlib and only the cell references
that can make a sheet big are matched: columns of two or more letters, then,
if those columns make it necessary, large row numbers. A sheet of at most 26
columns needs one regex pass with almost no matches (~0.2 s per 100 MB of
XML, a third of calamine's own parse).
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from xml.etree import ElementTree

from infrastructure.readers.inflate import member_chunks

EXCEL_MAX_ROWS = 1_048_576
_CHUNK = 4 * 1024 * 1024
# A reference attribute is under 30 bytes; overlapping chunks by more than
# that keeps every match whole in at least one chunk.
_OVERLAP = 64
# Any attribute ending in "r" with a cell-reference value, whatever the
# whitespace or quotes before it: a literal start keeps Python's re fast
# (~0.06 s per 100 MB), and a stray match only overestimates, which is safe.
_WIDE_COLUMN = re.compile(rb"""r=["']([A-Za-z]{2,})[0-9]""")


@dataclass(frozen=True)
class Extent:
    member: str  # the worksheet's zip member (.xlsx) or table name (.ods)
    rows: int  # upper bound on the last row
    columns: int  # upper bound on the last column

    @property
    def cells(self) -> int:
        return self.rows * self.columns


def first_oversized_sheet(
    archive: zipfile.ZipFile, members: Iterable[str], max_cells: int
) -> Extent | None:
    """The first of ``members`` whose cell bound exceeds ``max_cells``, or None."""
    present = {m.filename: m for m in archive.infolist()}
    for name in members:
        member = present.get(name)
        if member is None:
            continue  # a dangling relationship; calamine reports it if it matters
        extent = _extent(archive, member, max_cells)
        if extent.cells > max_cells:
            return extent
    return None


def _extent(archive: zipfile.ZipFile, member: zipfile.ZipInfo, max_cells: int) -> Extent:
    wide = _distinct(archive, member, _WIDE_COLUMN)
    # Without a reference beyond column Z, 26 bounds the width.
    columns = max([26, *(_column_number(letters) for letters in wide)])
    if columns * EXCEL_MAX_ROWS <= max_cells:
        return Extent(member.filename, EXCEL_MAX_ROWS, columns)
    # Rows below 10**(digits-1) cannot break the budget; match only longer numbers.
    digits = len(str(max(max_cells // columns, 1)))
    big_row = re.compile(rb"""r=["'][A-Za-z]+([0-9]{%d,})""" % digits)
    rows = max(_largest_number(archive, member, big_row), 10 ** (digits - 1) - 1)
    return Extent(member.filename, rows, columns)


def _chunks(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> Iterator[bytes]:
    """The member's bytes in pieces such that every short match lies whole in one.

    Each chunk, preceded by the seam it makes with the one before (the last
    bytes of that one plus the first of this one), rather than a copy of the
    chunk with the tail glued on: half a GB of XML need not be copied again.
    """
    tail = b""
    for chunk in member_chunks(archive, member, _CHUNK):
        if tail:
            yield tail + chunk[:_OVERLAP]
        yield chunk
        tail = chunk[-_OVERLAP:]


def _distinct(
    archive: zipfile.ZipFile, member: zipfile.ZipInfo, pattern: re.Pattern[bytes]
) -> set[bytes]:
    # Reduced per chunk: a wide sheet has millions of matches but few distinct ones.
    seen: set[bytes] = set()
    for chunk in _chunks(archive, member):
        seen.update(pattern.findall(chunk))
    return seen


def _largest_number(
    archive: zipfile.ZipFile, member: zipfile.ZipInfo, pattern: re.Pattern[bytes]
) -> int:
    largest = 0
    for chunk in _chunks(archive, member):
        largest = max(largest, *(int(n) for n in set(pattern.findall(chunk))), 0)
    return largest


def _column_number(letters: bytes) -> int:
    number = 0
    for ch in letters.upper():
        number = number * 26 + (ch - ord("A") + 1)
    return number


_TABLE = "{urn:oasis:names:tc:opendocument:xmlns:table:1.0}"
_OFFICE = "{urn:oasis:names:tc:opendocument:xmlns:office:1.0}"
_ODS_CELLS = (f"{_TABLE}table-cell", f"{_TABLE}covered-table-cell")


def first_oversized_ods_table(archive: zipfile.ZipFile, max_cells: int) -> Extent | None:
    """The first table of an .ods content.xml whose cell bound exceeds ``max_cells``.

    ODS compresses runs with ``number-rows-repeated`` / ``number-columns-repeated``
    and calamine expands them: a 1 KB file with one value repeated over a
    million rows took 1.8 GB. Trailing repeats without a value (LibreOffice
    writes one to pad every sheet to its full size) cost nothing and are
    not counted. Parsed with a streaming XML parser, row elements dropped as
    soon as they are measured.
    """
    parser: ElementTree.XMLPullParser[ElementTree.Element] = ElementTree.XMLPullParser(
        events=("start", "end")
    )
    stack: list[ElementTree.Element] = []
    table, next_row, last_row, width = "", 0, 0, 0
    first = True
    with archive.open("content.xml") as stream:
        while chunk := stream.read(_CHUNK):
            if first and (b"<!DOCTYPE" in chunk or b"<!ENTITY" in chunk):
                raise ValueError("content.xml declares a DTD")
            first = False
            parser.feed(chunk)
            for item in parser.read_events():
                # Only start/end events were requested; typeshed allows others.
                if len(item) != 2 or not isinstance(item[1], ElementTree.Element):
                    continue
                event, element = item[0], item[1]
                if event == "start":
                    stack.append(element)
                    if element.tag == f"{_TABLE}table":
                        table = element.get(f"{_TABLE}name", "")
                        next_row, last_row, width = 0, 0, 0
                    continue
                stack.pop()
                if element.tag == f"{_TABLE}table-row":
                    repeat = int(element.get(f"{_TABLE}number-rows-repeated", "1"))
                    row_width = _ods_row_width(element)
                    if row_width:
                        last_row = next_row + repeat
                        width = max(width, row_width)
                    next_row += repeat
                    if stack:
                        stack[-1].remove(element)  # keep memory flat on long sheets
                elif element.tag == f"{_TABLE}table":
                    if last_row * width > max_cells:
                        return Extent(table, last_row, width)
                    if stack:
                        stack[-1].remove(element)
    return None


def _ods_row_width(row: ElementTree.Element) -> int:
    """Columns up to the row's last cell that holds something."""
    position, width = 0, 0
    for cell in row:
        if cell.tag not in _ODS_CELLS:
            continue
        position += int(cell.get(f"{_TABLE}number-columns-repeated", "1"))
        if cell.get(f"{_OFFICE}value-type") is not None or len(cell):
            width = position
    return width
