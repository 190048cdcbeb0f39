"""Every class of misread workbook, read through the production reader, cell by cell.

Each file is read by the reader the entrypoints build (guards, the parser in
a forked child, Arrow handed back), and every cell is compared with a
reference reader: openpyxl (data_only) for .xlsx, xlrd for .xls, pandas with
odfpy for .ods. Files are built here (openpyxl, xlwt, odfpy, and zip or
BIFF surgery for what no writer library produces) and the shared real
workbooks of ../shared/data/real-workbooks are read as their README says.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import re
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
import xlrd
import xlwt
from odf.opendocument import OpenDocumentSpreadsheet, load
from odf.table import Table, TableCell, TableRow
from odf.text import P
from openpyxl.utils.datetime import CALENDAR_MAC_1904

from application.ports import LocalFile, Workbook
from domain.errors import UnreadableFileError
from entrypoints.containers import build_reader
from tests.integration.readers.builders import info_for, inline, text_cells, write_xlsx

pytestmark = pytest.mark.integration

# Beside the checkout, like the Titanic files (tests/conftest.py); missing is a failure.
SHARED = Path(__file__).resolve().parents[4] / "shared" / "data" / "real-workbooks"
Grid = dict[tuple[int, int], str]  # (1-based row, 0-based column) -> text


# ------------------------------------------------------------ reading


@contextmanager
def _production(path: Path, config: Mapping[str, object]) -> Iterator[Workbook]:
    reader = build_reader(config.get("limits"))  # type: ignore[arg-type]
    info = info_for(path)
    with reader.open(LocalFile(path, info.size), info) as workbook:
        yield workbook


def _read(path: Path, config: Mapping[str, object]) -> dict[str, Grid]:
    """Every sheet read with its header in row 1: header and data cells by position."""
    grids: dict[str, Grid] = {}
    with _production(path, config) as workbook:
        for name in workbook.sheet_names:
            sheet = workbook.read(name, 1)
            grid: Grid = {(1, c): label for c, label in enumerate(sheet.header) if label}
            cells = text_cells(sheet)
            numbers = sheet.row_numbers.to_pylist()
            for c, column in enumerate(cells.columns):
                for row, value in zip(numbers, column.to_pylist(), strict=True):
                    if value is not None:
                        grid[(row, c)] = value
            grids[name] = grid
    return grids


def _text(value: object) -> str | None:
    """The text datalakeP promises for a reference reader's Python value."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, int | float):
        whole = float(value).is_integer() and abs(value) <= 2**53
        return str(int(value)) if whole else repr(float(value))
    if isinstance(value, dt.datetime):
        if value.time() == dt.time():
            return value.date().isoformat()
        millis = value.microsecond // 1000
        text = value.strftime("%Y-%m-%d %H:%M:%S")
        return f"{text}.{millis:03d}" if millis else text
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        millis = value.microsecond // 1000
        text = value.strftime("%H:%M:%S")
        return f"{text}.{millis:03d}" if millis else text
    if isinstance(value, dt.timedelta):
        millis = round(value.total_seconds() * 1000)
        seconds, millis = divmod(millis, 1000)
        text = f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
        return f"{text}.{millis:03d}" if millis else text
    return str(value)


def _grid(rows: Iterator[tuple[int, int, object]]) -> Grid:
    return {(r, c): text for r, c, v in rows if (text := _text(v)) is not None}


def _openpyxl(path: Path) -> dict[str, Grid]:
    book = openpyxl.load_workbook(path, data_only=True)
    return {
        ws.title: _grid(
            (cell.row, cell.column - 1, cell.value) for row in ws.iter_rows() for cell in row
        )
        for ws in book.worksheets
    }


def _xlrd(path: Path) -> dict[str, Grid]:
    book = xlrd.open_workbook(str(path), formatting_info=True, logfile=io.StringIO())

    def value(sheet: xlrd.sheet.Sheet, r: int, c: int) -> object:
        cell = sheet.cell(r, c)
        if cell.ctype == xlrd.XL_CELL_ERROR:
            return xlrd.error_text_from_code[cell.value]
        if cell.ctype == xlrd.XL_CELL_BOOLEAN:
            return bool(cell.value)
        if cell.ctype == xlrd.XL_CELL_DATE:
            xf = book.xf_list[sheet.cell_xf_index(r, c)]
            if "[h]" in book.format_map[xf.format_key].format_str:
                return dt.timedelta(days=cell.value)
            return xlrd.xldate_as_datetime(cell.value, book.datemode)
        return cell.value

    return {
        s.name: _grid((r + 1, c, value(s, r, c)) for r in range(s.nrows) for c in range(s.ncols))
        for s in book.sheets()
    }


