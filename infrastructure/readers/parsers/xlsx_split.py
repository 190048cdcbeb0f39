"""A large worksheet cut at row boundaries into small packages calamine can parse apart.

calamine parses a sheet on one core (~5 s per million Titanic rows here) and
fastexcel releases the GIL while it does: two threads parsing two halves of a
sheet take little more than half the time of one parse. This module makes
the halves. The sheet's XML is inflated as a stream (ISA-L, GIL released) and
cut before a ``<row`` start tag as a :class:`PartPlan` sizes them; each part becomes a
package of its own holding the original's workbook, relationships, styles and
shared strings, and a sheet made of the original's start (up to and including
``<sheetData>``, less ``<dimension>``, which would make calamine size its grid
for the whole sheet), the part's rows and the closing tags. The sheet is
stored, not deflated: calamine does not inflate it a second time.

Rows keep their ``r`` attributes, so a part's cells sit at their original
positions; the caller loads part k from its first row on (``skip_rows = first
row - 1``). That is exact only if every cell and row of part k lies in [its
first row, the next part's first row). :meth:`SheetSplitter.check` proves it
for each part with one RE2 pass (GIL released, linear time): no ``<!``
(comments, CDATA), no second ``sheetData``, every ``<row`` and ``<c`` tag
with ``r="..."`` as its first attribute, and no row number outside the part's
range, written as a regular expression on the digits. Anything else raises
:class:`Unsplittable`, and the caller parses the sheet whole, as before.

The same pass finds what the guards' extent scan (sheet_extent.py) looks for,
which the guards leave to it for a sheet parsed in parts: cell tags that are
far (beyond column Z or row 999,999) or odd. The far references of the parts
checked so far bound the sheet's extent, and a sheet over the cell budget
raises :class:`Oversized` before the part that shows it is parsed; an odd tag
is Unsplittable (the whole sheet's scan walks it). The parts then cost the
sheet's XML one inflate and one regular-expression pass, not two of each.
"""

from __future__ import annotations

import io
import itertools
import mmap
import os
import re
import struct
import threading
import zipfile
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from isal import isal_zlib

from infrastructure.readers.guards.inflate import member_chunks
from infrastructure.readers.guards.sheet_extent import (
    Extent,
    FarCells,
    first_oversized_sheet,
    odd_cells,
    unusual_cells,
)
from infrastructure.readers.parsers.xlsx_head import parsed_on_open

_CHUNK = 4 * 1024 * 1024
_IOV_MAX = 1024  # buffers per writev (Linux's UIO_MAXIOV)
# Parts need memory files (Linux): elsewhere every sheet is parsed whole.
PACKAGES_IN_MEMORY = hasattr(os, "memfd_create") and hasattr(mmap, "MAP_POPULATE")
_ZIP32_LIMIT = 0xFFFFFFFF
# Zip headers: local file, central directory entry, end of central directory.
_LOCAL = struct.Struct("<4s5H3L2H")
_CENTRAL = struct.Struct("<4s6H3L5H2L")
_END = struct.Struct("<4s4H2LH")
_DOS_DATE = (1 << 5) | 1
_OFFSETS = struct.Struct("<2q")  # 1980-01-01, the earliest a zip can say
# Where <sheetData> must have started: anything before it is column and view
# settings, kilobytes in every writer seen.
_MAX_PREFIX = 16 * 1024 * 1024
_SHEET_DATA = re.compile(rb"<(?P<p>[A-Za-z_][\w.\-]*:)?sheetData(?=[\s/>])[^>]*>")
_DIMENSION = rb"<%sdimension\b[^>]*/>"
_USUAL_ROW = re.compile(rb' r="([1-9][0-9]{0,9})"')


# A zip member: its name, and its bytes whole or in pieces.
_Entry = tuple[str, bytes | tuple[bytes | memoryview, ...]]


class Unsplittable(Exception):
    """The sheet is not of the shape the parts need; it is parsed whole."""


