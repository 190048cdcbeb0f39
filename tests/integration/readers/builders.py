"""Test inputs built at test time: no binary fixture is committed."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa

from application.ports import LocalFile, Workbook, WorkbookReader
from domain.sheet import RawSheet
from domain.source import ObjectInfo
from infrastructure.readers import FastexcelWorkbookReader, FileTypeWorkbookReader, ReaderLimits
from infrastructure.readers.parsers.csv_reader import ArrowCsvWorkbookReader
from infrastructure.readers.parsers.xls import XlrdWorkbookReader

_XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_OOXML = "http://schemas.openxmlformats.org"
_DOC_REL = f"{_OOXML}/officeDocument/2006/relationships"
_PKG_REL = f"{_OOXML}/package/2006/relationships"
_MAIN = f"{_OOXML}/spreadsheetml/2006/main"
_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml"
_CONTENT_TYPES = (
    _XML + f'<Types xmlns="{_OOXML}/package/2006/content-types">\n'
    '<Default Extension="rels" ContentType="application/'
    'vnd.openxmlformats-package.relationships+xml"/>\n'
    '<Default Extension="xml" ContentType="application/xml"/>\n'
    f'<Override PartName="/xl/workbook.xml" ContentType="{_CT}.sheet.main+xml"/>\n'
    f'<Override PartName="/xl/styles.xml" ContentType="{_CT}.styles+xml"/>\n'
    "{overrides}\n</Types>"
)
_SHEET_TYPE = f"{_CT}.worksheet+xml"
_ROOT_RELS = (
    _XML + f'<Relationships xmlns="{_PKG_REL}">\n'
    f'<Relationship Id="rId1" Type="{_DOC_REL}/officeDocument" Target="xl/workbook.xml"/>\n'
    "</Relationships>"
)
_WORKBOOK = (
    _XML + f'<workbook xmlns="{_MAIN}" xmlns:r="{_DOC_REL}">\n'
    "{props}<sheets>{sheets}</sheets></workbook>"
)
_WORKBOOK_RELS = (
    _XML + f'<Relationships xmlns="{_PKG_REL}">\n'
    f'<Relationship Id="rIdStyles" Type="{_DOC_REL}/styles" Target="styles.xml"/>\n'
    "{rels}\n</Relationships>"
)
_WORKSHEET_REL = f"{_DOC_REL}/worksheet"
# Style 1: a date (numFmt 14), style 2: date-time (22), style 3: [h]:mm:ss.
_STYLES = (
    _XML + f'<styleSheet xmlns="{_MAIN}">\n'
    '<numFmts count="1"><numFmt numFmtId="164" formatCode="[h]:mm:ss"/></numFmts>\n'
    '<fonts count="1"><font/></fonts><fills count="1"><fill/></fills>\n'
    '<borders count="1"><border/></borders><cellStyleXfs count="1"><xf/></cellStyleXfs>\n'
    '<cellXfs count="4"><xf numFmtId="0"/><xf numFmtId="14" applyNumberFormat="1"/>\n'
    '<xf numFmtId="22" applyNumberFormat="1"/><xf numFmtId="164" applyNumberFormat="1"/>'
    "</cellXfs>\n</styleSheet>"
)
_SHEET = _XML + f'<worksheet xmlns="{_MAIN}"><sheetData>\n' + "{rows}\n</sheetData></worksheet>"


def write_xlsx(path: Path, sheets: Mapping[str, str], *, date_1904: bool = False) -> Path:
    """A minimal .xlsx whose sheets are given as raw ``<row>`` XML.

    Written by hand because openpyxl stores formulas without a cached value
    and cannot write error cells; Excel files have both.
    """
    names = list(sheets)
    overrides = "\n".join(
        f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="{_SHEET_TYPE}"/>'
        for i in range(1, len(names) + 1)
    )
    sheet_elems = "".join(
        f'<sheet name="{name}" sheetId="{i}" r:id="rId{i}"/>' for i, name in enumerate(names, 1)
    )
    rels = "\n".join(
        f'<Relationship Id="rId{i}" Type="{_WORKSHEET_REL}" Target="worksheets/sheet{i}.xml"/>'
        for i in range(1, len(names) + 1)
    )
    props = '<workbookPr date1904="1"/>' if date_1904 else ""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES.format(overrides=overrides))
        archive.writestr("_rels/.rels", _ROOT_RELS)
        archive.writestr("xl/workbook.xml", _WORKBOOK.format(props=props, sheets=sheet_elems))
        archive.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS.format(rels=rels))
        archive.writestr("xl/styles.xml", _STYLES)
        for i, name in enumerate(names, 1):
            archive.writestr(f"xl/worksheets/sheet{i}.xml", _SHEET.format(rows=sheets[name]))
    return path


def inline(ref: str, text: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'


def ole2_file(path: Path, *, encrypted: bool) -> Path:
    """An OLE2 compound file header, with an EncryptedPackage directory entry if asked.

    Only what the guards look at: the magic and the UTF-16LE stream name in
    a 128-byte directory entry. Office writes exactly this stream when a
    workbook is saved with a password.
    """
    header = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)
    name = "EncryptedPackage" if encrypted else "Workbook"
    entry = name.encode("utf-16-le").ljust(64, b"\0") + bytes(64)
    path.write_bytes(header + entry + bytes(512 - len(entry)))
    return path


def write_ods_xml(path: Path, content_body: str) -> Path:
    """A minimal .ods whose spreadsheet body (``<table:table>`` elements) is given."""
    content = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"'
        ' xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0"'
        ' xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
        f"<office:body><office:spreadsheet>{content_body}</office:spreadsheet></office:body>"
        "</office:document-content>"
    )
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"'
        ' manifest:version="1.2">'
        '<manifest:file-entry manifest:full-path="/"'
        ' manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
        "</manifest:manifest>"
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "mimetype", "application/vnd.oasis.opendocument.spreadsheet", zipfile.ZIP_STORED
        )
        archive.writestr("META-INF/manifest.xml", manifest)
        archive.writestr("content.xml", content)
    return path


def info_for(path: Path, uri: str | None = None) -> ObjectInfo:
    return ObjectInfo(uri=uri or f"s3://bucket/in/{path.name}", size=path.stat().st_size)


@contextmanager
def opened(
    path: Path, *, limits: ReaderLimits | None = None, uri: str | None = None
) -> Iterator[Workbook]:
    info = info_for(path, uri)
    reader: WorkbookReader = FileTypeWorkbookReader(limits)  # the port, checked by mypy
    with reader.open(LocalFile(path, info.size), info) as workbook:
        yield workbook


# The parsers satisfy the port on their own too (without the guards).
_PORTS: tuple[WorkbookReader, ...] = (
    FastexcelWorkbookReader(),
    XlrdWorkbookReader(),
    ArrowCsvWorkbookReader(),
)


def text_cells(sheet: RawSheet) -> pa.Table:
    """The sheet's cells as text: readers may hand purely numeric columns over as float64."""
    from domain.coercion import as_text

    return pa.table(
        [as_text(c.combine_chunks()) for c in sheet.cells.columns], names=sheet.cells.column_names
    )
