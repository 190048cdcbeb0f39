"""Far and odd cells in a sheet parsed in parts: refused before calamine allocates them.

A sheet parsed in parts (``split_sheet_bytes``, set low here) is scanned for its
extent by the parser, in each part's own pass, not by the parent's scan beside
it; every refusal below must be the one the parent's scan gives a small sheet.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from domain.errors import UnreadableFileError
from infrastructure.readers import FileKind, ReaderLimits
from infrastructure.readers.guards.checks import check_extent
from infrastructure.readers.parsers.xlsx_split import (
    Oversized,
    PartPlan,
    SheetSplitter,
    Unsplittable,
)
from tests.integration.hostile.child import read_in_child
from tests.integration.hostile.files import good_workbook, passengers_sheet
from tests.integration.hostile.test_archives_and_xml import assert_refused, assert_survived
from tests.integration.readers.builders import info_for

pytestmark = pytest.mark.integration

_ROWS = 3_200  # data rows 2..3201, about 150 KB of sheet XML
_PART_BYTES = 40_000  # 4 or more parts of it on any number of cores
_SHEET = "xl/worksheets/sheet1.xml"
# Where a cell goes: the first part, a middle one, the last one.
_FIRST, _MIDDLE, _LAST = 3, _ROWS // 2, _ROWS + 1


def _sheet(path: Path, at: int, cell: str) -> Path:
    """Passenger rows 2..3201, ``cell`` (a <c> tag's XML) added to row ``at``."""
    rows = "".join(
        f'<row r="{n}"><c r="A{n}"><v>{n}</v></c><c r="B{n}"><v>1</v></c>'
        + (cell if n == at else "")
        + "</row>"
        for n in range(2, _ROWS + 2)
    )
    return passengers_sheet(path, rows)


_FAR = {
    # name: (row it sits in, the cell, what the refusal says)
    "far row, first part": (_FIRST, '<c r="A50000000"><v>1</v></c>', "50,000,000 rows x 26"),
    "far row, middle part": (_MIDDLE, '<c r="A50000000"><v>1</v></c>', "50,000,000 rows x 26"),
    "far row, last part": (_LAST, '<c r="A50000000"><v>1</v></c>', "50,000,000 rows x 26"),
    "second r, middle part": (
        _MIDDLE,
        f'<c r="C{_MIDDLE}" r="A500000000"><v>1</v></c>',
        "500,000,000 rows x 26",
    ),
    "far column, middle part": (
        _MIDDLE,
        f'<c r="XFD{_MIDDLE}"><v>1</v></c>',
        "3,201 rows x 16,384",
    ),
    "past xfd, last part": (_LAST, f'<c r="ZZZ{_LAST}"><v>1</v></c>', "3,201 rows x 18,278"),
}


def test_far_and_odd_cells_of_a_sheet_in_parts_are_refused_as_a_whole_sheets_are(
    tmp_path: Path,
) -> None:
    files = [
        _sheet(tmp_path / f"{name.replace(' ', '-').replace(',', '')}.xlsx", at, cell)
        for name, (at, cell, _) in _FAR.items()
    ]
    # The parent's scan of a small sheet: what the parts must say too.
    expected = {}
    for name, path in zip(_FAR, files, strict=True):
        with pytest.raises(UnreadableFileError) as caught:
            check_extent(path, info_for(path), FileKind.XLSX, ReaderLimits())
        expected[name] = caught.value.message.split(": ", 1)[1]

    run = read_in_child(*files, good_workbook(tmp_path), limits={"split_sheet_bytes": _PART_BYTES})

    refused = assert_survived(run, hostile=len(files))
    for name, outcome in zip(_FAR, refused, strict=True):
        assert_refused(outcome, "too_many_cells", "worksheet 'Data' spans up to", _FAR[name][2])
        assert outcome.message is not None
        assert outcome.message.split(": ", 1)[1] == expected[name], name


def test_the_parent_leaves_a_sheet_in_parts_to_the_parser(tmp_path: Path) -> None:
    path = _sheet(tmp_path / "far.xlsx", _MIDDLE, '<c r="A50000000"><v>1</v></c>')

    # Nothing raised: the parts' pass scans this sheet (the test above).
    check_extent(path, info_for(path), FileKind.XLSX, ReaderLimits(split_sheet_bytes=_PART_BYTES))


@pytest.mark.parametrize("at", [_FIRST, _MIDDLE, _LAST])
def test_a_far_row_stops_the_part_holding_it_before_its_parse(tmp_path: Path, at: int) -> None:
    path = _sheet(tmp_path / "far.xlsx", at, '<c r="A50000000"><v>1</v></c>')
    splitter = SheetSplitter(path, _SHEET, ReaderLimits().max_cells_per_sheet)
    checked = []

    with pytest.raises(Oversized) as caught:
        for part in splitter.parts(_plan(splitter)):
            refused = part
            with splitter.package(part) as package:
                splitter.check(part, package)
            checked.append(part)

    assert caught.value.extent.rows == 50_000_000
    assert refused.first_row <= at
    assert refused.end_row is None or at < refused.end_row
    assert all(part.end_row is not None and part.end_row <= at for part in checked)


def test_an_odd_cell_sends_the_sheet_back_whole(tmp_path: Path) -> None:
    path = _sheet(tmp_path / "odd.xlsx", _MIDDLE, f'<c r="C{_MIDDLE}" r="A9"><v>1</v></c>')
    splitter = SheetSplitter(path, _SHEET, ReaderLimits().max_cells_per_sheet)

    with pytest.raises(Unsplittable, match="odd cell tag"):
        for part in splitter.parts(_plan(splitter)):
            with splitter.package(part) as package:
                splitter.check(part, package)


def test_a_wide_sheet_within_the_limits_reads_in_parts_as_whole(tmp_path: Path) -> None:
    # Column AZ: 52 columns x 1,048,576 rows would break the budget, so the extent
    # takes the row numbers (a scan of the whole sheet, once); 3,201 rows fit.
    path = _sheet(tmp_path / "wide.xlsx", _MIDDLE, f'<c r="AZ{_MIDDLE}"><v>7</v></c>')
    with zipfile.ZipFile(path) as archive:
        assert archive.getinfo(_SHEET).file_size >= 3 * _PART_BYTES

    whole, parts = (
        read_in_child(path, limits=limits, header_row=_MIDDLE - 1)
        for limits in ({}, {"split_sheet_bytes": _PART_BYTES})
    )

    for run in (whole, parts):
        assert run.exited_normally, run.describe()
        [outcome] = run.outcomes
        assert outcome.ok, outcome
    assert parts.outcomes[0].rows == whole.outcomes[0].rows == {"Data": _ROWS + 2 - _MIDDLE}
    assert parts.outcomes[0].cells == whole.outcomes[0].cells
    assert parts.outcomes[0].headers == whole.outcomes[0].headers
    assert len(whole.outcomes[0].headers["Data"]) == 52


def test_a_wide_sheet_is_scanned_whole_once_then_parsed_in_parts(tmp_path: Path) -> None:
    path = _sheet(tmp_path / "wide.xlsx", _MIDDLE, f'<c r="AZ{_MIDDLE}"><v>7</v></c>')
    splitter = SheetSplitter(path, _SHEET, ReaderLimits().max_cells_per_sheet)

    parts = list(splitter.parts(_plan(splitter)))
    for part in parts:
        with splitter.package(part) as package:
            splitter.check(part, package)

    assert len(parts) >= 3
    assert splitter.proven


def _plan(splitter: SheetSplitter) -> PartPlan:
    """Parts of up to _PART_BYTES, as the reader plans them on two cores."""
    return PartPlan(splitter.inflated_bytes, _PART_BYTES, _PART_BYTES // 16, workers=2)
