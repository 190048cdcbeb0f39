"""How an .xlsx/.xlsm package is laid out, found the way Office finds it.

Office locates parts through relationships, not fixed paths, and compares
part names case-insensitively: real files have ``xl/SharedStrings.xml``,
zip entries written with ``\\`` separators, or the workbook part outside
``xl/``. calamine looks parts up by exact, fixed names, so it refuses or
misreads such files. Here the workbook part is found through
``_rels/.rels`` (the officeDocument relationship) and every part through
the workbook's relationships, matched on a normalised name (``/``
separators, no leading slash, case folded). Every guard reads the package
through this index, and :func:`canonical_copy` hands calamine the same
package under the names it expects when the original's differ.

Also read here, because calamine does not tell: the date system and the
sheet kinds. Only small XML parts are read (the guards have already bounded
every member's size), never the worksheets themselves.
"""

from __future__ import annotations

import io
import posixpath
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

_OFFICE_DOCUMENT_REL = "/officeDocument"
_WORKSHEET_REL = "/worksheet"
_SHARED_STRINGS_REL = "/sharedStrings"
_STYLES_REL = "/styles"
_WORKBOOK = "xl/workbook.xml"
_WORKBOOK_RELS = "xl/_rels/workbook.xml.rels"
_ROOT_RELS = "_rels/.rels"
# The names calamine opens without asking the relationships.
_FIXED_NAMES = {_SHARED_STRINGS_REL: "xl/sharedStrings.xml", _STYLES_REL: "xl/styles.xml"}
_PKG_RELS_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_STRICT_MAIN_NS = "http://purl.oclc.org/ooxml/spreadsheetml/main"
# workbook.xml is a few KB even with hundreds of sheets; anything far bigger
# is not a workbook part we want to parse.
_MAX_PART_BYTES = 16 * 1024 * 1024


def part_key(name: str) -> str:
    """A zip entry or part name as Office compares them."""
    return name.replace("\\", "/").lstrip("/").lower()


class Package:
    """The members of a zip, found by part name as Office matches them."""

    def __init__(self, archive: zipfile.ZipFile) -> None:
        self.archive = archive
        self.members = archive.infolist()
        self._by_key: dict[str, zipfile.ZipInfo] = {}
        for member in self.members:
            self._by_key.setdefault(part_key(member.filename), member)

    def find(self, name: str) -> zipfile.ZipInfo | None:
        return self._by_key.get(part_key(name))

    def workbook_part(self) -> str:
        """The workbook part's normalised name: the officeDocument target, else the usual one."""
        try:
            rels = _parse(self, _ROOT_RELS)
        except _DAMAGED:
            return _WORKBOOK
        for rel in _elements(rels, "Relationship"):
            if _attr(rel, "Type").endswith(_OFFICE_DOCUMENT_REL):
                target = _resolve("", _attr(rel, "Target"))
                if self.find(target) is not None:
                    return target
        return _WORKBOOK

    def has_workbook(self) -> bool:
        return self.find(self.workbook_part()) is not None


@dataclass(frozen=True)
class XlsxParts:
    date_1904: bool
    # Sheet name -> zip member (its name as stored) of each real worksheet;
    # chart sheets and dialog/macro sheets are left out. None when the parts
    # could not be read: calamine then reports the broken package itself.
    worksheets: dict[str, str] | None
    # Whether calamine would misread the package as it is (see canonical_copy).
    canonical: bool = True

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


def xlsx_parts_of(archive: zipfile.ZipFile | Package) -> XlsxParts:
    package = archive if isinstance(archive, Package) else Package(archive)
    layout = _layout(package)
    if layout is None:
        return UNKNOWN
    return layout.parts


@dataclass(frozen=True)
class _Layout:
    parts: XlsxParts
    workbook: str  # the workbook part's normalised name
    # Normalised part name -> the name calamine needs it under, for the parts
    # whose stored name is not that.
    renames: dict[str, str]
    relationships: list[tuple[str, str, str]]  # (Id, Type, target part name)


