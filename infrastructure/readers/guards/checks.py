"""Checks on a file's bytes before any parser sees them.

calamine (under fastexcel and python-calamine) inflates whatever it is given:
a 1.5 MB zip bomb took 1.5 GB of RAM. So size, container type, encryption and
compression ratios are decided here from the file's header and the zip
central directory alone, without decompressing anything.
"""

from __future__ import annotations

import mmap
import zipfile
import zlib
from collections.abc import Iterable
from enum import Enum
from pathlib import Path
from xml.etree import ElementTree

from application.ports import LocalFile
from domain.errors import UnreadableFileError
from domain.source import ObjectInfo
from infrastructure.readers.failures import unreadable
from infrastructure.readers.guards.inflate import member_chunks
from infrastructure.readers.guards.sheet_extent import (
    EXCEL_MAX_COLUMNS,
    Extent,
    first_oversized_ods_table,
    first_oversized_sheet,
)
from infrastructure.readers.guards.xlsx_parts import Package, xlsx_parts_of
from infrastructure.readers.limits import MB, ReaderLimits

ZIP_MAGIC = b"PK\x03\x04"
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# Office stores an encrypted .xlsx as an OLE2 file holding this stream; the
# directory entry names are UTF-16LE.
ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")
# Small members (XML parts) compress 100x legitimately and cannot hurt.
RATIO_EXEMPT_BYTES = 1 * MB
# A DTD must come before the root element: after an XML declaration and
# perhaps comments, well within the first bytes of a part. UTF-16 parts too.
_DTD_MARKERS = tuple(
    text.encode(encoding)
    for text in ("<!DOCTYPE", "<!ENTITY")
    for encoding in ("utf-8", "utf-16-le", "utf-16-be")
)
_PROLOG_BYTES = 64 * 1024
# The parts of an .ods that calamine parses.
_ODS_PARSED = frozenset({"content.xml", "styles.xml"})


class FileKind(Enum):
    XLSX = ".xlsx"
    XLSM = ".xlsm"
    XLS = ".xls"
    ODS = ".ods"
    CSV = ".csv"

    @property
    def is_zip(self) -> bool:
        return self in (FileKind.XLSX, FileKind.XLSM, FileKind.ODS)


SUPPORTED = {kind.value: kind for kind in FileKind}
# The zip member every well-formed file of the kind has; its absence means a
# renamed or foreign zip, reported clearly instead of as a parser error. An
# .xlsx's workbook part is found through its relationships (xlsx_parts.py);
# this is the name it usually has.
_REQUIRED_MEMBER = {
    FileKind.XLSX: "xl/workbook.xml",
    FileKind.XLSM: "xl/workbook.xml",
    FileKind.ODS: "content.xml",
}


def inspect_file(
    file: LocalFile, info: ObjectInfo, limits: ReaderLimits, *, scan_extent: bool = True
) -> FileKind:
    """The file's kind, once it is known safe to hand to a parser.

    ``scan_extent=False`` leaves out the one check that reads the sheets' XML
    (:func:`check_extent`): for a parser whose process has a memory limit of its
    own, which then runs that scan alongside the parse (isolated.py).

    Raises UnreadableFileError with code ``unsupported_file_type``,
    ``file_too_large``, ``encrypted_workbook``, ``corrupt_workbook``,
    ``zip_bomb``, ``too_many_cells`` or ``malformed_csv``.
    """
    kind = SUPPORTED.get(info.suffix)
    if kind is None:
        expected = ", ".join(sorted(SUPPORTED))
        raise unreadable(
            info,
            "unsupported_file_type",
            f"unsupported file type {info.suffix or '(none)'!r}; expected one of {expected}",
            suffix=info.suffix,
        )
    try:
        size = file.path.stat().st_size
        with file.path.open("rb") as fh:
            head = fh.read(len(OLE2_MAGIC))
    except OSError as exc:
        raise unreadable(info, "corrupt_workbook", f"cannot read the file: {exc}") from exc
    if size > limits.max_file_bytes:
        raise unreadable(
            info,
            "file_too_large",
            f"file is {size:,} bytes, over the limit of {limits.max_file_bytes:,}",
            size=size,
            limit=limits.max_file_bytes,
        )
    if kind is FileKind.CSV:
        _check_csv(info, head)
    elif head.startswith(OLE2_MAGIC):
        _check_ole2(file.path, info, kind)
    elif head.startswith(ZIP_MAGIC):
        _check_zip(file.path, info, kind, limits, scan_extent=scan_extent)
    else:
        what = "the file is empty" if size == 0 else "neither a zip nor an OLE2 container"
        raise unreadable(info, "corrupt_workbook", f"not a valid {kind.value[1:]} file: {what}")
    return kind


def _check_csv(info: ObjectInfo, head: bytes) -> None:
    if head.startswith((ZIP_MAGIC, OLE2_MAGIC)):
        raise unreadable(
            info,
            "malformed_csv",
            "not CSV text: it is a binary spreadsheet (zip/OLE2) saved under a .csv name",
        )


def _check_ole2(path: Path, info: ObjectInfo, kind: FileKind) -> None:
    encrypted = _contains(path, ENCRYPTED_PACKAGE)
    if encrypted:
        raise unreadable(
            info,
            "encrypted_workbook",
            "the workbook is password-protected (encrypted); save a copy without a password",
        )
    if kind in (FileKind.XLSX, FileKind.XLSM):
        # A real .xlsx is a zip; Office only wraps it in OLE2 to encrypt it.
        # Without the EncryptedPackage stream it may also be a legacy .xls
        # renamed to .xlsx, which the message mentions so the user can tell.
        raise unreadable(
            info,
            "encrypted_workbook",
            f"the workbook is password-protected (encrypted) or not an {kind.value} at all: "
            "it is an OLE2 container, not a zip (a legacy .xls renamed?)",
        )
    if kind is FileKind.ODS:
        raise unreadable(
            info, "corrupt_workbook", "not a valid ods file: it is an OLE2 (legacy Excel) container"
        )


def _contains(path: Path, needle: bytes) -> bool:
    # The OLE2 directory can sit anywhere in the file; a scan over a memory
    # map costs ~0.1 s per 100 MB and needs no OLE2 parser.
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as view:
        return view.find(needle) >= 0


def _check_zip(
    path: Path, info: ObjectInfo, kind: FileKind, limits: ReaderLimits, *, scan_extent: bool
) -> None:
    label = kind.value[1:]
    if not kind.is_zip:
        raise unreadable(
            info,
            "corrupt_workbook",
            f"not a valid {label} file: it is a zip container (an .xlsx or .ods renamed?)",
        )
    damaged = (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        zlib.error,
        ElementTree.ParseError,
        OSError,
        ValueError,
        # zipfile's words for a version or compression method it cannot read,
        # and for a truncated member.
        NotImplementedError,
        EOFError,
    )
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            _check_inflation(info, members, limits)
            required = _REQUIRED_MEMBER[kind]
            # ODF names its parts exactly (the extent scan and calamine open
            # "content.xml" so); Office matches OOXML part names as xlsx_parts.py does.
            found = (
                required in archive.NameToInfo
                if kind is FileKind.ODS
                else Package(archive).has_workbook()
            )
            if not found:
                raise unreadable(
                    info, "corrupt_workbook", f"not a valid {label} file: the zip has no {required}"
                )
            _check_no_dtd(info, archive, kind)
            if scan_extent:
                _check_extent(info, archive, kind, limits)
    except damaged as exc:
        raise unreadable(
            info, "corrupt_workbook", f"not a valid {label} file: damaged or truncated zip ({exc})"
        ) from exc


def _check_no_dtd(info: ObjectInfo, archive: zipfile.ZipFile, kind: FileKind) -> None:
    """Refuse a package part that declares a DTD, before any XML parser reads it.

    Entities are declared in a DTD: billion laughs (nested entities that
    expand to gigabytes) and external entities (``SYSTEM "file:///etc/passwd"``)
    need one. No Office or LibreOffice part carries a DTD, so refusing one
    costs nothing real; calamine would only fail later on the first unknown
    entity, with a message that does not say why. A DTD sits in the prolog,
    so the first bytes of each part are enough.
    """
    for member in archive.infolist():
        name = member.filename
        if kind is FileKind.ODS:
            if name not in _ODS_PARSED:
                continue
        elif not name.lower().endswith((".xml", ".rels", ".vml")):
            continue
        # member_chunks, not archive.open: it reports every kind of damage
        # (an encrypted or exotic member too) as the errors _check_zip expects.
        head = next(iter(member_chunks(archive, member, _PROLOG_BYTES)), b"")
        if any(marker in head for marker in _DTD_MARKERS):
            raise unreadable(
                info,
                "corrupt_workbook",
                f"not a valid {kind.value[1:]} file: part {name!r} declares a DTD "
                "(<!DOCTYPE> or <!ENTITY>), which Office files never do; refused so that "
                "no entity is expanded and no external file is read",
                member=name,
            )