class Oversized(Exception):
    """The sheet's extent is over the cell budget: calamine must not parse it, whole or
    in parts."""

    def __init__(self, extent: Extent) -> None:
        super().__init__(f"{extent.member}: {extent.rows:,} rows x {extent.columns:,} columns")
        self.extent = extent


@dataclass(frozen=True)
class PartPlan:
    """How large each part of a sheet is cut: ``largest`` bytes, less at each end.

    Parts are parsed on ``workers`` threads in order, so the read ends when the
    last part does. Of equal parts, the one a thread takes last can start as the
    other thread's ends and finish a whole part later, that thread idle meanwhile
    (0.4 s of 4 at a million rows). So parts shrink toward the sheet's end, to a
    ``1 / (2 * workers)`` share of what is left, down to ``smallest``: whichever
    thread ends last, the others wait a small part at most. At the start the
    first parts grow to ``largest`` in ``workers + 1`` steps, so no thread waits
    long for the first part's inflate. Sizes only decide where cuts fall: a wrong
    ``total`` (the zip's word for the sheet's length) only makes parts uneven.
    """

    total: int  # the sheet's inflated bytes
    largest: int
    smallest: int
    workers: int

    def size(self, index: int, cut: int) -> int:
        """The length for part ``index`` (0-based), once ``cut`` bytes are in parts."""
        ramp = self.largest * (index + 1) // (self.workers + 1)
        tail = (self.total - cut) // (2 * self.workers)
        return max(self.smallest, min(self.largest, ramp, tail))


@dataclass(frozen=True)
class RawPart:
    """One part's rows, as they stand in the sheet's XML, in pieces (no copy is made)."""

    index: int
    first_row: int  # 1-based; 1 for the first part, which holds the sheet's start
    end_row: int | None  # the next part's first row; None for the last part
    pieces: tuple[bytes | memoryview, ...]

    @property
    def last(self) -> bool:
        return self.end_row is None

    @property
    def size(self) -> int:
        return sum(len(piece) for piece in self.pieces)


