"""pyarrow-backed reading of .csv files, on files written here."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from domain.errors import UnreadableFileError
from domain.sheet import RawSheet
from infrastructure.readers import ReaderLimits
from tests.integration.readers.builders import opened

pytestmark = pytest.mark.integration


def _column(sheet: RawSheet, label: str) -> list[str | None]:
    values: list[str | None] = sheet.cells.column(f"c{sheet.header.index(label)}").to_pylist()
    return values


def _csv(tmp_path: Path, text: str, name: str = "train.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


QUOTED = (
    "Passenger list\n"
    '"exported\nby hand"\n'
    "\n"
    "PassengerId,Name,Note\n"
    '1,"Braund, Mr. Owen Harris","said ""hi"""\n'
    "\n"
    '2,"Cumings, Mrs.\nJohn",\n'
    ",,\n"
    '3,"",NA\n'
    "   \n"
    "4,Heikkinen,NULL\n"
    "\n"
    "\n"
)


def test_the_sheet_is_named_after_the_file(tmp_path: Path) -> None:
    with opened(_csv(tmp_path, "a\n1\n")) as workbook:
        assert workbook.sheet_names == ("train",)


def test_preview_counts_records_not_lines(tmp_path: Path) -> None:
    with opened(_csv(tmp_path, QUOTED)) as workbook:
        preview = workbook.preview("train", 5)
    assert preview.first_row == 1
    assert preview.rows == (
        ("Passenger list",),
        ("exported\nby hand",),
        (),
        ("PassengerId", "Name", "Note"),
        ("1", "Braund, Mr. Owen Harris", 'said "hi"'),
    )


def test_read_below_title_rows_keeps_row_numbers_right(tmp_path: Path) -> None:
    with opened(_csv(tmp_path, QUOTED)) as workbook:
        sheet = workbook.read("train", 4)
    assert sheet.header == ("PassengerId", "Name", "Note")
    assert sheet.header_row == 4
    # 6 is a blank line, 8 is ",,", 10 is whitespace; 12 and 13 trail.
    assert sheet.row_numbers.to_pylist() == [5, 7, 9, 11]
    assert sheet.row_numbers.type == pa.int64()
    assert sheet.cells.column_names == ["c0", "c1", "c2"]
    assert all(t == pa.string() for t in sheet.cells.schema.types)
    assert _column(sheet, "Name") == [
        "Braund, Mr. Owen Harris",
        "Cumings, Mrs.\nJohn",
        None,
        "Heikkinen",
    ]
    # Only the empty field is null: "NA" and "NULL" are values for validation.
    assert _column(sheet, "Note") == ['said "hi"', None, "NA", "NULL"]
    assert sheet.date_1904 is False


def test_a_bom_is_not_part_of_the_first_label(tmp_path: Path) -> None:
    path = _csv(tmp_path, "\ufeffid,name\r\n1,Zoë\r\n2,Łukasz\r\n")
    with opened(path) as workbook:
        assert workbook.preview("train", 1).rows == (("id", "name"),)
        sheet = workbook.read("train", 1)
    assert sheet.header == ("id", "name")
    assert _column(sheet, "name") == ["Zoë", "Łukasz"]
    assert sheet.row_numbers.to_pylist() == [2, 3]


def test_windows_1252_is_the_fallback_encoding(tmp_path: Path) -> None:
    path = _csv(tmp_path, "Prénom,Prix\nJosé,5 €\n", encoding="cp1252")
    with opened(path) as workbook:
        assert workbook.preview("train", 1).rows == (("Prénom", "Prix"),)
        sheet = workbook.read("train", 1)
    assert _column(sheet, "Prénom") == ["José"]
    assert _column(sheet, "Prix") == ["5 €"]


def test_text_in_no_known_encoding_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_bytes(b"a,b\n\x81\xc3,1\n")  # 0x81 is undefined in cp1252 too
    with pytest.raises(UnreadableFileError) as caught, opened(path):
        pass
    assert caught.value.code == "malformed_csv"


def test_header_and_data_widths_may_differ(tmp_path: Path) -> None:
    path = _csv(tmp_path, "a,b,,\n1,2,3\n4,5,6\n")
    with opened(path) as workbook:
        sheet = workbook.read("train", 1)
    # The unlabelled third column holds data and stays; the fourth is dropped.
    assert sheet.header == ("a", "b", "")
    assert sheet.cells.column("c2").to_pylist() == ["3", "6"]


def test_a_ragged_row_is_malformed_naming_the_row(tmp_path: Path) -> None:
    path = _csv(tmp_path, "title\nid,name\n1,a\n\n  \n2,b,extra\n3,c\n")
    with opened(path) as workbook, pytest.raises(UnreadableFileError) as caught:
        workbook.read("train", 2)
    assert caught.value.code == "malformed_csv"
    assert caught.value.message.startswith("s3://bucket/in/train.csv [sheet train]: row 6 ")
    assert caught.value.details["row"] == 6


def test_too_many_rows_is_refused(tmp_path: Path) -> None:
    path = _csv(tmp_path, "id\n" + "".join(f"{i}\n" for i in range(10)))
    limits = ReaderLimits(max_rows_per_sheet=5)
    with opened(path, limits=limits) as workbook, pytest.raises(UnreadableFileError) as caught:
        workbook.read("train", 1)
    assert caught.value.code == "too_many_rows"
    assert caught.value.details["sheet"] == "train"


def test_an_empty_file_is_an_empty_sheet(tmp_path: Path) -> None:
    with opened(_csv(tmp_path, "")) as workbook:
        assert workbook.preview("train", 10).rows == ()
        sheet = workbook.read("train", 1)
    assert sheet.num_rows == 0
    assert sheet.header == ()


def test_a_header_without_data_is_an_empty_sheet(tmp_path: Path) -> None:
    with opened(_csv(tmp_path, "id,name\n\n\n")) as workbook:
        sheet = workbook.read("train", 1)
    assert sheet.header == ("id", "name")
    assert sheet.num_rows == 0


def test_a_long_title_block_fits_pyarrows_first_block(tmp_path: Path) -> None:
    title = "".join(f"note {i}: {'x' * 200}\n" for i in range(10_000))  # ~2 MB
    with opened(_csv(tmp_path, title + "id\n1\n")) as workbook:
        sheet = workbook.read("train", 10_001)
    assert _column(sheet, "id") == ["1"]
    assert sheet.row_numbers.to_pylist() == [10_002]


def test_many_rows_stream_in_several_batches(tmp_path: Path) -> None:
    body = "".join(f'{i},"name, {i}"\n' for i in range(200_000))
    with opened(_csv(tmp_path, "id,name\n" + body)) as workbook:
        sheet = workbook.read("train", 1)
    assert sheet.num_rows == 200_000
    assert sheet.row_numbers[-1].as_py() == 200_001
    assert _column(sheet, "name")[-1] == "name, 199999"
