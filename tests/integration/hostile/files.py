"""Hostile files, built at test time: nothing binary is committed."""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path

from devtools.sample import generate_passengers, write_workbook
from tests.integration.readers.builders import inline, write_xlsx

GOOD_ROWS = 50
# Nested entities: each level expands ten times, 10**9 "lol"s at the last.
BILLION_LAUGHS = (
    '<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{i} "' + (f"&lol{i - 1};" if i > 1 else "&lol;") * 10 + '">'
        for i in range(1, 10)
    )
    + "]>",
    "&lol9;",
)
EXTERNAL_ENTITY = ('<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>', "&xxe;")
_XML_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_PASSENGERS_HEADER = f'<row r="1">{inline("A1", "PassengerId")}{inline("B1", "Survived")}</row>'


def good_workbook(directory: Path) -> Path:
    """A plain Titanic-shaped workbook: what the process must still read after a hostile one."""
    path = directory / "good.xlsx"
    write_workbook(generate_passengers("train_data", GOOD_ROWS, seed=7), path)
    return path


def rewrite_zip(path: Path, replace: Mapping[str, str | bytes]) -> Path:
    """``path`` with members replaced or added (zipfile cannot replace in place)."""
    with zipfile.ZipFile(path) as source:
        kept = {m.filename: source.read(m) for m in source.infolist() if m.filename not in replace}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in [*kept.items(), *replace.items()]:
            archive.writestr(name, data)
    return path


def passengers_sheet(path: Path, rows: str = "", *, sheet: str = "Data") -> Path:
    """A one-sheet .xlsx whose header is PassengerId, Survived, followed by ``rows``."""
    return write_xlsx(path, {sheet: _PASSENGERS_HEADER + rows})


# ------------------------------------------------------------ archive attacks


def worksheet_bomb(path: Path, inflated_mb: int) -> Path:
    """A worksheet padded with whitespace: ~1000x compression, a classic zip bomb."""
    passengers_sheet(path)
    padding = " " * (inflated_mb * 1024 * 1024)
    sheet = (
        f'{_XML_DECL}<worksheet xmlns="{_MAIN}"><sheetData>{_PASSENGERS_HEADER}'
        f"{padding}</sheetData></worksheet>"
    )
    return rewrite_zip(path, {"xl/worksheets/sheet1.xml": sheet})


def many_small_parts(path: Path, parts: int) -> Path:
    """A good workbook plus ``parts`` 1 MB XML parts of zeros.

    Each part is under the 1 MB below which the ratio check does not apply,
    so the package passes the zip guards; nothing reads these parts, and
    nothing should hold them in memory.
    """
    write_workbook(generate_passengers("train_data", 5, seed=3), path)
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive:
        block = b"<x>" + b" " * (1024 * 1024 - 7) + b"</x>"
        for i in range(parts):
            archive.writestr(f"xl/custom/part{i}.xml", block)
    return path


def with_dtd(path: Path, part: str, attack: tuple[str, str]) -> Path:
    """An .xlsx whose ``part`` (sheet, sst or workbook) declares a DTD and uses its entity."""
    dtd, entity = attack
    if part == "workbook":
        passengers_sheet(path, sheet="Data")
        with zipfile.ZipFile(path) as archive:
            workbook = archive.read("xl/workbook.xml").decode()
        workbook = workbook.replace(_XML_DECL, _XML_DECL + dtd).replace(
            'name="Data"', f'name="Data{entity}"'
        )
        return rewrite_zip(path, {"xl/workbook.xml": workbook})
    if part == "sheet":
        cell = f'<c r="B2" t="inlineStr"><is><t>{entity}</t></is></c>'
        rows = f'<row r="2"><c r="A2"><v>1</v></c>{cell}</row>'
        passengers_sheet(path, rows)
        with zipfile.ZipFile(path) as archive:
            sheet = archive.read("xl/worksheets/sheet1.xml").decode()
        return rewrite_zip(
            path, {"xl/worksheets/sheet1.xml": sheet.replace(_XML_DECL, _XML_DECL + dtd)}
        )
    rows = '<row r="2"><c r="A2"><v>1</v></c><c r="B2" t="s"><v>0</v></c></row>'
    passengers_sheet(path, rows)
    shared = (
        f'{_XML_DECL}{dtd}<sst xmlns="{_MAIN}" count="1" uniqueCount="1">'
        f"<si><t>{entity}</t></si></sst>"
    )
    return rewrite_zip(path, {"xl/sharedStrings.xml": shared})


