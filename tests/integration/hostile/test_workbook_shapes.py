"""Odd but well-formed workbooks: macros, too many sheets or rows, far-away and implicit cells."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.errors import UnreadableFileError
from infrastructure.readers import FileKind, ReaderLimits
from infrastructure.readers.guards.checks import check_extent
from tests.integration.hostile.child import read_in_child
from tests.integration.hostile.files import (
    equal_header,
    good_workbook,
    long_csv,
    many_sheets,
    passengers_sheet,
    xlsm_with_macro,
)
from tests.integration.hostile.test_archives_and_xml import assert_refused, assert_survived
from tests.integration.readers.builders import info_for, inline, opened, write_xlsx

pytestmark = pytest.mark.integration

EXCEL_ROWS = 1_048_576


def test_an_xlsm_gives_its_values_and_its_macro_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "macro-ran"
    path = xlsm_with_macro(tmp_path / "macro.xlsm", marker)

    [outcome] = assert_survived(read_in_child(path, good_workbook(tmp_path)), hostile=1)

    assert outcome.ok, outcome
    assert outcome.headers == {"Data": ["PassengerId", "Survived"]}
    assert outcome.cells["Data"] == [["1", "0"], ["2", "1"]]
    assert not marker.exists()


def test_a_thousand_sheets_are_refused_at_the_sheet_limit(tmp_path: Path) -> None:
    path = many_sheets(tmp_path / "sheets.xlsx", 1000)

    [outcome] = assert_survived(read_in_child(path, good_workbook(tmp_path)), hostile=1)

    assert_refused(outcome, "too_many_sheets", "has 1000 sheets, over the limit of 500")


def test_as_many_sheets_as_the_limit_allows_are_all_read(tmp_path: Path) -> None:
    path = many_sheets(tmp_path / "sheets.xlsx", 500)

    [outcome] = assert_survived(read_in_child(path, good_workbook(tmp_path)), hostile=1)

    assert outcome.ok, outcome
    assert len(outcome.rows) == 500, outcome
    assert set(outcome.rows.values()) == {1}


@pytest.mark.parametrize(
    "blank_row",
    [
        None,
        # A blank line sends the reader down its row-numbering path, which
        # used to load the whole file before counting its rows (600 MB here).
        10,
    ],
)
def test_a_csv_past_excels_row_limit_is_refused_at_the_limit(
    tmp_path: Path, blank_row: int | None
) -> None:
    path = long_csv(tmp_path / "long.csv", 16_000_000, blank_row=blank_row)
    assert path.stat().st_size > 150 * 1024 * 1024

    [outcome] = assert_survived(read_in_child(path, good_workbook(tmp_path)), hostile=1)

    assert_refused(
        outcome, "too_many_rows", "more than 1,048,576 rows, over the limit of 1,048,576"
    )
    assert outcome.details == {"source": outcome.uri, "sheet": "long", "limit": EXCEL_ROWS}


def test_an_early_ragged_row_is_reported_without_reading_the_rest(tmp_path: Path) -> None:
    path = long_csv(tmp_path / "ragged.csv", EXCEL_ROWS + 50_000, ragged_row=3)

    [outcome] = assert_survived(read_in_child(path, good_workbook(tmp_path)), hostile=1)

    assert_refused(outcome, "malformed_csv", "[sheet ragged]: row 3 has 4 fields", "have 3")
    assert outcome.details["row"] == 3


_FAR = {
    # calamine takes any 32-bit row: 50M rows x 1 column is a 1.6 GB grid.
    "a50000000": '<row r="50000000"><c r="A50000000"><v>1</v></c></row>',
    "lowercase": '<row r="2"><c r="a500000000"><v>1</v></c></row>',
    "spaced": '<row r = "2"><c r = "A500000000"><v>1</v></c></row>',
    "second r wins": '<row r="2"><c r="A2" r="A500000000"><v>1</v></c></row>',
    "r not first": '<row r="2"><c s="0" r="A500000000"><v>1</v></c></row>',
    "prefixed": '<row r="2"><x:c xmlns:x="urn:x" r="A500000000"><v>1</v></x:c></row>',
    # Cells without r sit after the previous one: the row decides...
    "implicit row": '<row r="500000000"><c><v>1</v></c></row>',
    "self-closed row": '<row r="500000000"/><row><c><v>1</v></c></row>',
    # ... and 16,384 cells without r make a row as wide as XFD.
    "implicit columns": '<row r="2">'
    + "<c><v>1</v></c>" * 16_384
    + '</row><row r="1048576"><c r="A1048576"><v>1</v></c></row>',
    "past xfd": '<row r="2"><c r="ZZZ2"><v>1</v></c></row>',
}


def test_far_away_and_implicit_cells_are_refused_before_calamine_allocates_them(
    tmp_path: Path,
) -> None:
    files = [
        passengers_sheet(tmp_path / f"{name.replace(' ', '-')}.xlsx", rows)
        for name, rows in _FAR.items()
    ]

    refused = assert_survived(read_in_child(*files, good_workbook(tmp_path)), hostile=len(files))

    for name, outcome in zip(_FAR, refused, strict=True):
        assert outcome.code == "too_many_cells", (name, outcome.message)
        assert_refused(outcome, "too_many_cells", "worksheet 'Data' spans up to")
    by_name = dict(zip(_FAR, refused, strict=True))
    assert "50,000,000 rows x 26 columns" in str(by_name["a50000000"].message)
    assert "500,000,000 rows" in str(by_name["implicit row"].message)
    assert "1,048,576 rows x 16,384 columns" in str(by_name["implicit columns"].message)
    assert "past Excel's last column (XFD, 16,384)" in str(by_name["past xfd"].message)


@pytest.mark.parametrize(
    ("name", "spans"),
    [
        ("a50000000", "50,000,000 rows x 26 columns"),
        ("lowercase", "500,000,000 rows x 26 columns"),
        ("spaced", "500,000,000 rows x 26 columns"),
        ("second r wins", "500,000,000 rows x 26 columns"),
        ("r not first", "500,000,000 rows x 26 columns"),
        ("prefixed", "500,000,000 rows x 26 columns"),
        ("implicit row", "500,000,000 rows x 26 columns"),
        ("self-closed row", "500,000,001 rows x 26 columns"),
        ("implicit columns", "1,048,576 rows x 16,384 columns"),
        ("past xfd", "999 rows x 18,278 columns"),
    ],
)
def test_the_extent_scan_alone_names_each_far_or_implicit_cell(
    tmp_path: Path, name: str, spans: str
) -> None:
    # The scan the reader runs beside the parser, run here on its own: each
    # refusal is the scan's, whatever the parser would have done first.
    path = passengers_sheet(tmp_path / "far.xlsx", _FAR[name])
    info = info_for(path)

    with pytest.raises(UnreadableFileError) as caught:
        check_extent(path, info, FileKind.XLSX, ReaderLimits())

    assert caught.value.code == "too_many_cells"
    assert caught.value.message.startswith(f"{info.uri}: worksheet 'Data' spans up to {spans}")


def test_the_extent_scan_lets_usual_sheets_through(tmp_path: Path) -> None:
    cells = "".join(f'<c r="{c}2"><v>1</v></c>' for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    # Other elements whose names start with "c" are no cell tags.
    extras = '<cols><col min="1" max="2" width="9"/></cols><conditionalFormatting sqref="A1"/>'
    files = [
        passengers_sheet(tmp_path / "usual.xlsx", f'<row r="2">{cells}</row>{extras}'),
        # Excel's last row and column, as long as the grid stays in budget.
        passengers_sheet(
            tmp_path / "last-row.xlsx", '<row r="1048576"><c r="Z1048576"><v>1</v></c></row>'
        ),
        passengers_sheet(
            tmp_path / "last-column.xlsx", '<row r="2"><c r="XFD2" s="1" t="n"><v>1</v></c></row>'
        ),
    ]
    for path in files:
        check_extent(path, info_for(path), FileKind.XLSX, ReaderLimits())


def test_a_row_number_past_32_bits_is_refused_whoever_sees_it_first(tmp_path: Path) -> None:
    # calamine wraps the number to 0 and fails on its own; the extent scan,
    # running beside the parser, refuses it too. Either answer names the sheet.
    rows = '<row r="4294967296"><c r="A4294967296"><v>1</v></c></row>'
    path = passengers_sheet(tmp_path / "wrapped.xlsx", rows)

    [outcome] = assert_survived(read_in_child(path, good_workbook(tmp_path)), hostile=1)

    assert outcome.code in ("too_many_cells", "corrupt_workbook"), outcome.message
    assert_refused(outcome, str(outcome.code), "Data")
    with pytest.raises(UnreadableFileError) as caught, opened(path):
        pass  # the scan alone, as the in-process reader runs it before parsing
    assert caught.value.code == "too_many_cells"
    assert "4,294,967,296 rows x 26 columns" in caught.value.message


def test_a_sheet_without_cell_references_reads_like_any_other(tmp_path: Path) -> None:
    # References are optional in the format; positions then follow the order.
    header = inline("A1", "PassengerId").replace(' r="A1"', "") + inline("B1", "Survived").replace(
        ' r="B1"', ""
    )
    rows = "".join(f"<row><c><v>{i}</v></c><c><v>{i % 2}</v></c></row>" for i in range(1, 2001))
    path = write_xlsx(tmp_path / "implicit.xlsx", {"Data": f"<row>{header}</row>{rows}"})

    [outcome] = assert_survived(read_in_child(path, good_workbook(tmp_path)), hostile=1)

    assert outcome.ok, outcome
    assert outcome.rows == {"Data": 2000}, outcome
    assert outcome.cells["Data"][:2] == [["1", "1"], ["2", "0"]]


def test_a_header_of_16384_equal_labels_reads_in_seconds(tmp_path: Path) -> None:
    # fastexcel de-duplicates equal column names in worse than quadratic
    # time: reading this sheet took over an hour (the parser is now given no
    # header row; labels come from the preview).
    path = equal_header(tmp_path / "wide.xlsx", columns=16_384, rows=3)

    [outcome] = assert_survived(read_in_child(path, good_workbook(tmp_path), timeout=60), hostile=1)

    assert outcome.ok, outcome
    assert outcome.rows == {"Wide": 3}, outcome
    assert len(outcome.headers["Wide"]) == 16_384
    assert set(outcome.headers["Wide"]) == {"x"}
    assert outcome.cells["Wide"][0][:3] == ["2", "2", "2"]
