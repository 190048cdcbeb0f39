"""How many cells calamine would allocate for each sheet, found before it does.

calamine stores a sheet densely: (last row - first row + 1) x (last column -
first column + 1) cells of ~32 bytes, whatever lies between. A 2 KB .xlsx
with cells A1 and XFD1048576 makes it request 550 GB and the process aborts
(a Rust allocation failure, not an exception). The zip guards cannot see
this: the file is tiny and barely compressed.

calamine takes a cell's position from its ``r`` attribute, any row number
that fits in 32 bits (A50000000 costs 1.6 GB, A500000000 aborts), the last
``r`` if a tag has two; a cell without ``r`` goes after the previous cell of
its row, and a row without ``r`` after the previous row. So the worksheet
XML is streamed through zlib and:

- one RE2 pass (pyarrow's ``count_substring_regex``: linear time, GIL
  released) counts, per 4 MB piece, the cell tags that are not of the one
  shape every writer seen produces: ``<c r="A123" s=".." t="..">``, a
  single-letter column and a row below 1,000,000. A normal sheet has none.
  ~0.6 s per 464 MB of XML (a million rows), where Python's re took ~0.4 s
  to look at the column letters alone;
- the pieces with such tags are read again with Python's re to collect
  the column letters and row numbers of references beyond Z or 999,999;
- a sheet with any other odd tag (no ``r`` first, so an implicit position;
  a second ``r``; whitespace, quotes or attributes no writer produces) is
  walked tag by tag the way calamine does: exact, and slow (~3 s per
  100,000 rows), for files no writer seen produces.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from xml.etree import ElementTree

import pyarrow as pa
import pyarrow.compute as pc

from infrastructure.readers.guards.inflate import member_chunks

EXCEL_MAX_ROWS = 1_048_576
EXCEL_MAX_COLUMNS = 16_384  # XFD
_CHUNK = 4 * 1024 * 1024
# Every pattern below matches at most ~200 bytes; overlapping chunks by more
# than that keeps every match whole in at least one piece.
_OVERLAP = 256
# A normal reference: one column letter, at most six digits (row 999,999).
_SHORT_COLUMNS = 26
_SHORT_ROWS = 999_999
# Numbers past these are absurd for calamine too (it wraps them at 32 bits):
# capped so that Python never builds a huge integer out of a hostile string.
_MAX_LETTERS = 8
_MAX_DIGITS = 12

# RE2 syntax (no lookarounds; ``\s`` is XML whitespace plus form feed).
#
# A cell tag is usual when it reads <c r="REF"> with REF one letter and at
# most six digits, followed only by the other attributes a cell may have
# (s, t, cm, vm, ph; short values, one space apart), then ">" or "/>". Every
# way of leaving that shape is spelt out below, so one pattern finds each
# cell tag that is not usual: far (beyond column Z or row 999,999), or odd
# (no r first: its position may be implicit; a second r: calamine keeps the
# last one; whitespace, quotes or attributes no writer produces). All its
# alternatives start with "<c", so RE2 skips to them with memchr.
_VALUE = r'"[^"<>]{0,16}"'
_USUAL_ATTRIBUTES = r"(?: (?:s|t|cm|vm|ph)=" + _VALUE + ")*"
_LEAVES_USUAL_ATTRIBUTES = (
    r"(?:[^ />]| [^stcvp]| [st][^=]| c[^m]| cm[^=]| v[^m]| vm[^=]| p[^h]| ph[^=]"
    r'| (?:s|t|cm|vm|ph)=[^"]| (?:s|t|cm|vm|ph)="[^"<>]{0,16}[<>]'
    r'| (?:s|t|cm|vm|ph)="[^"<>]{17}|/[^>])'
)


def _unusual_cells(ref: str, not_ref: str, prefix: str) -> str:
    """Cell tags whose first attribute is not r="REF", or whose other attributes are odd.

    Without the leading "<", so that a caller can put it in an alternation
    behind one "<" of its own.
    """
    return (
        re.escape(prefix)
        + r'c(?:[\t\n\r\f/>]| [^r]| r[^=]| r=[^"]| r="'
        + not_ref
        + r'| r="'
        + ref
        + '"'
        + _USUAL_ATTRIBUTES
        + _LEAVES_USUAL_ATTRIBUTES
        + ")"
    )


def unusual_cells(prefix: str = "") -> str:
    """RE2, after a "<": a cell tag of namespace ``prefix`` (``x:``) that is far or odd."""
    return _unusual_cells(
        r"[A-Za-z][0-9]{1,6}",
        r'(?:[^A-Za-z]|[A-Za-z](?:[^0-9]|[0-9]{7}|[0-9]{1,6}[^0-9"]))',
        prefix,
    )


def odd_cells(prefix: str = "") -> str:
    """RE2, after a "<": a cell tag of namespace ``prefix`` that is odd, whatever its reference.

    Up to four letters and twelve digits, as far as calamine's 32-bit
    numbers make sense.
    """
    return _unusual_cells(
        r"[A-Za-z]{1,4}[0-9]{1,12}",
        r'(?:[^A-Za-z]|[A-Za-z]{5}|[A-Za-z]{1,4}(?:[^A-Za-z0-9]|[0-9]{13}|[0-9]{1,12}[^0-9"]))',
        prefix,
    )


# Not usual: far or odd. Run on every piece.
_UNUSUAL = "<" + unusual_cells()
# Odd. Run where _UNUSUAL matched.
_ODD = "<" + odd_cells()
# Cell tags with a namespace prefix (<x:c>): rare, so looked for cheaply and,
# where there are some, all treated as odd.
_PREFIXED_CELL = r""":c[\s/>]"""
_PREFIXED_CELL_TAG = r"""<[^\s/>:<]{1,64}:c[\s/>]|<[^\s/>:<]{65}"""
# Python's re, on the few pieces RE2 flagged.
_WIDE_COLUMN = re.compile(rb"""r=["']([A-Za-z]{2,})[0-9]""")
_FAR_ROW = re.compile(rb"""r=["'][A-Za-z]+([0-9]{7,})""")