def _layout(package: Package) -> _Layout | None:
    workbook_name = package.workbook_part()
    try:
        workbook = _parse(package, workbook_name)
        rels_name = posixpath.join(
            posixpath.dirname(workbook_name), "_rels", posixpath.basename(workbook_name) + ".rels"
        )
        rels = _parse(package, rels_name)
    except _DAMAGED:
        return None
    date_1904 = _date_1904(workbook)
    folder = posixpath.dirname(workbook_name)
    relationships: list[tuple[str, str, str]] = []
    for rel in _elements(rels, "Relationship"):
        if _attr(rel, "TargetMode").lower() == "external":
            continue
        relationships.append(
            (_attr(rel, "Id"), _attr(rel, "Type"), _resolve(folder, _attr(rel, "Target")))
        )
    targets = {rid: (kind, target) for rid, kind, target in relationships}
    worksheets: dict[str, str] = {}
    found_sheets = False
    for sheet in _elements(workbook, "sheet"):
        found_sheets = True
        kind, target = targets.get(_attr(sheet, "id"), ("", ""))
        member = package.find(target) if target else None
        if kind.endswith(_WORKSHEET_REL) and member is not None:
            worksheets[_attr(sheet, "name")] = member.filename
    renames = _renames(package, workbook_name, folder, relationships)
    # calamine takes the date system from the last element named workbookPr,
    # which Excel 2013+ writes again (x15:workbookPr, without date1904) in extLst.
    shadowed = date_1904 and not _last_workbook_pr_says_1904(workbook)
    parts = XlsxParts(
        date_1904=date_1904,
        worksheets=worksheets if found_sheets else None,
        canonical=not renames and not shadowed,
    )
    return _Layout(parts, workbook_name, renames, relationships)


def _renames(
    package: Package, workbook: str, folder: str, relationships: list[tuple[str, str, str]]
) -> dict[str, str]:
    """The parts calamine would not find under their stored names, and the names it needs."""
    wanted: dict[str, str] = {}
    if part_key(workbook) != _WORKBOOK:
        # The workbook's folder moves to xl/ whole, so relative targets still hold.
        prefix = folder + "/" if folder else ""
        for member in package.members:
            name = member.filename.replace("\\", "/").lstrip("/")
            if prefix and not name.lower().startswith(prefix.lower()):
                continue
            if not prefix and (name.startswith("_rels/") or name == "[Content_Types].xml"):
                continue
            wanted[part_key(name)] = "xl/" + name[len(prefix) :]
    wanted[part_key(workbook)] = _WORKBOOK
    rels = posixpath.join(folder, "_rels", posixpath.basename(workbook) + ".rels")
    wanted[part_key(rels)] = _WORKBOOK_RELS
    for _, kind, target in relationships:
        fixed = next((name for rel, name in _FIXED_NAMES.items() if kind.endswith(rel)), None)
        if fixed is not None:
            wanted[part_key(target)] = fixed
    renames: dict[str, str] = {}
    for member in package.members:
        key = part_key(member.filename)
        name = wanted.get(key, member.filename.replace("\\", "/").lstrip("/"))
        if name != member.filename:
            renames[key] = name
    # A relationship target that matches its member only case-insensitively.
    for _, _, target in relationships:
        stored = package.find(target)
        if stored is not None and part_key(target) not in renames and stored.filename != target:
            renames[part_key(target)] = target
    return renames


def canonical_copy(path: Path) -> bytes | None:
    """The package as calamine can read it, or None when the original already is.

    Parts are renamed to the names calamine opens (``xl/workbook.xml``,
    ``xl/sharedStrings.xml``, ``/`` separators, the relationship targets'
    own spelling), the relationships are rewritten to match, and a
    ``date1904`` that calamine would not see is written where it looks.
    Members are copied in memory; only non-canonical packages pay for it.
    """
    with zipfile.ZipFile(path) as archive:
        package = Package(archive)
        layout = _layout(package)
        if layout is None or layout.parts.canonical:
            return None
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as copy:
            for member in package.members:
                if member.is_dir():
                    continue
                key = part_key(member.filename)
                name = layout.renames.get(key, member.filename)
                data = archive.read(member)
                if key == part_key(_ROOT_RELS):
                    data = _root_rels(data)
                elif name == _WORKBOOK_RELS:
                    data = _workbook_rels(package, layout)
                elif name == _WORKBOOK and layout.parts.date_1904:
                    data = _unshadowed_1904(data)
                copy.writestr(name, data)
    return out.getvalue()