def truncated(path: Path) -> Path:
    whole = passengers_sheet(path, '<row r="2"><c r="A2"><v>1</v></c></row>').read_bytes()
    path.write_bytes(whole[: len(whole) * 2 // 3])
    return path


def random_bytes(path: Path) -> Path:
    path.write_bytes(bytes((i * 7919 + 13) % 256 for i in range(64 * 1024)))
    return path


# ------------------------------------------------------------ workbook shapes


def xlsm_with_macro(path: Path, marker: Path) -> Path:
    """A macro-enabled workbook whose VBA project would create ``marker`` when run.

    The project is a stand-in (an OLE2 header and the macro's source): what
    matters is that the package declares and carries it exactly as Excel
    does, and that reading the workbook never gets anywhere near running it.
    """
    rows = (
        '<row r="2"><c r="A2"><v>1</v></c><c r="B2"><v>0</v></c></row>'
        '<row r="3"><c r="A3"><v>2</v></c><c r="B3"><v>1</v></c></row>'
    )
    passengers_sheet(path, rows)
    with zipfile.ZipFile(path) as archive:
        types = archive.read("[Content_Types].xml").decode()
        rels = archive.read("xl/_rels/workbook.xml.rels").decode()
    types = types.replace(
        "spreadsheetml.sheet.main+xml", "ms-excel.sheet.macroEnabled.main+xml"
    ).replace(
        '<Default Extension="xml"',
        '<Default Extension="bin" ContentType="application/vnd.ms-office.vbaProject"/>'
        '<Default Extension="xml"',
    )
    rels = rels.replace(
        "</Relationships>",
        '<Relationship Id="rIdVba" Type="http://schemas.microsoft.com/office/2006/'
        'relationships/vbaProject" Target="vbaProject.bin"/></Relationships>',
    )
    macro = (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
        + bytes(504)
        + f'Attribute VB_Name = "ThisWorkbook"\r\nSub Workbook_Open()\r\n'
        f'  Open "{marker}" For Output As #1\r\n  Close #1\r\nEnd Sub\r\n'.encode()
    )
    return rewrite_zip(
        path,
        {
            "[Content_Types].xml": types,
            "xl/_rels/workbook.xml.rels": rels,
            "xl/vbaProject.bin": macro,
        },
    )


def many_sheets(path: Path, count: int) -> Path:
    def sheet(i: int) -> str:
        cells = f'<c r="A2"><v>{i + 1}</v></c><c r="B2"><v>0</v></c>'
        return f'{_PASSENGERS_HEADER}<row r="2">{cells}</row>'

    return write_xlsx(path, {f"S{i}": sheet(i) for i in range(count)})


def long_csv(
    path: Path, rows: int, *, ragged_row: int | None = None, blank_row: int | None = None
) -> Path:
    """A train-shaped CSV of ``rows`` data rows, optionally with one ragged or blank line.

    Row numbers are spreadsheet rows (the header is row 1); the odd line goes
    in the first 100,000 rows. Written a block at a time: tens of millions of
    rows take well under a second.
    """
    block_rows = 100_000
    block = "".join(f"{i},0,Doe\n" for i in range(block_rows)).encode()
    first = "".join(
        f"{row},0,Doe,extra\n"
        if row == ragged_row
        else "   \n"
        if row == blank_row
        else f"{row},0,Doe\n"
        for row in range(2, block_rows + 2)
    ).encode()
    with path.open("wb") as out:
        out.write(b"PassengerId,Survived,Name\n")
        out.write(first)
        whole, rest = divmod(rows - block_rows, block_rows)
        for _ in range(whole):
            out.write(block)
        out.write(block[: len(block) * rest // block_rows])
    return path


def equal_header(path: Path, columns: int, rows: int) -> Path:
    """A sheet ``columns`` wide whose header labels are all the same word."""
    refs = [_column_letters(i) for i in range(1, columns + 1)]
    header = "".join(inline(f"{ref}1", "x") for ref in refs)
    data = "".join(
        f'<row r="{r}">' + "".join(f'<c r="{ref}{r}"><v>{r}</v></c>' for ref in refs[:3]) + "</row>"
        for r in range(2, rows + 2)
    )
    return write_xlsx(path, {"Wide": f'<row r="1">{header}</row>{data}'})


def _column_letters(number: int) -> str:
    letters = ""
    while number:
        number, rest = divmod(number - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters
