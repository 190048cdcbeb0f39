"""Each guard refuses its file before a parser sees it, naming the file."""

from __future__ import annotations

import zipfile
from pathlib import Path

import openpyxl
import pytest

from domain.errors import UnreadableFileError
from infrastructure.readers import ReaderLimits
from tests.integration.readers.builders import (
    inline,
    ole2_file,
    opened,
    text_cells,
    write_ods_xml,
    write_xlsx,
)

pytestmark = pytest.mark.integration


def _small_xlsx(path: Path) -> Path:
    wb = openpyxl.Workbook()
    wb.active.append(["a", "b"])
    wb.active.append([1, 2])
    wb.save(path)
    return path


def _refused(path: Path, code: str, *, limits: ReaderLimits | None = None) -> UnreadableFileError:
    uri = f"s3://bucket/in/{path.name}"
    with pytest.raises(UnreadableFileError) as caught, opened(path, limits=limits) as workbook:
        for sheet in workbook.sheet_names:  # some failures only show on reading
            workbook.read(sheet, 1)
    error = caught.value
    assert error.code == code, error.message
    assert error.message.startswith(uri)
    assert error.details["source"] == uri
    return error


@pytest.mark.parametrize("name", ["notes.txt", "report.pdf", "data.xlsb", "README"])
def test_unsupported_extensions_are_refused(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("a,b\n1,2\n")
    error = _refused(path, "unsupported_file_type")
    assert ".xlsx" in error.message


def test_a_file_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text("a,b\n" + "1,2\n" * 100)
    error = _refused(path, "file_too_large", limits=ReaderLimits(max_file_bytes=100))
    assert "100" in error.message


def test_random_bytes_named_xlsx_are_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "random.xlsx"
    path.write_bytes(bytes(range(256)) * 10)
    error = _refused(path, "corrupt_workbook")
    assert "not a valid xlsx file" in error.message


def test_an_empty_xlsx_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "empty.xlsx"
    path.write_bytes(b"")
    assert "empty" in _refused(path, "corrupt_workbook").message


def test_a_truncated_zip_is_corrupt(tmp_path: Path) -> None:
    whole = _small_xlsx(tmp_path / "whole.xlsx").read_bytes()
    path = tmp_path / "cut.xlsx"
    path.write_bytes(whole[: len(whole) // 2])
    assert "not a valid xlsx file" in _refused(path, "corrupt_workbook").message


def test_an_encrypted_workbook_is_reported_as_password_protected(tmp_path: Path) -> None:
    path = ole2_file(tmp_path / "secret.xlsx", encrypted=True)
    assert "password-protected" in _refused(path, "encrypted_workbook").message


def test_an_encrypted_xls_is_reported_as_password_protected(tmp_path: Path) -> None:
    path = ole2_file(tmp_path / "secret.xls", encrypted=True)
    assert "password-protected" in _refused(path, "encrypted_workbook").message


def test_an_ole2_file_named_xlsx_is_treated_as_encrypted(tmp_path: Path) -> None:
    path = ole2_file(tmp_path / "legacy.xlsx", encrypted=False)
    assert "OLE2" in _refused(path, "encrypted_workbook").message


def test_a_zip_named_xls_is_corrupt(tmp_path: Path) -> None:
    path = _small_xlsx(tmp_path / "renamed.xls")
    assert "zip container" in _refused(path, "corrupt_workbook").message


def test_an_xlsx_named_ods_is_corrupt(tmp_path: Path) -> None:
    path = _small_xlsx(tmp_path / "renamed.ods")
    assert "content.xml" in _refused(path, "corrupt_workbook").message


def test_an_ods_whose_content_part_is_named_otherwise_is_corrupt(tmp_path: Path) -> None:
    # Found by the fuzzer: "Content.xml" passed a case-blind check, then the extent
    # scan's exact open raised KeyError, which no caller expects.
    source = write_ods_xml(tmp_path / "source.ods", "<table:table table:name='S'/>")
    path = tmp_path / "renamed-part.ods"
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(path, "w") as new:
        for member in old.infolist():
            name = "Content.xml" if member.filename == "content.xml" else member.filename
            new.writestr(name, old.read(member))

    assert "no content.xml" in _refused(path, "corrupt_workbook").message


def test_a_spreadsheet_named_csv_is_not_csv(tmp_path: Path) -> None:
    path = _small_xlsx(tmp_path / "renamed.csv")
    _refused(path, "malformed_csv")


def test_a_highly_compressed_member_is_a_zip_bomb(tmp_path: Path) -> None:
    path = _small_xlsx(tmp_path / "bomb.xlsx")
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/media/zeros.bin", bytes(50 * 1024 * 1024))  # ~1000x
    error = _refused(path, "zip_bomb")
    assert "xl/media/zeros.bin" in error.message
    assert error.details["ratio"] > 200


def test_small_members_are_exempt_from_the_ratio(tmp_path: Path) -> None:
    path = _small_xlsx(tmp_path / "fine.xlsx")
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/media/zeros.bin", bytes(512 * 1024))
    with opened(path) as workbook:
        assert workbook.read(workbook.sheet_names[0], 1).num_rows == 1


def test_too_much_uncompressed_data_is_a_zip_bomb(tmp_path: Path) -> None:
    path = _small_xlsx(tmp_path / "wide.xlsx")
    error = _refused(path, "zip_bomb", limits=ReaderLimits(max_uncompressed_bytes=1000))
    assert "1,000" in error.message


def test_two_far_apart_cells_are_refused_before_calamine_allocates_them(
    tmp_path: Path,
) -> None:
    # calamine would allocate 17 billion cells (550 GB) and abort the process.
    rows = f'<row r="1">{inline("A1", "h")}</row>'
    rows += '<row r="1048576"><c r="XFD1048576"><v>1</v></c></row>'
    path = write_xlsx(tmp_path / "sparse.xlsx", {"Data": rows})
    error = _refused(path, "too_many_cells")
    assert "'Data'" in error.message
    assert "16,384 columns" in error.message


def test_a_wide_but_short_sheet_is_accepted(tmp_path: Path) -> None:
    rows = f'<row r="1">{inline("A1", "h")}<c r="XFD1"><v>1</v></c></row>'
    rows += '<row r="2"><c r="A2"><v>2</v></c></row>'
    with opened(write_xlsx(tmp_path / "wide.xlsx", {"Data": rows})) as workbook:
        sheet = workbook.read("Data", 1)
    assert sheet.num_rows == 1
    assert len(sheet.header) == 16384


def test_repeated_ods_rows_with_a_value_are_refused(tmp_path: Path) -> None:
    body = (
        '<table:table table:name="S"><table:table-row table:number-rows-repeated="1000000">'
        '<table:table-cell table:number-columns-repeated="1000" office:value-type="float"'
        ' office:value="1"><text:p>1</text:p></table:table-cell>'
        "</table:table-row></table:table>"
    )
    error = _refused(write_ods_xml(tmp_path / "bomb.ods", body), "too_many_cells")
    assert "'S'" in error.message


def test_libreoffice_padding_rows_are_not_counted(tmp_path: Path) -> None:
    # LibreOffice pads every sheet to its full size with empty repeated rows.
    body = (
        '<table:table table:name="S"><table:table-row>'
        '<table:table-cell office:value-type="string"><text:p>h</text:p></table:table-cell>'
        '<table:table-cell table:number-columns-repeated="1023"/></table:table-row>'
        '<table:table-row><table:table-cell office:value-type="float" office:value="7">'
        "<text:p>7</text:p></table:table-cell></table:table-row>"
        '<table:table-row table:number-rows-repeated="1048574">'
        '<table:table-cell table:number-columns-repeated="1024"/></table:table-row>'
        "</table:table>"
    )
    with opened(write_ods_xml(tmp_path / "padded.ods", body)) as workbook:
        sheet = workbook.read("S", 1)
    assert sheet.header == ("h",)
    assert text_cells(sheet).column("c0").to_pylist() == ["7"]
    assert sheet.row_numbers.to_pylist() == [2]