class SheetSplitter:
    """Cuts one worksheet member of a package into parts; see the module docstring."""

    def __init__(self, source: Path | bytes, member: str, max_cells: int) -> None:
        self._source = source
        self._max_cells = max_cells
        self._archive = zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source)
        self._member = self._archive.getinfo(member)
        self._others: list[_Entry] = []
        self._head = b""  # the sheet up to and including <sheetData>, less <dimension>
        self._prefix = b""  # the namespace prefix of sheetData, e.g. b"x:"
        self._tail = b""  # from </sheetData> to the end: the last part's end
        self._row_tag = re.compile(b"<row")  # a row start tag, set once the prefix is known
        # The far references of the parts checked so far, shared by their threads.
        self._far = FarCells()
        self._extent_lock = threading.Lock()
        # The whole sheet scanned and within the budget: no part needs deciding.
        self.proven = False
        self._files = MemoryFiles()

    @property
    def inflated_bytes(self) -> int:
        return int(self._member.file_size)

    @property
    def shared_bytes(self) -> int:
        """The inflated size of what every part's package repeats (shared strings, styles)."""
        return sum(info.file_size for info in self._shared())

    def close(self) -> None:
        self._archive.close()
        self._files.close()

    def _shared(self) -> list[zipfile.ZipInfo]:
        """The members every part's package holds besides its sheet: those parsed on open."""
        return [
            info
            for info in self._archive.infolist()
            if parsed_on_open(info.filename) and info.filename != self._member.filename
        ]

    def parts(self, plan: PartPlan) -> Iterator[RawPart]:
        """The sheet's rows in parts of about the sizes ``plan`` gives, streamed.

        Raises Unsplittable as soon as the sheet's layout is not the usual one.
        """
        # Every part parsed on open besides the sheet, read once for all the packages.
        self._others = [(info.filename, self._archive.read(info)) for info in self._shared()]
        chunks = member_chunks(self._archive, self._member, _CHUNK)
        rows, floor = self._start(chunks)
        row_tag = self._row_tag
        pending: list[bytes | memoryview] = []
        size = cut = 0  # the bytes pending; those of the parts yielded so far
        index, first_row = 0, 1
        part_bytes = plan.size(index, cut)
        # Where in the newest piece a cut may fall: past the first part's first row
        # tag, past the tag a part starts with, anywhere in a fresh chunk.
        for chunk in itertools.chain([rows], chunks):
            if pending:
                floor = 0
            pending.append(chunk)
            size += len(chunk)
            while size > part_bytes:
                # The cut: the first whole row tag of the newest piece past the
                # part's length. A tag cut by the piece's edge is just passed.
                last = pending[-1]
                tag = row_tag.search(last, max(part_bytes - (size - len(last)), floor))
                if tag is None:
                    break
                found = _USUAL_ROW.match(tag.group(0), len(self._prefix) + 4)
                if found is None:
                    raise Unsplittable("a row tag without a usual r attribute")
                end_row = int(found.group(1))
                if end_row <= first_row:
                    raise Unsplittable("rows out of order")
                view = memoryview(last)
                pending[-1] = view[: tag.start()]
                part = RawPart(index, first_row, end_row, tuple(pending))
                cut += part.size
                yield part
                del part
                pending = [view[tag.start() :]]
                size, floor = len(pending[0]), 1
                index, first_row = index + 1, end_row
                part_bytes = plan.size(index, cut)
        rest = b"".join(pending)
        close = rest.rfind(b"</" + self._prefix + b"sheetData>")
        if close < 0:
            raise Unsplittable("no </sheetData>")
        self._tail = rest[close:]
        yield RawPart(index, first_row, None, (memoryview(rest)[:close],))

    def _start(self, chunks: Iterator[bytes]) -> tuple[bytes, int]:
        """The sheet read up to its first row: the bytes after <sheetData> and where
        the first row tag ends in them; the sheet's start is kept for the packages."""
        start_of = bytearray()
        for chunk in chunks:
            start_of += chunk
            if (start := _SHEET_DATA.search(start_of)) is not None:
                break
            if len(start_of) > _MAX_PREFIX:
                raise Unsplittable("no <sheetData> near the sheet's start")
        else:
            raise Unsplittable("no <sheetData>")
        if start.group(0).endswith(b"/>"):
            raise Unsplittable("no rows")
        self._prefix = start.group("p") or b""
        head = bytes(start_of[: start.end()])
        self._head = re.sub(_DIMENSION % re.escape(self._prefix), b"", head)
        self._row_tag = re.compile(b"<" + re.escape(self._prefix) + rb"row(?=[\s/>])[^>]*>")
        first = self._row_tag.search(start_of, start.end())
        if first is None:
            raise Unsplittable("no row near the sheet's start")
        return bytes(start_of[start.end() :]), first.end() - start.end()

    def check(self, part: RawPart, package: Package) -> None:
        """Raise Unsplittable unless every row and cell of ``part`` lies at or below its
        first row; raise Oversized when the sheet's extent, as far as the parts checked
        so far show it, is over the cell budget.

        Cells past the part's end need no look here: the part's parse then
        reaches into the next part's rows, which the caller refuses. The
        extent is the guards' (sheet_extent.py), found in the same pass: cell
        tags that are far are read again for their references; odd ones
        (an implicit position, a second ``r``) send the sheet back whole, where
        the whole sheet's scan walks them. Called from the parts' threads.

        ``package`` is the part's (:meth:`package`): its rows lie there in one
        piece, so each pattern is compiled once per part, not once per chunk (the
        merged pattern's DFA, rebuilt every 4 MB, cost a third more).
        """
        p = re.escape(self._prefix.decode())
        number = "(?:" + "|".join(["0[0-9]*", *_below(part.first_row)]) + ')"'
        # One alternation behind "<", which RE2 skips to with memchr; the same
        # checks as separate alternatives cost six times as much.
        foreign = r"(?:c|row)[\s/>]" if p else r"/?[^\s<>/:!?]{1,64}:(?:c|row)[\s/>]"
        refused = [
            "!",  # a comment or CDATA
            f"/?{p}sheetData",  # a second sheetData, or its end in a middle part
            f'{p}(?:c r="[A-Za-z]*|row r="){number}',  # above the part's first row
            f'{p}(?:row|c)(?:[\t\n\r\f/>]| [^r]| r[^=]| r=[^"])',  # no r first
            # Not a reference at all: calamine's reading of it is its own.
            f'{p}c r="[A-Za-z]*(?:[^A-Za-z0-9"]|[0-9]+[^0-9"]|")',
            f'{p}row r="(?:[^0-9]|[0-9]*[^0-9"])',
            foreign,  # a row or cell tag of another namespace prefix
        ]
        prefix = self._prefix.decode()
        anything = "<(?:" + "|".join([*refused, unusual_cells(prefix)]) + ")"
        # The sheet's entry is the package's last: its rows end before the part's
        # closing tags, the central directory and its end record.
        data = package.data
        (listing,) = _END.unpack_from(data, len(data) - _END.size)[5:6]
        stop = len(data) - _END.size - listing - len(self._end(part))
        with memoryview(data)[stop - part.size : stop] as rows:
            if _count(rows, anything):  # else the usual case: one pass
                if _count(rows, "<(?:" + "|".join(refused) + ")"):
                    raise Unsplittable(
                        f"part {part.index} holds a row it cannot be parsed apart with"
                    )
                if _count(rows, "<" + odd_cells(prefix)):
                    raise Unsplittable(f"part {part.index} holds an odd cell tag")
                with self._extent_lock:
                    self._far.add(rows)
        with self._extent_lock:
            self._check_extent()

    def _check_extent(self) -> None:
        """Raise Oversized when the far references seen so far put the sheet over budget.

        When they cannot decide it alone (columns wide enough for a row below
        1,000,000 to matter), the whole sheet is scanned as the guards would,
        once: then it is decided for every part.
        """
        if self.proven:
            return
        name = self._member.filename
        extent = self._far.bound(name, self._max_cells)
        if extent is None:
            source = io.BytesIO(self._source) if isinstance(self._source, bytes) else self._source
            with zipfile.ZipFile(source) as archive:
                extent = first_oversized_sheet(archive, [name], self._max_cells)
            self.proven = extent is None
        if extent is not None and extent.over(self._max_cells):
            raise Oversized(extent)

    def package(self, part: RawPart) -> Package:
        """A package calamine opens like the original, holding only ``part``'s rows."""
        sheet: _Entry = (self._member.filename, (self._head, *part.pieces, self._end(part)))
        return Package(_stored_zip([*self._others, sheet]), self._files)

    def _end(self, part: RawPart) -> bytes:
        """What closes ``part``'s sheet: the original's end for the last part."""
        if part.last:
            return self._tail
        p = self._prefix
        return b"</" + p + b"sheetData></" + p + b"worksheet>"


def _stored_zip(entries: list[_Entry]) -> list[bytes | memoryview]:
    """A zip of ``entries`` (name, data or data in pieces), every member stored, in pieces."""
    out: list[bytes | memoryview] = []
    directory: list[bytes] = []
    offset = 0
    for name, data in entries:
        pieces = (data,) if isinstance(data, bytes) else data
        crc, size = 0, 0
        for piece in pieces:
            crc = isal_zlib.crc32(piece, crc)
            size += len(piece)
        if size >= _ZIP32_LIMIT or offset >= _ZIP32_LIMIT:
            raise Unsplittable("a part too large for a plain zip")
        encoded = name.encode()
        fields = (0, 0, 0, _DOS_DATE, crc, size, size, len(encoded))
        out += [_LOCAL.pack(b"PK\x03\x04", 20, *fields, 0), encoded, *pieces]
        directory += [
            _CENTRAL.pack(b"PK\x01\x02", 20, 20, *fields, 0, 0, 0, 0, 0, offset),
            encoded,
        ]
        offset += _LOCAL.size + len(encoded) + size
    listing = b"".join(directory)
    count = len(entries)
    out += [listing, _END.pack(b"PK\x05\x06", 0, 0, count, count, len(listing), offset, 0)]
    return out


class MemoryFiles:
    """The memfds of a sheet's parts, each used again by a later part's package.

    A fresh memfd's pages are allocated and zeroed as the package is written: 17.6
    ms of CPU per 16 MiB part here, against 7.6 ms written over the pages of a memfd
    an earlier part left (0.4 CPU s of the million-row sheet's 39 parts). At most
    as many are kept as packages were open at once; :meth:`close` closes them, and a
    memfd given back after it is closed at once.
    """

    def __init__(self) -> None:
        self._free: list[int] = []
        self._lock = threading.Lock()
        self._closed = False

    def take(self) -> int:
        with self._lock:
            if self._free:
                return self._free.pop()
        return os.memfd_create("datalakep-part", os.MFD_CLOEXEC)

    def give(self, fd: int) -> None:
        with self._lock:
            if not self._closed:
                self._free.append(fd)
                return
        os.close(fd)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            free, self._free = self._free, []
        for fd in free:
            os.close(fd)


class Package:
    """One part's package in an anonymous memory file: calamine opens it by its path,
    the check reads it mapped.

    Handed to fastexcel as bytes, a package was copied twice more: joined here, then
    copied by fastexcel into calamine's buffer. A part's 33 MB took 24,000 fresh
    pages that way, and the million-row sheet 0.8 CPU s of joins, copies and page
    faults; written into a memfd it costs one copy into the page cache (0.3 s). A
    memfd is not on ``/dev/shm`` (Docker's is 64 MB), so the parts' size does not
    depend on it. Close it once calamine has loaded the part: its memfd then goes
    back to ``files`` for the next part (calamine has read the part whole by then,
    and the reader that opened it is never asked again).
    """

    def __init__(self, pieces: list[bytes | memoryview], files: MemoryFiles) -> None:
        self._files = files
        self._fd = files.take()
        try:
            os.lseek(self._fd, 0, os.SEEK_SET)
            size = _write_all(self._fd, pieces)
            os.ftruncate(self._fd, size)  # a memfd used before may have been longer
            self.data = mmap.mmap(
                self._fd, size, mmap.MAP_SHARED | mmap.MAP_POPULATE, mmap.PROT_READ
            )
        except BaseException:
            self._release()
            raise

    @property
    def path(self) -> str:
        """A path that opens the package while this object is open."""
        return f"/proc/self/fd/{self._fd}"

    def close(self) -> None:
        if self._fd < 0:
            return
        with suppress(BufferError):  # a view still held: the mapping goes with it
            self.data.close()
        self._release()

    def _release(self) -> None:
        fd, self._fd = self._fd, -1
        self._files.give(fd)

    def __enter__(self) -> Package:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _write_all(fd: int, pieces: list[bytes | memoryview]) -> int:
    """Write ``pieces`` to ``fd`` one after another; the bytes written."""
    written = 0
    views = [memoryview(piece).cast("B") for piece in pieces]
    while views:
        done = os.writev(fd, views[:_IOV_MAX])
        written += done
        while views and done >= len(views[0]):
            done -= len(views[0])
            views.pop(0)
        if done:
            views[0] = views[0][done:]
    return written


def _count(data: bytes | memoryview, pattern: str) -> int:
    # A one-element binary array over the part's own memory: no copy. (Its offsets
    # packed here: pyarrow's first array from Python objects probes for pandas.)
    offsets = pa.py_buffer(_OFFSETS.pack(0, len(data)))
    array = pa.Array.from_buffers(pa.large_binary(), 1, [None, offsets, pa.py_buffer(data)])
    count: int = pc.count_substring_regex(array, pattern=pattern)[0].as_py()
    return count


def _below(n: int) -> list[str]:
    """RE2 alternatives matching the decimal numbers 1 .. n-1 (no leading zeros)."""
    digits = str(n)
    width = len(digits)
    found = [f"[1-9][0-9]{{0,{width - 2}}}"] if width >= 2 else []
    for i, d in enumerate(digits):
        low = 1 if i == 0 else 0
        if int(d) > low:
            found.append(f"{digits[:i]}[{low}-{int(d) - 1}][0-9]{{{width - i - 1}}}")
    return found
