"""What calamine does not tell about an .xlsx/.xlsm: its date system and its sheet kinds.

Read from two small XML parts of the package (the guards have already
bounded every member's size), never from the worksheets themselves.
"""

from __future__ import annotations

import posixpath
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

_WORKSHEET_REL = "/worksheet"
# workbook.xml is a few KB even with hundreds of sheets; anything far bigger
# is not a workbook part we want to parse.
_MAX_PART_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class XlsxParts:
    date_1904: bool
    # Sheet name -> zip member of each real worksheet; chart sheets and
    # dialog/macro sheets are left out. None when the parts could not be
    # read: calamine then reports the broken package itself.
    worksheets: dict[str, str] | None

    @property
    def worksheet_names(self) -> frozenset[str] | None:
        return None if self.worksheets is None else frozenset(self.worksheets)


UNKNOWN = XlsxParts(date_1904=False, worksheets=None)

# How zipfile and ElementTree report a damaged package part. Besides the
# obvious ones: a corrupt deflate stream is zlib.error, a truncated one
# EOFError, an exotic compression method NotImplementedError and an encrypted
# member RuntimeError. Any of them means "unknown", never a crash: calamine
# reports the broken package itself.
_DAMAGED = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    NotImplementedError,
    RuntimeError,
    KeyError,
    OSError,
    ElementTree.ParseError,
    ValueError,
)


def read_xlsx_parts(path: Path) -> XlsxParts:
    try:
        with zipfile.ZipFile(path) as archive:
            return xlsx_parts_of(archive)
    except _DAMAGED:
        return UNKNOWN


def xlsx_parts_of(archive: zipfile.ZipFile) -> XlsxParts:
    try:
        workbook = _parse(archive, "xl/workbook.xml")
        rels = _parse(archive, "xl/_rels/workbook.xml.rels")
    except _DAMAGED:
        return UNKNOWN
    # Matched by local name: transitional and strict OOXML use different namespaces.
    props = next(_elements(workbook, "workbookPr"), None)
    date_1904 = props is not None and _attr(props, "date1904").lower() in ("1", "true")
    targets = {
        _attr(rel, "Id"): (_attr(rel, "Type"), _attr(rel, "Target"))
        for rel in _elements(rels, "Relationship")
    }
    worksheets: dict[str, str] = {}
    found_sheets = False
    for sheet in _elements(workbook, "sheet"):
        found_sheets = True
        kind, target = targets.get(_attr(sheet, "id"), ("", ""))
        if kind.endswith(_WORKSHEET_REL):
            worksheets[_attr(sheet, "name")] = _member(target)
    if not found_sheets:
        return XlsxParts(date_1904=date_1904, worksheets=None)
    return XlsxParts(date_1904=date_1904, worksheets=worksheets)


def _member(target: str) -> str:
    """A relationship target of xl/workbook.xml as a zip member name."""
    if target.startswith("/"):
        return target.lstrip("/")
    return posixpath.normpath(posixpath.join("xl", target))


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1]


def _elements(root: ElementTree.Element, tag: str) -> Iterator[ElementTree.Element]:
    return (e for e in root.iter() if _local(e.tag) == tag)


def _attr(element: ElementTree.Element, name: str) -> str:
    return next((v for k, v in element.attrib.items() if _local(k) == name), "")


def _parse(archive: zipfile.ZipFile, member: str) -> ElementTree.Element:
    if archive.getinfo(member).file_size > _MAX_PART_BYTES:
        raise ValueError(f"{member} is implausibly large")
    data = archive.read(member)
    # Package parts never declare a DTD; refusing one rules out entity
    # expansion tricks whatever the XML parser's own defences.
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise ValueError(f"{member} declares a DTD")
    return ElementTree.fromstring(data)
