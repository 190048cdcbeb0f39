"""fastexcel-backed reading of .xlsx, .xlsm, .xls and .ods, on files built here."""

from __future__ import annotations

import datetime as dt
import struct
from pathlib import Path

import openpyxl
import pandas as pd
import pyarrow as pa
import pytest
import xlwt
from openpyxl.chart import BarChart, Reference
from openpyxl.utils.datetime import CALENDAR_MAC_1904

from domain.errors import TerminalError, UnreadableFileError
from domain.sheet import RawSheet
from domain.source import ObjectInfo
from infrastructure.readers import ReaderLimits
from infrastructure.readers.parsers.excel import _translated
from tests.integration.readers.builders import inline, opened, text_cells, write_xlsx

pytestmark = pytest.mark.integration


def _column(sheet: RawSheet, label: str) -> list[str | None]:
    """The cells under the first header cell called ``label``."""
    values: list[str | None] = text_cells(sheet).column(f"c{sheet.header.index(label)}").to_pylist()
    return values


def _report_workbook(path: Path) -> Path:
    """Two title rows, a header in row 3 starting at column B, blanks everywhere."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Report"
    ws["B1"] = "Passenger report"
    ws["B2"] = "generated 2020-01-02"
    for col, label in zip("BCDEF", ["PassengerId", "Name", "Age", None, "Age"], strict=True):
        ws[f"{col}3"] = label
    ws.append([None, 1, "Braund, Mr. Owen Harris", 22, None, 22.5])  # row 4
    ws.append([None, 2, "Cumings, Mrs. John", 38.0, "note", None])  # row 5
    # row 6 left empty
    ws["B7"], ws["C7"] = 3, "Heikkinen, Miss. Laina"
    ws["C8"] = "   "  # whitespace only: blank
    ws["B9"], ws["D9"] = 4, 35
    ws["C12"] = " "  # a trailing blank row inside the used range
    ws["H4"] = "  "  # a trailing column with neither label nor data
    wb.save(path)
    return path


def test_preview_rows_are_absolute_spreadsheet_rows(tmp_path: Path) -> None:
    with opened(_report_workbook(tmp_path / "report.xlsx")) as workbook:
        preview = workbook.preview("Report", 4)
    assert preview.first_row == 1
    assert len(preview.rows) == 4
    assert preview.rows[0][:2] == (None, "Passenger report")
    assert preview.rows[2][:6] == (None, "PassengerId", "Name", "Age", None, "Age")
    assert preview.rows[3][1:4] == ("1", "Braund, Mr. Owen Harris", "22")


def test_read_keeps_row_numbers_right_across_blank_rows(tmp_path: Path) -> None:
    with opened(_report_workbook(tmp_path / "report.xlsx")) as workbook:
        workbook.preview("Report", 2)  # a short preview must not truncate the read
        sheet = workbook.read("Report", 3)
    assert sheet.header == ("", "PassengerId", "Name", "Age", "", "Age")
    assert sheet.header_row == 3
    assert sheet.row_numbers.type == pa.int64()
    assert sheet.row_numbers.to_pylist() == [4, 5, 7, 9]
    assert sheet.cells.column_names == ["c0", "c1", "c2", "c3", "c4", "c5"]
    assert all(t in (pa.string(), pa.float64()) for t in sheet.cells.schema.types)
    assert sheet.cells.column("c0").null_count == 4  # column A kept: positions are absolute
    assert _column(sheet, "PassengerId") == ["1", "2", "3", "4"]
    assert _column(sheet, "Age") == ["22", "38", None, "35"]
    assert text_cells(sheet).column("c5").to_pylist() == ["22.5", None, None, None]
    assert text_cells(sheet).column("c4").to_pylist() == [None, "note", None, None]
    assert sheet.source == "s3://bucket/in/report.xlsx"
    assert sheet.date_1904 is False


def test_used_range_far_from_a1_keeps_spreadsheet_columns(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws["D5"], ws["E5"] = "id", "value"
    ws["D6"], ws["E6"] = 1, "x"
    wb.save(tmp_path / "offset.xlsx")
    with opened(tmp_path / "offset.xlsx") as workbook:
        preview = workbook.preview("Sheet", 10)
        sheet = workbook.read("Sheet", 5)
    assert len(preview.rows) == 6
    assert preview.rows[4] == (None, None, None, "id", "value")
    assert sheet.header == ("", "", "", "id", "value")
    assert text_cells(sheet).column("c3").to_pylist() == ["1"]
    assert sheet.row_numbers.to_pylist() == [6]


def test_cells_come_back_as_the_text_validation_expects(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["int", "float", "bool", "date", "datetime", "time", "duration", "text"])
    ws.append(
        [
            22.0,
            28.5,
            True,
            dt.date(2020, 1, 2),
            dt.datetime(2020, 1, 2, 13, 45),
            dt.time(13, 45, 1),
            dt.timedelta(hours=25, minutes=3),
            "Braund, Mr. Owen Harris",
        ]
    )
    ws.append([22, 512.3292, False, None, None, None, None, "  padded  "])
    ws.append([123456789012345, 1 / 3, None, None, None, None, None, None])
    ws.append([-3, 1e-10, None, None, None, None, None, ""])
    wb.save(tmp_path / "types.xlsx")
    with opened(tmp_path / "types.xlsx") as workbook:
        sheet = workbook.read("Sheet", 1)
    assert _column(sheet, "int") == ["22", "22", "123456789012345", "-3"]
    # fastexcel's own text would be "0.333333333" and "0": the reader is exact.
    assert _column(sheet, "float") == ["28.5", "512.3292", "0.3333333333333333", "1e-10"]
    assert _column(sheet, "bool") == ["true", "false", None, None]
    assert _column(sheet, "date") == ["2020-01-02", None, None, None]
    assert _column(sheet, "datetime") == ["2020-01-02 13:45:00", None, None, None]
    assert _column(sheet, "time") == ["13:45:01", None, None, None]
    assert _column(sheet, "duration") == ["25:03:00", None, None, None]
    assert _column(sheet, "text") == ["Braund, Mr. Owen Harris", "  padded  ", None, None]


def test_a_column_mixing_dates_and_text_keeps_the_date_form(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["when"])
    ws.append([dt.date(2020, 1, 2)])
    ws.append(["unknown"])
    ws.append([dt.datetime(2020, 1, 2, 6, 30)])
    wb.save(tmp_path / "mixed.xlsx")
    with opened(tmp_path / "mixed.xlsx") as workbook:
        sheet = workbook.read("Sheet", 1)
    assert _column(sheet, "when") == ["2020-01-02", "unknown", "2020-01-02 06:30:00"]


def test_a_sheet_inference_refuses_falls_back_to_text(tmp_path: Path) -> None:
    # fastexcel cannot type a column holding a duration and text.
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["wait", "amount"])
    ws.append([dt.timedelta(hours=2), 28.5])
    ws.append(["n/a", 3])
    wb.save(tmp_path / "fallback.xlsx")
    with opened(tmp_path / "fallback.xlsx") as workbook:
        sheet = workbook.read("Sheet", 1)
    assert _column(sheet, "amount") == ["28.5", "3"]
    assert _column(sheet, "wait")[1] == "n/a"


def test_1904_workbooks_are_flagged_and_dates_stay_right(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    wb.epoch = CALENDAR_MAC_1904
    wb.active.append(["day"])
    wb.active.append([dt.date(2020, 1, 2)])
    wb.save(tmp_path / "mac.xlsx")
    with opened(tmp_path / "mac.xlsx") as workbook:
        sheet = workbook.read("Sheet", 1)
    assert sheet.date_1904 is True
    assert _column(sheet, "day") == ["2020-01-02"]


def test_hand_written_1904_flag_is_read(tmp_path: Path) -> None:
    rows = f'<row r="1">{inline("A1", "day")}</row><row r="2"><c r="A2" s="1"><v>0</v></c></row>'
    with opened(write_xlsx(tmp_path / "mac.xlsx", {"S": rows}, date_1904=True)) as workbook:
        sheet = workbook.read("S", 1)
    assert sheet.date_1904 is True
    assert _column(sheet, "day") == ["1904-01-01"]


def test_formulas_give_cached_values_and_errors_their_excel_text(tmp_path: Path) -> None:
    rows = (
        f'<row r="1">{inline("A1", "sum")}{inline("B1", "label")}{inline("C1", "ratio")}'
        f"{inline('D1', 'lookup')}</row>"
        '<row r="2"><c r="A2"><f>1+1</f><v>2</v></c>'
        '<c r="B2" t="str"><f>"a"&amp;"b"</f><v>ab</v></c>'
        '<c r="C2" t="e"><f>1/0</f><v>#DIV/0!</v></c>'
        '<c r="D2" t="e"><v>#N/A</v></c></row>'
        '<row r="3"><c r="A3"><v>2.5</v></c><c r="C3"><v>0.5</v></c>'
        '<c r="D3" t="e"><v>#REF!</v></c></row>'
    )
    with opened(write_xlsx(tmp_path / "formulas.xlsx", {"S": rows})) as workbook:
        preview = workbook.preview("S", 5)
        sheet = workbook.read("S", 1)
    assert preview.rows[1] == ("2", "ab", "#DIV/0!", "#N/A")
    assert _column(sheet, "sum") == ["2", "2.5"]
    assert _column(sheet, "label") == ["ab", None]
    assert _column(sheet, "ratio") == ["#DIV/0!", "0.5"]
    assert _column(sheet, "lookup") == ["#N/A", "#REF!"]


def test_formulas_written_without_a_cached_value_read_as_empty(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    wb.active.append(["a", "b"])
    wb.active.append([1, "=A2*2"])  # openpyxl stores no cached result
    wb.save(tmp_path / "nocache.xlsx")
    with opened(tmp_path / "nocache.xlsx") as workbook:
        sheet = workbook.read("Sheet", 1)
    assert _column(sheet, "b") == [None]


def test_xlsm_is_read_for_its_values(tmp_path: Path) -> None:
    _report_workbook(tmp_path / "macro.xlsm")
    with opened(tmp_path / "macro.xlsm") as workbook:
        sheet = workbook.read("Report", 3)
    assert sheet.row_numbers.to_pylist() == [4, 5, 7, 9]


def test_xls_written_by_xlwt(tmp_path: Path) -> None:
    book = xlwt.Workbook()
    ws = book.add_sheet("Legacy")
    ws.write(0, 0, "Old report")
    for col, label in enumerate(["id", "fare", "born", "ok"]):
        ws.write(2, col, label)
    ws.write(3, 0, 1)
    ws.write(3, 1, 7.25)
    ws.write(3, 2, dt.date(1890, 5, 17), xlwt.easyxf(num_format_str="YYYY-MM-DD"))
    ws.write(3, 3, True)
    ws.write(5, 0, 2)
    ws.write(5, 1, 1 / 3)
    book.save(str(tmp_path / "legacy.xls"))
    with opened(tmp_path / "legacy.xls") as workbook:
        assert workbook.sheet_names == ("Legacy",)
        assert workbook.preview("Legacy", 1).rows == (("Old report", None, None, None),)
        sheet = workbook.read("Legacy", 3)
    assert sheet.header == ("id", "fare", "born", "ok")
    assert sheet.row_numbers.to_pylist() == [4, 6]
    assert _column(sheet, "id") == ["1", "2"]
    assert _column(sheet, "fare") == ["7.25", "0.3333333333333333"]
    assert _column(sheet, "born") == ["1890-05-17", None]
    assert _column(sheet, "ok") == ["true", None]
    assert sheet.date_1904 is False


def test_ods_written_by_pandas(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "id": [1, 2, 3],
            "fare": [7.25, None, 1e-10],
            "born": [dt.date(1890, 5, 17), None, None],
            "name": ["Braund, Mr. Owen Harris", "", None],
        }
    )
    with pd.ExcelWriter(tmp_path / "open.ods", engine="odf") as writer:
        frame.to_excel(writer, sheet_name="Open", index=False, startrow=1)
    with opened(tmp_path / "open.ods") as workbook:
        assert workbook.sheet_names == ("Open",)
        sheet = workbook.read("Open", 2)
    assert sheet.header == ("id", "fare", "born", "name")
    assert sheet.row_numbers.to_pylist() == [3, 4, 5]
    assert _column(sheet, "id") == ["1", "2", "3"]
    assert _column(sheet, "fare") == ["7.25", None, "1e-10"]
    assert _column(sheet, "born") == ["1890-05-17", None, None]
    assert _column(sheet, "name") == ["Braund, Mr. Owen Harris", None, None]


def test_hidden_sheets_are_read_and_chart_sheets_are_not_listed(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Data"
    ws.append(["a"])
    ws.append([1])
    chart = BarChart()
    chart.add_data(Reference(ws, min_col=1, min_row=1, max_row=2))
    wb.create_chartsheet("Chart").add_chart(chart)
    hidden = wb.create_sheet("Lookup")
    hidden.sheet_state = "hidden"
    hidden.append(["code"])
    hidden.append(["S"])
    wb.save(tmp_path / "charts.xlsx")
    with opened(tmp_path / "charts.xlsx") as workbook:
        assert workbook.sheet_names == ("Data", "Lookup")
        assert _column(workbook.read("Lookup", 1), "code") == ["S"]


def test_a_header_below_the_sheet_gives_an_empty_sheet(tmp_path: Path) -> None:
    with opened(_report_workbook(tmp_path / "report.xlsx")) as workbook:
        beyond = workbook.read("Report", 40)
        last = workbook.read("Report", 12)
    assert beyond.num_rows == 0
    assert beyond.header == ()
    assert beyond.header_row == 40
    assert last.num_rows == 0
    assert len(last.row_numbers) == 0


def test_an_empty_sheet_previews_and_reads_as_empty(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    wb.create_sheet("Empty")
    wb.active.append(["a"])
    wb.save(tmp_path / "empty.xlsx")
    with opened(tmp_path / "empty.xlsx") as workbook:
        assert workbook.preview("Empty", 10).rows == ()
        assert workbook.read("Empty", 1).num_rows == 0


def test_too_many_rows_is_refused_naming_the_sheet(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    wb.active.title = "Big"
    for i in range(10):
        wb.active.append([i])
    wb.save(tmp_path / "big.xlsx")
    limits = ReaderLimits(max_rows_per_sheet=5)
    with (
        opened(tmp_path / "big.xlsx", limits=limits) as workbook,
        pytest.raises(UnreadableFileError) as caught,
    ):
        workbook.preview("Big", 3)
    assert caught.value.code == "too_many_rows"
    assert caught.value.message.startswith("s3://bucket/in/big.xlsx [sheet Big]")
    assert "10" in caught.value.message
    assert caught.value.details["sheet"] == "Big"


def test_too_many_sheets_is_refused(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    for name in ("b", "c"):
        wb.create_sheet(name)
    wb.save(tmp_path / "sheets.xlsx")
    with (
        pytest.raises(UnreadableFileError) as caught,
        opened(tmp_path / "sheets.xlsx", limits=ReaderLimits(max_sheets=2)),
    ):
        pass
    assert caught.value.code == "too_many_sheets"
    assert "3 sheets" in caught.value.message


def test_a_damaged_sheet_is_a_corrupt_workbook_naming_the_sheet(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "damaged.xlsx", {"Data": '<row r="1"><c r="A1" t="inlineStr"'})
    with opened(path) as workbook, pytest.raises(UnreadableFileError) as caught:
        workbook.preview("Data", 5)
    assert caught.value.code == "corrupt_workbook"
    assert caught.value.message.startswith("s3://bucket/in/damaged.xlsx [sheet Data]")
    assert "Xml error" in caught.value.message or "xml" in caught.value.message.lower()


def test_a_package_python_calamine_refuses_is_a_corrupt_workbook_naming_the_sheet(
    tmp_path: Path,
) -> None:
    # Found by the reader fuzz target: fastexcel opens the package, but no entry's
    # CRC-32 holds (so no cut copy of its head is made) and its directory counts
    # more entries than it holds, which python-calamine takes for a multi-disk zip.
    # Its ZipError escaped the preview as no refusal at all.
    path = write_xlsx(tmp_path / "odd.xlsx", {"S": '<row r="1">' + inline("A1", "id") + "</row>"})
    data = bytearray(path.read_bytes())
    for signature, crc_at in ((b"PK\x03\x04", 14), (b"PK\x01\x02", 16)):
        at = data.find(signature)
        while at >= 0:
            struct.pack_into(
                "<L", data, at + crc_at, struct.unpack_from("<L", data, at + crc_at)[0] ^ 1
            )
            at = data.find(signature, at + 4)
    end = data.rfind(b"PK\x05\x06")
    struct.pack_into("<H", data, end + 10, struct.unpack_from("<H", data, end + 10)[0] + 256)
    path.write_bytes(bytes(data))

    with opened(path) as workbook, pytest.raises(UnreadableFileError) as caught:
        workbook.preview("S", 5)

    assert caught.value.code == "corrupt_workbook"
    assert caught.value.message.startswith("s3://bucket/in/odd.xlsx [sheet S]")
    assert "Multi-disk" in caught.value.message


def test_a_calamine_panic_is_a_corrupt_workbook() -> None:
    # pyo3 makes its PanicException type at run time; an equivalent stands in.
    panic = type("PanicException", (BaseException,), {"__module__": "pyo3_runtime"})
    info = ObjectInfo(uri="s3://bucket/in/x.xlsx", size=0)
    with pytest.raises(UnreadableFileError) as caught, _translated(info, "S"):
        raise panic("invalid range bounds")
    assert caught.value.code == "corrupt_workbook"
    assert "invalid range bounds" in caught.value.message
    with pytest.raises(KeyboardInterrupt), _translated(info, "S"):
        raise KeyboardInterrupt


def test_an_unknown_sheet_is_a_terminal_error(tmp_path: Path) -> None:
    with (
        opened(_report_workbook(tmp_path / "report.xlsx")) as workbook,
        pytest.raises(TerminalError, match="no sheet 'Nope'"),
    ):
        workbook.preview("Nope", 3)


def test_the_workbook_is_released_on_exit(tmp_path: Path) -> None:
    with opened(_report_workbook(tmp_path / "report.xlsx")) as workbook:
        pass
    with pytest.raises(RuntimeError, match="closed"):
        workbook.read("Report", 3)
