"""The fuzzer's seed corpus: small valid workbooks, built at run time.

Each seed is one selector byte (the index of its extension in ``KINDS``)
followed by the file's bytes, the input shape fuzz_reader.py expects.
Binary files are never committed; this module writes them when asked.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

KINDS = (".xlsx", ".xls", ".ods", ".csv")

HEADER = ["PassengerId", "Survived", "Pclass", "Name", "Sex", "Age", "SibSp", "Parch",
          "Ticket", "Fare", "Cabin", "Embarked"]  # fmt: skip
ROWS: list[list[object]] = [
    [1, 0, 3, "Braund, Mr. Owen Harris", "male", 22, 1, 0, "A/5 21171", 7.25, None, "S"],
    [2, 1, 1, "Cumings, Mrs. John Bradley", "female", 38.5, 1, 0, "PC 17599", 71.2833, "C85",
     "C"],
    [3, 1, 3, "Heikkinen, Miss. Laina", "female", None, 0, 0, "STON/O2. 3101282", 7.925, None,
     "S"],
]  # fmt: skip


def write_seeds(directory: Path) -> list[Path]:
    """Write every seed into ``directory``; returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, suffix, body in _seeds():
        path = directory / f"seed-{name}"
        path.write_bytes(bytes([KINDS.index(suffix)]) + body)
        written.append(path)
    return written


def _seeds() -> Iterator[tuple[str, str, bytes]]:
    builders: list[tuple[str, str, Callable[[], bytes]]] = [
        ("openpyxl", ".xlsx", _xlsx_openpyxl),
        ("xlsxwriter", ".xlsx", _xlsx_xlsxwriter),
        ("by-hand", ".xlsx", _xlsx_by_hand),
        ("xlwt", ".xls", _xls),
        ("pandas-odf", ".ods", _ods),
        ("utf8", ".csv", _csv_utf8),
        ("cp1252", ".csv", _csv_cp1252),
    ]
    for name, suffix, build in builders:
        yield name, suffix, build()


def _xlsx_openpyxl() -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Passengers"
    sheet.append(["Titanic manifest"])
    sheet.append([])
    sheet.append(HEADER)
    for row in ROWS:
        sheet.append(row)
    sheet.append([4, True, 2, "=1+1", "female", dt.date(1912, 4, 15), 0, 0, "x", -1, "", "Q"])
    extra = book.create_sheet("Submission")
    extra.append(["PassengerId", "Survived"])
    extra.append([892, 0])
    book.create_sheet("Empty")
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _xlsx_xlsxwriter() -> bytes:
    import xlsxwriter  # type: ignore[import-untyped, unused-ignore]

    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True})
    sheet = book.add_worksheet("Data")
    date = book.add_format({"num_format": "yyyy-mm-dd"})
    sheet.write_row(0, 0, HEADER)
    for number, row in enumerate(ROWS, start=1):
        sheet.write_row(number, 0, [v for v in row if v is not None])
    sheet.write_datetime(4, 5, dt.datetime(1912, 4, 15, 2, 20), date)
    sheet.write_formula(4, 9, "=J2+J3", None, 78.5333)
    book.close()
    return out.getvalue()


def _xlsx_by_hand() -> bytes:
    """Inline strings, an error cell and the 1904 date system, as Excel writes them."""
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    pkg = "http://schemas.openxmlformats.org/package/2006/relationships"
    files = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/'
            'vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>'
        ),
        "_rels/.rels": (
            f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{pkg}">'
            f'<Relationship Id="rId1" Type="{rel}/officeDocument" Target="xl/workbook.xml"/>'
            "</Relationships>"
        ),
        "xl/workbook.xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{main}" xmlns:r="{rel}">'
            '<workbookPr date1904="1"/><sheets><sheet name="S" sheetId="1" r:id="rId1"/>'
            "</sheets></workbook>"
        ),
        "xl/_rels/workbook.xml.rels": (
            f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{pkg}">'
            f'<Relationship Id="rId1" Type="{rel}/worksheet" Target="worksheets/sheet1.xml"/>'
            "</Relationships>"
        ),
        "xl/worksheets/sheet1.xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{main}">'
            '<dimension ref="B2:D3"/><sheetData>'
            '<row r="2"><c r="B2" t="inlineStr"><is><t>PassengerId</t></is></c>'
            '<c r="C2" t="inlineStr"><is><t>Survived</t></is></c>'
            '<c r="D2" t="inlineStr"><is><t>When</t></is></c></row>'
            '<row r="3"><c r="B3"><v>7</v></c><c r="C3" t="e"><v>#DIV/0!</v></c>'
            '<c r="D3"><v>45000.5</v></c></row>'
            "</sheetData></worksheet>"
        ),
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return out.getvalue()


def _xls() -> bytes:
    import xlwt  # type: ignore[import-untyped, unused-ignore]

    book = xlwt.Workbook()
    sheet = book.add_sheet("Passengers")
    for column, label in enumerate(HEADER):
        sheet.write(0, column, label)
    for number, row in enumerate(ROWS, start=1):
        for column, value in enumerate(row):
            if value is not None:
                sheet.write(number, column, value)
    sheet.write(4, 5, dt.date(1890, 5, 17), xlwt.easyxf(num_format_str="YYYY-MM-DD"))
    sheet.write(4, 6, True)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _ods() -> bytes:
    import pandas as pd

    out = io.BytesIO()
    with pd.ExcelWriter(out, engine="odf") as writer:
        pd.DataFrame(ROWS, columns=HEADER).to_excel(writer, sheet_name="Passengers", index=False)
        pd.DataFrame({"PassengerId": [892], "Survived": [1]}).to_excel(
            writer, sheet_name="Submission", index=False
        )
    return out.getvalue()


def _csv_text() -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["Report"])
    writer.writerow(HEADER)
    for row in ROWS:
        writer.writerow(["" if v is None else v for v in row])
    writer.writerow([4, 1, 2, "Multi\nline, quoted", "female", "", 0, 0, "T", "1e3", "", "C"])
    writer.writerow([])
    return out.getvalue()


def _csv_utf8() -> bytes:
    return ("\ufeff" + _csv_text().replace("Laina", "Laïna ☃")).encode()


def _csv_cp1252() -> bytes:
    return _csv_text().replace("Laina", "Laïna – Ö").encode("cp1252")


if __name__ == "__main__":
    for path in write_seeds(Path(sys.argv[1] if len(sys.argv) > 1 else "fuzz/corpus")):
        print(path)