@dataclass(frozen=True)
class Extent:
    member: str  # the worksheet's zip member (.xlsx) or table name (.ods)
    rows: int  # upper bound on the last row
    columns: int  # upper bound on the last column

    @property
    def cells(self) -> int:
        return self.rows * self.columns

    def over(self, max_cells: int) -> bool:
        """Over the cell budget, or past Excel's last column whatever the cell count:
        no spreadsheet program writes one, and every column costs the reader time."""
        return self.cells > max_cells or self.columns > EXCEL_MAX_COLUMNS


class FarCells:
    """The widest column and farthest row referenced by a sheet's unusual pieces.

    Only pieces whose unusual cell tags are all far, none odd, are added: an odd
    tag's position is calamine's to decide (the walk).
    """

    def __init__(self) -> None:
        self.columns = _SHORT_COLUMNS  # the widest column seen, at least Z
        self.rows = 0  # the farthest row past 999,999 seen, 0 if none

    def add(self, piece: bytes | memoryview) -> None:
        """Take in the references of a piece whose unusual tags are all far, none odd."""
        self.columns = max([self.columns, *map(_column_number, set(_WIDE_COLUMN.findall(piece)))])
        self.rows = max([self.rows, *map(_row_number, set(_FAR_ROW.findall(piece)))])

    def bound(self, member: str, max_cells: int) -> Extent | None:
        """The sheet's extent as far as these references decide it, else None.

        None when it takes the sheet's row numbers too: its columns reach far
        enough for a row below 1,000,000 to break the budget.
        """
        rows = max(self.rows, EXCEL_MAX_ROWS)
        if self.columns * rows <= max_cells:
            return Extent(member, rows, self.columns)
        if _row_digits(self.columns, max_cells) > 6:
            # Rows below 1,000,000 cannot break the budget; the pass has seen every
            # row number that long.
            return Extent(member, max(self.rows, _SHORT_ROWS), self.columns)
        return None


def first_oversized_sheet(
    archive: zipfile.ZipFile, members: Iterable[str], max_cells: int
) -> Extent | None:
    """The first of ``members`` whose extent is over ``max_cells`` (:meth:`Extent.over`)."""
    present = {m.filename: m for m in archive.infolist()}
    for name in members:
        member = present.get(name)
        if member is None:
            continue  # a dangling relationship; calamine reports it if it matters
        extent = _extent(archive, member, max_cells)
        if extent.over(max_cells):
            return extent
    return None


def _extent(archive: zipfile.ZipFile, member: zipfile.ZipInfo, max_cells: int) -> Extent:
    far, implicit = FarCells(), False
    for piece in _pieces(archive, member):
        odd = _count(piece, _PREFIXED_CELL) and _count(piece, _PREFIXED_CELL_TAG)
        if not odd and not _count(piece, _UNUSUAL):
            continue  # the usual case: nothing in this piece can make the sheet big
        if odd or _count(piece, _ODD):
            implicit = True
            break
        far.add(piece)
    columns, far_rows = far.columns, far.rows
    if implicit:
        walked = _walk(archive, member)
        # The walk is exact for well-formed XML; the references found before it
        # still bound what a lenient parser could make of the rest.
        return Extent(member.filename, max(walked.rows, far_rows), max(walked.columns, columns))
    bound = far.bound(member.filename, max_cells)
    if bound is not None:
        return bound
    # Rows below 10**(digits-1) cannot break the budget: only longer row numbers count.
    digits = _row_digits(columns, max_cells)
    longer = rf"""r=["'][A-Za-z]+[0-9]{{{digits}}}"""
    long_row = re.compile(rf"""r=["'][A-Za-z]+([0-9]{{{digits},}})""".encode())
    rows = 10 ** (digits - 1) - 1
    for piece in _pieces(archive, member):
        if _count(piece, longer):
            rows = max([rows, *map(_row_number, set(long_row.findall(piece)))])
    return Extent(member.filename, rows, columns)


def _row_digits(columns: int, max_cells: int) -> int:
    """The fewest digits of a row number that can break the budget at ``columns``."""
    return len(str(max(max_cells // columns, 1)))


def _pieces(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> Iterator[bytes]:
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


def _count(piece: bytes, pattern: str) -> int:
    # A one-element binary array over the piece's own memory: no copy.
    offsets = pa.array([0, len(piece)], pa.int32()).buffers()[1]
    array = pa.Array.from_buffers(pa.binary(), 1, [None, offsets, pa.py_buffer(piece)])
    count: int = pc.count_substring_regex(array, pattern=pattern)[0].as_py()
    return count


def _column_number(letters: bytes) -> int:
    if len(letters) > _MAX_LETTERS:
        return int(26**_MAX_LETTERS)
    number = 0
    for ch in letters.upper():
        number = number * 26 + (ch - ord("A") + 1)
    return number


def _row_number(digits: bytes) -> int:
    digits = digits.lstrip(b"0") or b"0"
    return 10**_MAX_DIGITS if len(digits) > _MAX_DIGITS else int(digits)


# ----------------------------------------------------- the exact, slow walk

# Comments and CDATA are matched only to be skipped; c and row tags with
# their attributes, quotes respected (a quoted ">" does not end a tag).
_TAG = re.compile(
    rb"""<!--.*?-->|<!\[CDATA\[.*?\]\]>"""
    rb"""|<(/?)(?:[^\s/>:]*:)?(row|c)(?=[\s/>])((?:[^>"']|"[^"]*"|'[^']*')*)>""",
    re.DOTALL,
)
_R_ATTR = re.compile(rb"""(?:^|\s)r\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_REFERENCE = re.compile(rb"([A-Za-z]*)([0-9]+)")
# calamine reads a tag whole; one longer than this is no spreadsheet's.
_MAX_TAG = 1024 * 1024


# One state machine over the sheet's tags (row, column, extent): split, that
# state would be handed between the halves on every tag of a million-row sheet.
def _walk(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> Extent:  # noqa: C901
    """The sheet's extent as calamine computes it, tag by tag.

    A ``<row r>`` sets the row; ``</row>`` moves to the next one and back to
    column A; a ``<c r>`` sits where ``r`` says, a ``<c>`` without it just
    after the previous cell of the row; a self-closing ``<c/>`` holds
    nothing and is skipped, as calamine does.
    """
    row, column = 0, 0  # 0-based, where an implicit cell would go
    last_row, last_column = 0, 0  # 1-based, the largest seen
    carry = b""
    for chunk in member_chunks(archive, member, _CHUNK):
        data = carry + chunk
        # Keep a tag cut by the chunk's end for the next round.
        cut = data.rfind(b"<")
        if cut < 0 or len(data) - cut > _MAX_TAG:
            if cut >= 0 and data.find(b">", cut) < 0:
                raise ValueError(f"{member.filename}: an XML tag longer than {_MAX_TAG:,} bytes")
            cut = len(data)
        carry = data[cut:]
        for match in _TAG.finditer(data, 0, cut):
            name = match.group(2)
            if name is None:
                continue  # a comment or CDATA
            closing, attrs = match.group(1), match.group(3)
            if name == b"row":
                if closing:
                    row, column = row + 1, 0
                    continue
                number = _reference(attrs, row=True)
                if number is not None:
                    row = number[0]
                if attrs.endswith(b"/"):
                    row, column = row + 1, 0  # as if it were closed
                continue
            if closing or attrs.endswith(b"/"):
                continue
            at = _reference(attrs, row=False) or (row, column)
            last_row, last_column = max(last_row, at[0] + 1), max(last_column, at[1] + 1)
            column = at[1] + 1
    for match in _TAG.finditer(carry):
        if match.group(2) == b"c" and not match.group(1) and not match.group(3).endswith(b"/"):
            at = _reference(match.group(3), row=False) or (row, column)
            last_row, last_column = max(last_row, at[0] + 1), max(last_column, at[1] + 1)
    return Extent(member.filename, last_row, last_column)


def _reference(attrs: bytes, *, row: bool) -> tuple[int, int] | None:
    """(row, column), 0-based, from an ``r`` attribute; None when absent or unusable."""
    found = list(_R_ATTR.finditer(attrs))
    if not found:
        return None
    last = found[-1]  # calamine keeps the last r attribute of a tag
    value = last.group(1) if last.group(1) is not None else last.group(2)
    parts = _REFERENCE.fullmatch(value)
    if parts is None or (not row and not parts.group(1)):
        return None  # calamine refuses the sheet: nothing gets allocated
    letters, digits = parts.groups()
    number = _row_number(digits)
    if number == 0:
        return None
    return number - 1, (_column_number(letters) - 1 if letters else 0)


_TABLE = "{urn:oasis:names:tc:opendocument:xmlns:table:1.0}"
_OFFICE = "{urn:oasis:names:tc:opendocument:xmlns:office:1.0}"
_ODS_CELLS = (f"{_TABLE}table-cell", f"{_TABLE}covered-table-cell")


# The same kind of state machine, over ODS tables, rows and repeats.
def first_oversized_ods_table(  # noqa: C901
    archive: zipfile.ZipFile, max_cells: int
) -> Extent | None:
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