def _root_rels(data: bytes) -> bytes:
    root = _xml(_ROOT_RELS, data)
    rels = [
        (_attr(r, "Id"), _attr(r, "Type"), _attr(r, "Target"))
        for r in _elements(root, "Relationship")
    ]
    fixed = [
        (rid, kind, "xl/workbook.xml" if kind.endswith(_OFFICE_DOCUMENT_REL) else target)
        for rid, kind, target in rels
    ]
    return _relationships_xml(fixed)


def _workbook_rels(package: Package, layout: _Layout) -> bytes:
    rels = []
    for rid, kind, target in layout.relationships:
        member = package.find(target)
        name = target if member is None else member.filename
        name = layout.renames.get(part_key(target), name)
        rels.append((rid, kind, "/" + name))
    return _relationships_xml(rels)


# What an attribute value in double quotes must have escaped; whitespace as character
# references, or a parser would read a space.
_ATTRIBUTE = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        '"': "&quot;",
        "\n": "&#10;",
        "\r": "&#13;",
        "\t": "&#9;",
    }
)


def _attribute(value: str) -> str:
    """``value`` as a double-quoted XML attribute, as xml.sax.saxutils.quoteattr makes it.

    Not imported from there: xml.sax.saxutils imports urllib.request, and with it the
    email and http packages, 40-70 ms of every cold start.
    """
    return '"' + value.translate(_ATTRIBUTE) + '"'


def _relationships_xml(rels: list[tuple[str, str, str]]) -> bytes:
    body = "".join(
        f"<Relationship Id={_attribute(rid)} Type={_attribute(kind)} Target={_attribute(target)}/>"
        for rid, kind, target in rels
    )
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<Relationships xmlns="{_PKG_RELS_NS}">{body}</Relationships>'
    ).encode()


def _unshadowed_1904(data: bytes) -> bytes:
    """workbook.xml with every workbookPr saying date1904, as the main one does."""
    root = _xml(_WORKBOOK, data)
    for props in _elements(root, "workbookPr"):
        props.set("date1904", "1")
    text: bytes = ElementTree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return text


def _date_1904(workbook: ElementTree.Element) -> bool:
    # The workbook's own workbookPr (transitional or strict namespace), not
    # an extension's element of the same local name.
    props = next(
        (
            child
            for child in workbook
            if child.tag in (f"{{{_MAIN_NS}}}workbookPr", f"{{{_STRICT_MAIN_NS}}}workbookPr")
        ),
        None,
    )
    return props is not None and _attr(props, "date1904").lower() in ("1", "true")


def _last_workbook_pr_says_1904(workbook: ElementTree.Element) -> bool:
    props = list(_elements(workbook, "workbookPr"))
    last = props[-1] if props else None
    return last is not None and _attr(last, "date1904").lower() in ("1", "true")


def _resolve(folder: str, target: str) -> str:
    """A relationship target, relative to ``folder``, as a normalised part name."""
    target = target.replace("\\", "/")
    if target.startswith("/"):
        return posixpath.normpath(target.lstrip("/"))
    return posixpath.normpath(posixpath.join(folder, target)).lstrip("/")


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1]


def _elements(root: ElementTree.Element, tag: str) -> Iterator[ElementTree.Element]:
    return (e for e in root.iter() if _local(e.tag) == tag)


def _attr(element: ElementTree.Element, name: str) -> str:
    return next((v for k, v in element.attrib.items() if _local(k) == name), "")


def _parse(package: Package, name: str) -> ElementTree.Element:
    member = package.find(name)
    if member is None:
        raise KeyError(name)
    if member.file_size > _MAX_PART_BYTES:
        raise ValueError(f"{name} is implausibly large")
    return _xml(name, package.archive.read(member))


def _xml(name: str, data: bytes) -> ElementTree.Element:
    """Every package part is parsed here, so every one is refused a DTD."""
    # Package parts never declare a DTD; refusing one rules out entity
    # expansion tricks whatever the XML parser's own defences, and ElementTree
    # never fetches external resources: what defusedxml would add is covered.
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise ValueError(f"{name} declares a DTD")
    return ElementTree.fromstring(data)  # noqa: S314 - DTDs refused above