def _pandas_ods(path: Path) -> dict[str, Grid]:
    """pandas+odfpy; an .ods time cell is a duration (PT1H2M3S), which pandas gives as a time."""

    def value(v: object) -> object:
        if isinstance(v, dt.time):
            return dt.timedelta(hours=v.hour, minutes=v.minute, seconds=v.second)
        return None if v is pd.NaT else v

    frames = pd.read_excel(path, engine="odf", header=None, sheet_name=None)
    return {
        name: _grid(
            (r + 1, c, value(v))
            for r, row in enumerate(frame.itertuples(index=False))
            for c, v in enumerate(row)
        )
        for name, frame in frames.items()
    }


_ODS_TIME = re.compile(r"PT(\d+)H(\d+)M(\d+(?:\.\d+)?)S")


def _odfpy(path: Path) -> dict[str, Grid]:
    """odfpy's view of each cell's typed value (office:value-type and its value attribute)."""
    doc = load(str(path))
    grids: dict[str, Grid] = {}
    for table in doc.spreadsheet.getElementsByType(Table):
        cells: list[tuple[int, int, object]] = []
        for r, row in enumerate(table.getElementsByType(TableRow), 1):
            for c, cell in enumerate(row.getElementsByType(TableCell)):
                kind = cell.getAttribute("valuetype")
                value: object = None
                if kind == "float":
                    value = float(cell.getAttribute("value"))
                elif kind == "boolean":
                    value = cell.getAttribute("booleanvalue") == "true"
                elif kind == "date":
                    value = dt.datetime.fromisoformat(cell.getAttribute("datevalue"))
                elif kind == "time":
                    h, m, sec = _ODS_TIME.fullmatch(cell.getAttribute("timevalue")).groups()  # type: ignore[union-attr]
                    value = dt.timedelta(hours=int(h), minutes=int(m), seconds=float(sec))
                elif kind == "string":
                    value = "".join(str(p) for p in cell.getElementsByType(P))
                cells.append((r, c, value))
        grids[table.getAttribute("name")] = _grid(iter(cells))
    return grids


def _same(path: Path, reference: Callable[[Path], dict[str, Grid]], config: object) -> None:
    assert _read(path, config) == reference(path)  # type: ignore[arg-type]


# ------------------------------------------------------------ building


def _kinds_workbook(path: Path, *, epoch: dt.datetime | None = None) -> Path:
    """Columns of one kind each, and columns that mix kinds."""
    wb = openpyxl.Workbook()
    if epoch is not None:
        wb.epoch = epoch
    ws = wb.active
    ws.title = "Kinds"
    ws.append(["number", "mixed", "flags", "duration", "day", "moment", "time", "label"])
    rows: list[list[object]] = [
        [62.203872015950715, 62.203872015950715, True, dt.timedelta(hours=25, minutes=3)],
        [1e-10, "text", 1.5, "n/a"],
        [1 / 3, 1 / 3, False, dt.timedelta(minutes=3)],
        [2.0**60, 123456789.123, 2, None],
    ]
    for i, head in enumerate(rows):
        day = dt.date(1904 + i, 1 + i, 2 + i)
        moment = dt.datetime(2020, 1, 2 + i, 13, 45, i)
        ws.append([*head, day, moment, dt.time(8 + i, 30), f"  row {i} "])
    for row in ws.iter_rows(min_row=2):
        row[3].number_format = "[h]:mm:ss"
        row[4].number_format = "yyyy-mm-dd"
    wb.save(path)
    return path


_X15_PR = (
    '<extLst><ext uri="{140A7094-0E35-4892-8432-C4D2E57EDEB5}" '
    'xmlns:x15="http://schemas.microsoft.com/office/spreadsheetml/2010/11/main">'
    '<x15:workbookPr chartTrackingRefBase="1"/></ext></extLst>'
)