def check_extent(path: Path, info: ObjectInfo, kind: FileKind, limits: ReaderLimits) -> None:
    """Refuse (``too_many_cells``) a zip workbook with a sheet whose grid is over the limit.

    Reads every sheet's XML; run after :func:`inspect_file` has bounded its size.
    Errors of a damaged zip propagate as they are.
    """
    with zipfile.ZipFile(path) as archive:
        _check_extent(info, archive, kind, limits)


def _check_extent(
    info: ObjectInfo, archive: zipfile.ZipFile, kind: FileKind, limits: ReaderLimits
) -> None:
    # Runs after _check_inflation, so the XML it streams is bounded in size.
    if kind is FileKind.ODS:
        extent = first_oversized_ods_table(archive, limits.max_cells_per_sheet)
        sheet = None if extent is None else extent.member
    else:
        parts = xlsx_parts_of(archive)
        if parts.worksheets is not None:
            # A worksheet parsed in parts is scanned by the parser (parsers/excel.py):
            # the parts' own pass over its XML finds what this scan would.
            members: Iterable[str] = [
                m.filename
                for m in archive.infolist()
                if m.filename in parts.worksheets.values() and not limits.splits(m.file_size)
            ]
        else:
            # Unknown layout: scan every XML part; a stray match only overestimates.
            members = [
                m.filename for m in archive.infolist() if m.filename.lower().endswith(".xml")
            ]
        extent = first_oversized_sheet(archive, members, limits.max_cells_per_sheet)
        sheets = (parts.worksheets or {}).items()
        sheet = None if extent is None else next((n for n, m in sheets if m == extent.member), None)
    if extent is not None:
        raise too_many_cells(info, extent, sheet, limits)


def too_many_cells(
    info: ObjectInfo, extent: Extent, sheet: str | None, limits: ReaderLimits
) -> UnreadableFileError:
    """The refusal of a sheet whose extent is over the limits (:meth:`Extent.over`)."""
    over = (
        f"over the limit of {limits.max_cells_per_sheet:,} cells"
        if extent.cells > limits.max_cells_per_sheet
        else f"past Excel's last column (XFD, {EXCEL_MAX_COLUMNS:,})"
    )
    return unreadable(
        info,
        "too_many_cells",
        f"worksheet {sheet or extent.member!r} spans up to {extent.rows:,} rows x "
        f"{extent.columns:,} columns ({extent.cells:,} cells), {over}",
        member=extent.member,
        cells=extent.cells,
        limit=limits.max_cells_per_sheet,
    )


def _check_inflation(
    info: ObjectInfo, members: list[zipfile.ZipInfo], limits: ReaderLimits
) -> None:
    # Sizes come from the central directory; nothing is decompressed here.
    total = sum(m.file_size for m in members)
    if total > limits.max_uncompressed_bytes:
        raise unreadable(
            info,
            "zip_bomb",
            f"the archive would inflate to {total:,} bytes, over the limit of "
            f"{limits.max_uncompressed_bytes:,}",
            uncompressed=total,
            limit=limits.max_uncompressed_bytes,
        )
    for m in members:
        if m.file_size <= RATIO_EXEMPT_BYTES:
            continue
        ratio = m.file_size / m.compress_size if m.compress_size else float("inf")
        if ratio > limits.max_compression_ratio:
            raise unreadable(
                info,
                "zip_bomb",
                f"zip member {m.filename!r} inflates {ratio:,.0f}x "
                f"({m.compress_size:,} -> {m.file_size:,} bytes), over the limit of "
                f"{limits.max_compression_ratio:,.0f}x",
                member=m.filename,
                ratio=ratio,
                limit=limits.max_compression_ratio,
            )
