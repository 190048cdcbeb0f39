"""Previews of .xlsx files parse a copy cut to the first rows, rendered as the full read."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import fastexcel
import openpyxl
import pytest

from domain.errors import UnreadableFileError
from infrastructure.readers import ReaderLimits
from infrastructure.readers.guards.xlsx_parts import read_xlsx_parts
from infrastructure.readers.parsers.xlsx_head import head_copy
from tests.integration.readers.builders import opened, text_cells, write_xlsx

pytestmark = pytest.mark.integration

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def _long_workbook(path: Path, rows: int) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Long"
    ws.append(["Report"])
    ws.append(["id", "fare"])
    for i in range(rows):
        ws.append([i, i / 3])
    wb.create_sheet("Short").append(["only"])
    wb.save(path)
    return path


def test_the_copy_holds_the_first_rows_and_says_which_sheets_are_whole(tmp_path: Path) -> None:
    path = _long_workbook(tmp_path / "long.xlsx", 1000)
    copy = head_copy(path, 10)
    assert copy is not None
    assert copy.complete == frozenset({"Short"})
    sheet = fastexcel.read_excel(copy.data).load_sheet(
        "Long", header_row=None, skip_rows=0, dtypes="string"
    )
    assert sheet.total_height == 10


def test_a_layout_read_before_gives_the_same_copy(tmp_path: Path) -> None:
    """The parser passes the layout it read on opening; the copy is the one found alone."""
    path = _long_workbook(tmp_path / "long.xlsx", 1000)
    worksheets = read_xlsx_parts(path).worksheets
    assert worksheets is not None

    given, found = head_copy(path, 10, worksheets), head_copy(path, 10)
    assert given is not None
    assert found is not None
    assert given.complete == found.complete
    assert _members(given.data) == _members(found.data)


def _members(package: bytes) -> dict[str, bytes]:
    # Not the bytes of the package: a member's time stamp is the second it was written.
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_prefixed_worksheet_xml_is_cut_and_closed(tmp_path: Path) -> None:
    rows = "".join(
        f'<x:row r="{i}"><x:c r="A{i}" t="inlineStr"><x:is><x:t>v{i}</x:t></x:is></x:c></x:row>'
        for i in range(1, 101)
    )
    path = write_xlsx(tmp_path / "prefixed.xlsx", {"S": ""})
    with zipfile.ZipFile(path) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    parts["xl/worksheets/sheet1.xml"] = (
        f'<x:worksheet xmlns:x="{_MAIN}"><x:sheetData>{rows}</x:sheetData></x:worksheet>'
    ).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    copy = head_copy(path, 5)
    assert copy is not None
    loaded = fastexcel.read_excel(copy.data).load_sheet(
        "S", header_row=None, skip_rows=0, dtypes="string"
    )
    assert loaded.to_arrow().column(0).to_pylist() == ["v1", "v2", "v3", "v4", "v5"]


def test_a_short_preview_of_a_long_sheet_then_the_full_read(tmp_path: Path) -> None:
    with opened(_long_workbook(tmp_path / "long.xlsx", 1000)) as workbook:
        preview = workbook.preview("Long", 3)
        sheet = workbook.read("Long", 2)
        deeper = workbook.preview("Long", 200)
    assert preview.rows == (("Report", None), ("id", "fare"), ("0", "0"))
    assert sheet.header == ("id", "fare")
    assert sheet.num_rows == 1000
    assert sheet.row_numbers[-1].as_py() == 1002
    assert text_cells(sheet).column("c1")[1].as_py() == "0.3333333333333333"
    assert len(deeper.rows) == 200
    assert deeper.rows[199] == ("197", "65.66666666666667")  # exact, like the full read


def test_row_limit_of_a_sheet_longer_than_the_preview_is_checked_on_read(tmp_path: Path) -> None:
    limits = ReaderLimits(max_rows_per_sheet=100)
    with opened(_long_workbook(tmp_path / "long.xlsx", 200), limits=limits) as workbook:
        assert len(workbook.preview("Long", 5).rows) == 5
        with pytest.raises(UnreadableFileError) as caught:
            workbook.read("Long", 2)
    assert caught.value.code == "too_many_rows"
    assert "202" in caught.value.message