def _rewrite(
    source: Path, target: Path, rename: Callable[[str], str], edit: Mapping[str, bytes] = {}
) -> Path:
    """A copy of a zip with its entries renamed and some parts replaced."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as new:
        for member in old.infolist():
            data = edit.get(member.filename, old.read(member))
            new.writestr(rename(member.filename), data)
    return target


def _with_x15(source: Path, target: Path) -> Path:
    with zipfile.ZipFile(source) as archive:
        workbook = archive.read("xl/workbook.xml").decode()
    workbook = workbook.replace("</workbook>", _X15_PR + "</workbook>")
    return _rewrite(source, target, lambda n: n, {"xl/workbook.xml": workbook.encode()})


# ------------------------------------------------------------ 1904


@pytest.mark.parametrize("x15", [False, True], ids=["plain", "x15-extLst"])
def test_1904_dates_of_every_kind(tmp_path: Path, config: dict[str, object], x15: bool) -> None:
    path = _kinds_workbook(tmp_path / "mac.xlsx", epoch=CALENDAR_MAC_1904)
    if x15:
        path = _with_x15(path, tmp_path / "mac-x15.xlsx")
    grids = _read(path, config)
    assert grids == _openpyxl(path)
    assert grids["Kinds"][(2, 4)] == "1904-01-02"
    assert grids["Kinds"][(2, 3)] == "25:03:00"  # durations know no epoch
    with _production(path, config) as workbook:
        assert workbook.read("Kinds", 1).date_1904 is True  # serials held as text


def test_the_shared_1904_workbook_shows_excels_own_text(config: dict[str, object]) -> None:
    path = SHARED / "sheetjs__1904__1904.xlsx"
    sheet = _read(path, config)["Sheet1"]
    assert sheet[(2, 1)] == "1904-01-12" == sheet[(2, 2)]  # C2 is TEXT(B2,"YYYY-MM-DD")
    assert all(sheet[(r, 1)] == sheet[(r, 2)] for r in range(1, 6))
    assert sheet == _openpyxl(path)["Sheet1"]


# ------------------------------------------------------------ mixed columns, booleans, durations


def test_mixed_columns_keep_each_cell_exact(tmp_path: Path, config: dict[str, object]) -> None:
    path = _kinds_workbook(tmp_path / "kinds.xlsx")
    grids = _read(path, config)
    assert grids == _openpyxl(path)
    kinds = grids["Kinds"]
    # openpyxl writes 62.20387201595072 (16 digits): all of them come back, not 62.203872016.
    assert kinds[(2, 1)] == "62.20387201595072"
    assert [kinds[(r, 2)] for r in range(2, 6)] == ["true", "1.5", "false", "2"]
    assert kinds[(2, 3)] == "25:03:00"
    assert kinds[(3, 3)] == "n/a"
    assert kinds[(2, 6)] == "08:30:00"


def test_pure_columns_stay_on_the_typed_path_and_exact(
    tmp_path: Path, config: dict[str, object]
) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["x", "flag", "when"])
    for i in range(1, 300):
        ws.append([i / 7, i % 2 == 0, dt.datetime(2021, 1, 1) + dt.timedelta(hours=i)])
    wb.save(tmp_path / "pure.xlsx")
    _same(tmp_path / "pure.xlsx", _openpyxl, config)


# ------------------------------------------------------------ error cells


def test_error_cells_read_as_their_text_in_every_path(
    tmp_path: Path, config: dict[str, object]
) -> None:
    def error(ref: str, text: str) -> str:
        return f'<c r="{ref}" t="e"><v>{text}</v></c>'

    rows = "".join(
        [
            f'<row r="1">{inline("A1", "only")}{inline("B1", "num")}{inline("C1", "txt")}</row>',
            f'<row r="2">{error("A2", "#NAME?")}<c r="B2"><v>1.25</v></c>'
            f"{error('C2', '#N/A')}</row>",
            f'<row r="3">{error("A3", "#N/A")}{error("B3", "#DIV/0!")}{inline("C3", "x")}</row>',
            f'<row r="4">{error("A4", "#REF!")}<c r="B4"><v>3</v></c>{inline("C4", "y")}</row>',
        ]
    )
    path = write_xlsx(tmp_path / "errors.xlsx", {"S": rows})
    # openpyxl cannot open this minimal package; the XML above is the reference.
    assert _read(path, config) == {
        "S": {
            **{(1, 0): "only", (1, 1): "num", (1, 2): "txt"},
            **{(2, 0): "#NAME?", (2, 1): "1.25", (2, 2): "#N/A"},
            **{(3, 0): "#N/A", (3, 1): "#DIV/0!", (3, 2): "x"},
            **{(4, 0): "#REF!", (4, 1): "3", (4, 2): "y"},
        }
    }


def test_the_shared_error_types_workbook(config: dict[str, object]) -> None:
    path = SHARED / "sheetjs__ErrorTypes.xlsx"
    grids = _read(path, config)
    assert grids["RawErrors"][(6, 0)] == "#NAME?"
    assert grids == _openpyxl(path)


# ------------------------------------------------------------ .ods


def _ods(path: Path) -> Path:
    doc = OpenDocumentSpreadsheet()
    table = Table(name="Times")
    cells: list[list[dict[str, str]]] = [
        [{"valuetype": "string", "text": "day"}, {"valuetype": "string", "text": "at"}],
        [
            {"valuetype": "date", "datevalue": "2021-01-01", "text": "2021-01-01"},
            {"valuetype": "time", "timevalue": "PT10H10M10S", "text": "10:10:10"},
        ],
        [
            {"valuetype": "date", "datevalue": "2021-01-01T10:10:10", "text": "x"},
            {"valuetype": "float", "value": "62.203872015950715", "text": "62.2"},
        ],
        [
            {"valuetype": "boolean", "booleanvalue": "true", "text": "TRUE"},
            {"valuetype": "time", "timevalue": "PT25H02M03S", "text": "25:02:03"},
        ],
    ]
    for row in cells:
        tr = TableRow()
        for spec in row:
            attrs = {k: v for k, v in spec.items() if k != "text"}
            cell = TableCell(**attrs)
            cell.addElement(P(text=spec["text"]))
            tr.addElement(cell)
        table.addElement(tr)
    doc.spreadsheet.addElement(table)
    doc.save(str(path))
    return path


def test_ods_time_cells_read(tmp_path: Path, config: dict[str, object]) -> None:
    path = _ods(tmp_path / "times.ods")
    grids = _read(path, config)
    assert grids == _odfpy(path)
    assert grids["Times"][(2, 1)] == "10:10:10"
    assert grids["Times"][(3, 1)] == repr(62.203872015950715)
    assert grids["Times"][(4, 1)] == "25:02:03"


def test_the_shared_ods_with_durations(config: dict[str, object]) -> None:
    path = SHARED / "calamine__tests__date.ods"
    grids = _read(path, config)
    # pandas+odfpy drop the fraction of PT10H10M10.123456S.
    assert grids["Sheet1"].pop((4, 0)) == "10:10:10.123"
    reference = _pandas_ods(path)
    assert reference["Sheet1"].pop((4, 0)) == "10:10:10"
    assert grids == reference
    assert grids["Sheet1"][(3, 0)] == "10:10:10"


# ------------------------------------------------------------ .xls


def _xls(path: Path, *, other_sheet: int | None = None) -> Path:
    wb = xlwt.Workbook(encoding="cp1252")
    ws = wb.add_sheet("Data")
    for c, label in enumerate(["Day", "ČEZ “quoted” – dash", "n", "flag", "when", "span"]):
        ws.write(0, c, label)
    date = xlwt.easyxf(num_format_str="yyyy-mm-dd hh:mm")
    span = xlwt.easyxf(num_format_str="[h]:mm:ss")
    for r in range(1, 40):
        ws.write(r, 0, f"Région {r} – “{r}”")
        ws.write(r, 1, "Žluťoučký kůň")
        ws.write(r, 2, r / 7)
        ws.write(r, 3, r % 2 == 0)
        ws.write(r, 4, 43000 + r / 4, date)
        ws.write(r, 5, 1 + r / 96, span)
    ws.write(40, 2, xlwt.Formula("1/0"))
    if other_sheet is not None:
        wb.add_sheet("Other1").write(0, 0, "not data")
    wb.save(str(path))
    if other_sheet is not None:
        data = bytearray(path.read_bytes())
        name = b"\x06\x00Other1"  # BOUNDSHEET: name length, 8-bit flag, name
        at = data.find(name)
        assert at > 0
        data[at - 1] = other_sheet  # the sheet type byte before it
        path.write_bytes(bytes(data))
    return path


def test_xls_text_in_utf16_and_code_pages(tmp_path: Path, config: dict[str, object]) -> None:
    path = _xls(tmp_path / "legacy.xls")
    grids = _read(path, config)
    assert grids == _xlrd(path)
    assert grids["Data"][(1, 1)] == "ČEZ “quoted” – dash"


@pytest.mark.parametrize("sheet_type", [0x01, 0x02, 0x06], ids=["macro", "chart", "vba"])
def test_xls_chart_and_macro_sheets_are_not_listed(
    tmp_path: Path, config: dict[str, object], sheet_type: int
) -> None:
    path = _xls(tmp_path / "charted.xls", other_sheet=sheet_type)
    with _production(path, config) as workbook:
        assert workbook.sheet_names == ("Data",)


def test_the_shared_xls_files(config: dict[str, object]) -> None:
    chart = SHARED / "calamine__tests__xls_cross_sheet_chart.xls"
    grids = _read(chart, config)
    assert grids["Report"][(1, 0)] == "HEADER TEXT A1"
    assert grids["Report"][(6, 0)] == "LABEL A6"
    assert grids == _xlrd(chart)
    utf16 = SHARED / "fastexcel__tests__fixtures__null-bytes-in-columns-names.xls"
    grids = _read(utf16, config)
    assert grids["Coefficients RD V2"][(5, 0)] == "Day"
    assert grids == _xlrd(utf16)


# ------------------------------------------------------------ package variants


def _plain(path: Path) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Data"
    ws.append(["id", "name", "fare"])
    for i in range(1, 30):
        ws.append([i, f"name {i}", i / 3])
    wb.save(path)
    return path


def _relocated(source: Path, target: Path, folder: str) -> Path:
    """The workbook part and its folder moved from xl/ to ``folder`` (may be the root)."""
    prefix = f"{folder}/" if folder else ""
    with zipfile.ZipFile(source) as archive:
        rels = archive.read("_rels/.rels").decode()
    rels = rels.replace('Target="/xl/workbook.xml"', f'Target="/{prefix}workbook.xml"')
    rels = rels.replace('Target="xl/workbook.xml"', f'Target="{prefix}workbook.xml"')
    return _rewrite(
        source,
        target,
        lambda n: prefix + n[3:] if n.startswith("xl/") else n,
        {"_rels/.rels": rels.encode()},
    )


VARIANTS: dict[str, Callable[[Path, Path], Path]] = {
    "SharedStrings": lambda s, t: _rewrite(
        s, t, lambda n: "xl/SharedStrings.xml" if n == "xl/sharedStrings.xml" else n
    ),
    "backslashes": lambda s, t: _rewrite(s, t, lambda n: n.replace("/", "\\")),
    "upper-case": lambda s, t: _rewrite(s, t, lambda n: n.upper() if n.startswith("xl/") else n),
    "other-folder": lambda s, t: _relocated(s, t, "book"),
    "root": lambda s, t: _relocated(s, t, ""),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_package_variants_read_like_the_canonical_file(
    tmp_path: Path, config: dict[str, object], variant: str
) -> None:
    canonical = _plain(tmp_path / "plain.xlsx")
    path = VARIANTS[variant](canonical, tmp_path / f"{variant}.xlsx")
    assert _read(path, config) == _openpyxl(canonical)


def test_the_guards_find_the_sheets_of_a_variant(tmp_path: Path, config: dict[str, object]) -> None:
    far = f'<row r="1">{inline("A1", "a")}</row><row r="900000"><c r="ZZ900000"><v>1</v></c></row>'
    canonical = write_xlsx(tmp_path / "far.xlsx", {"S": far})
    path = VARIANTS["backslashes"](canonical, tmp_path / "far-backslashes.xlsx")
    with pytest.raises(UnreadableFileError) as caught:
        _read(path, config)
    assert caught.value.code == "too_many_cells"


def test_the_shared_package_variants(tmp_path: Path, config: dict[str, object]) -> None:
    assert _read(SHARED / "calamine__tests__issue_419.xlsx", config) == {
        "Sheet1": {(1, 0): "Hello"}
    }
    path = SHARED / "calamine__tests__issue_530.xlsx"
    grids = _read(path, config)
    [sheet] = grids.values()
    assert sheet[(1, 0)] == "报表导出人："
    # openpyxl cannot open it (backslash entries): the same package with "/" is the reference.
    slashes = _rewrite(path, tmp_path / "530.xlsx", lambda n: n.replace("\\", "/"))
    assert grids == _openpyxl(slashes)


def test_a_canonical_package_is_handed_over_as_it_is(tmp_path: Path) -> None:
    from infrastructure.readers.guards.xlsx_parts import canonical_copy

    assert canonical_copy(_plain(tmp_path / "plain.xlsx")) is None
    assert canonical_copy(VARIANTS["backslashes"](tmp_path / "plain.xlsx", tmp_path / "b.xlsx"))
