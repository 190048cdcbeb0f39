"""A copy of an .xlsx/.xlsm cut to the first rows of each worksheet, for cheap previews.

calamine parses a whole sheet whatever is asked of it: previewing 20 rows
of a 1M-row sheet took 5.5 s, as long as reading it. Cutting each worksheet's
XML after its first rows and handing the small package to the same parser
makes a preview cost milliseconds while rendering cells exactly as the full
read does. Only the parts calamine parses are copied (no images, no VBA, no
other XML); the copy lives in memory.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from infrastructure.readers.guards.xlsx_parts import xlsx_parts_of

_CHUNK = 64 * 1024
_BACKUP = 4096  # longer than any row start tag
_PARSED_PARTS = frozenset(
    {"[Content_Types].xml", "xl/workbook.xml", "xl/styles.xml", "xl/sharedStrings.xml"}
)
# A row element ends with </row> or is self-closing; writers such as the
# OpenXML SDK prefix elements ("x:row").
_ROW_END = re.compile(rb"<(?P<p>\w+:)?row\b[^>]*?/>|</(?P<q>\w+:)?row>")


@dataclass(frozen=True)
class HeadCopy:
    data: bytes  # the cut package
    complete: frozenset[str]  # names of sheets copied whole (shorter than the cut)


def head_copy(
    path: Path | IO[bytes], rows: int, worksheets: Mapping[str, str] | None = None
) -> HeadCopy | None:
    """The package with every worksheet cut after ``rows`` row elements.

    Row elements carry distinct, increasing row numbers, so the first ``rows``
    elements hold at least spreadsheet rows 1..rows. ``worksheets`` (sheet name
    to zip member) is the package's layout when the caller has read it already;
    read here otherwise. None when the package layout is not understood; the
    caller then parses the original.
    """
    with zipfile.ZipFile(path) as archive:
        if worksheets is None:
            worksheets = xlsx_parts_of(archive).worksheets
        if worksheets is None:
            return None
        sheet_of = {member: name for name, member in worksheets.items()}
        out = io.BytesIO()
        complete: set[str] = set()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as copy:
            for member in archive.infolist():
                name = member.filename
                if name not in sheet_of and not parsed_on_open(name):
                    continue
                if name in sheet_of:
                    data, whole = _cut(archive, member, rows)
                    if whole:
                        complete.add(sheet_of[name])
                else:
                    data = archive.read(member)
                copy.writestr(name, data)
    return HeadCopy(out.getvalue(), frozenset(complete))


def parsed_on_open(name: str) -> bool:
    """Whether calamine reads this part to open a workbook or load a worksheet.

    Only those are copied: a package may hold hundreds of other XML parts of
    up to 1 MB each (small enough to pass the zip-bomb ratio check), and
    copying them all put 1.5 GB in memory for a 2 MB file.
    """
    return name.endswith(".rels") or name in _PARSED_PARTS


def _cut(archive: zipfile.ZipFile, member: zipfile.ZipInfo, rows: int) -> tuple[bytes, bool]:
    """The worksheet XML up to its ``rows``-th row element, closed; and whether it is whole."""
    buffer = bytearray()
    seen = 0
    searched = 0
    with archive.open(member) as stream:
        while chunk := stream.read(_CHUNK):
            buffer += chunk
            # Back up so a row tag split across chunks is still found whole;
            # matches that ended in the part already searched were counted.
            for match in _ROW_END.finditer(buffer, max(searched - _BACKUP, 0)):
                if match.end() <= searched:
                    continue
                seen += 1
                if seen == rows:
                    prefix = (match.group("p") or match.group("q") or b"").decode()
                    tail = f"</{prefix}sheetData></{prefix}worksheet>".encode()
                    return bytes(buffer[: match.end()]) + tail, False
            searched = len(buffer)
    return bytes(buffer), True
