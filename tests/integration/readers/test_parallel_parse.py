"""A sheet parsed in parts on several threads reads exactly as the same sheet parsed whole.

Every workbook is read twice through the production reader: with the default
limits (these files are far below ``split_sheet_bytes``, so each sheet is parsed
whole) and with ``split_sheet_bytes`` set to one byte, which cuts every sheet
into parts of a row or so. The two RawSheets must be equal column by column,
values and Arrow types, header and row numbers. Each case also says which way
the split read went: joined from parts, or back to the whole parse because a
part could not decide something alone (mixed kinds, odd tags); a spy on the
join records it, so no case passes by quietly never splitting.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
from collections.abc import Callable
from pathlib import Path

import fastexcel
import openpyxl
import pyarrow as pa
import pytest
import xlsxwriter
from openpyxl.utils.datetime import CALENDAR_MAC_1904

from application.ports import LocalFile
from domain.errors import UnreadableFileError
from domain.sheet import RawSheet
from entrypoints.containers import build_reader
from infrastructure.readers.dispatch import FileTypeWorkbookReader
from infrastructure.readers.limits import ReaderLimits
from infrastructure.readers.parsers import excel
from infrastructure.readers.parsers.xlsx_split import PartPlan, SheetSplitter
from tests.integration.readers.builders import info_for, inline, write_xlsx
from tests.integration.readers.test_fidelity_corpus import (
    SHARED,
    VARIANTS,
    _kinds_workbook,
    _plain,
    _with_x15,
)

pytestmark = pytest.mark.integration

WHOLE = ReaderLimits()
IN_PARTS = ReaderLimits(split_sheet_bytes=1)


@pytest.fixture
def joined(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each split read was joined from its parts (True) or parsed whole (False)."""
    calls: list[bool] = []
    real = excel._joined

    def spy(loads: list[excel._PartLoad], header_index: int) -> excel._Typed | None:
        found = real(loads, header_index)
        calls.append(found is not None)
        return found

    original = excel.FastexcelWorkbook._parted_columns

    def parted(
        self: excel.FastexcelWorkbook, sheet: str, header_index: int
    ) -> tuple[int, list[pa.Array]] | None:
        before = len(calls)
        found = original(self, sheet, header_index)
        if len(calls) == before:
            calls.append(False)  # refused before the join: odd tags, a part's own refusal
        return found

    monkeypatch.setattr(excel, "_joined", spy)
    monkeypatch.setattr(excel.FastexcelWorkbook, "_parted_columns", parted)
    return calls


def _sheets(path: Path, limits: ReaderLimits, header_row: int = 1) -> dict[str, RawSheet]:
    info = info_for(path)
    with FileTypeWorkbookReader(limits).open(LocalFile(path, info.size), info) as workbook:
        return {name: workbook.read(name, header_row) for name in workbook.sheet_names}


def _assert_same(path: Path, joined: list[bool], *, header_row: int = 1) -> list[bool]:
    """The split read equals the whole one; returns how each sheet's split read went."""
    whole = _sheets(path, WHOLE, header_row)
    assert joined == [False] * len(joined)  # nothing below the default size is split
    joined.clear()
    parts = _sheets(path, IN_PARTS, header_row)
    assert parts.keys() == whole.keys()
    for name, sheet in whole.items():
        other = parts[name]
        assert other.header == sheet.header, name
        assert other.row_numbers.equals(sheet.row_numbers), name
        assert other.cells.schema == sheet.cells.schema, name
        for column, expected in zip(other.cells.columns, sheet.cells.columns, strict=True):
            assert column.equals(expected), (name, column, expected)
        assert other.date_1904 == sheet.date_1904
    went = list(joined)
    joined.clear()
    return went


# ------------------------------------------------------------ the fidelity corpus and real files


def _pure(path: Path, *, epoch: dt.datetime | None = None) -> Path:
    """Columns of one kind each over a few hundred rows (the typed path)."""
    wb = openpyxl.Workbook()
    if epoch is not None:
        wb.epoch = epoch
    ws = wb.active
    ws.append(["x", "flag", "when", "day", "label"])
    for i in range(1, 120):
        moment = dt.datetime(2021, 1, 1) + dt.timedelta(hours=i)
        day = dt.date(1904, 1, 2) + dt.timedelta(days=i)
        ws.append([i / 7, i % 2 == 0, moment, day, f"  row {i} " if i % 3 else None])
    for row in ws.iter_rows(min_row=2):
        row[3].number_format = "yyyy-mm-dd"
    wb.save(path)
    return path


CORPUS: dict[str, tuple[Callable[[Path], Path], bool]] = {
    # name: (builder, joined from parts)
    "kinds (mixed columns)": (lambda d: _kinds_workbook(d / "kinds.xlsx"), False),
    "kinds 1904": (lambda d: _kinds_workbook(d / "mac.xlsx", epoch=CALENDAR_MAC_1904), False),
    "kinds 1904 x15": (
        lambda d: _with_x15(
            _kinds_workbook(d / "mac.xlsx", epoch=CALENDAR_MAC_1904), d / "mac-x15.xlsx"
        ),
        False,
    ),
    "pure columns": (lambda d: _pure(d / "pure.xlsx"), True),
    "pure columns 1904": (lambda d: _pure(d / "pure.xlsx", epoch=CALENDAR_MAC_1904), True),
    "pure 1904 x15": (
        lambda d: _with_x15(_pure(d / "p.xlsx", epoch=CALENDAR_MAC_1904), d / "p15.xlsx"),
        True,
    ),
    "plain": (lambda d: _plain(d / "plain.xlsx"), True),
    **{
        f"variant {name}": (
            lambda d, make=make: make(_plain(d / "plain.xlsx"), d / "variant.xlsx"),  # type: ignore[misc]
            True,
        )
        for name, make in VARIANTS.items()
    },
}


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_the_corpus_reads_the_same_in_parts(tmp_path: Path, joined: list[bool], case: str) -> None:
    build, from_parts = CORPUS[case]
    went = _assert_same(build(tmp_path), joined)
    assert went
    assert all(w == from_parts for w in went), went


REAL = sorted(p.name for p in SHARED.glob("*.xls[xm]"))


@pytest.mark.parametrize("name", REAL)
def test_the_shared_real_workbooks_read_the_same_in_parts(name: str, joined: list[bool]) -> None:
    _assert_same(SHARED / name, joined)


def test_the_shared_files_are_there() -> None:
    assert len(REAL) >= 3  # sheetjs 1904 and ErrorTypes, calamine 419 and 530


# ------------------------------------------------------------ targeted cases


def _num(ref: str, value: object) -> str:
    return f'<c r="{ref}"><v>{value}</v></c>'


def _err(ref: str, text: str) -> str:
    return f'<c r="{ref}" t="e"><v>{text}</v></c>'


def _row(number: int, *cells: str, prefix: str = "") -> str:
    return f'<{prefix}row r="{number}">{"".join(cells)}</{prefix}row>'


HEADER = _row(1, inline("A1", "id"), inline("B1", "name"), inline("C1", "fare"), inline("D1", "x"))

SHEETS: dict[str, tuple[str, bool]] = {
    # name: (rows, joined from parts)
    "gaps between parts": (
        HEADER
        + _row(2, _num("A2", 1), inline("B2", "a"))
        + _row(40, _num("A40", 2), inline("B40", "b"))
        + _row(41, _num("A41", 3))
        + _row(500, _num("A500", 4), inline("B500", "c"), _num("C500", 1.5)),
        True,
    ),
    "a part whose first columns are empty": (
        HEADER
        + _row(2, _num("A2", 1), inline("B2", "a"))
        + _row(3, _num("C3", 2.25), _num("D3", 7)),
        True,
    ),
    "a column all null in some parts": (
        HEADER
        + "".join(_row(r, _num(f"A{r}", r), _num(f"C{r}", r / 8)) for r in range(2, 9))
        + _row(9, _num("A9", 9), inline("B9", "late"))
        + _row(10, _num("A10", 10)),
        True,
    ),
    "a mixed column in a later part": (
        HEADER
        + "".join(_row(r, _num(f"A{r}", r), _num(f"C{r}", r / 3)) for r in range(2, 9))
        + _row(9, _num("A9", 9), inline("C9", "n/a")),
        False,
    ),
    "booleans among numbers in a later part": (
        HEADER
        + "".join(_row(r, _num(f"A{r}", r)) for r in range(2, 6))
        + _row(6, '<c r="A6" t="b"><v>1</v></c>'),
        False,
    ),
    "error cells in a typed column": (
        HEADER
        + _row(2, _num("A2", 1), _num("C2", 1.25))
        + _row(3, _num("A3", 2), _err("C3", "#DIV/0!"))
        + _row(4, _num("A4", 3), _num("C4", 3), _err("D4", "#N/A"), inline("B4", "x"))
        + _row(5, _num("A5", 4), _err("C5", "#N/A"), inline("D5", "y")),
        True,
    ),
    "whitespace text in a number column": (
        HEADER
        + _row(2, _num("A2", 1))
        + _row(3, inline("A3", "   "))
        + _row(4, _num("A4", 3), inline("B4", " ")),
        True,
    ),
    "rows without r": (
        HEADER + '<row><c r="A2"><v>1</v></c></row><row><c r="A3"><v>2</v></c></row>',
        False,
    ),
    "cells without r": (HEADER + '<row r="2"><c><v>1</v></c><c><v>2</v></c></row>', False),
    "a cell above its part's first row": (
        HEADER + _row(2, _num("A2", 1)) + _row(3, _num("A3", 2)) + _row(4, _num("B2", 5)),
        False,
    ),
    "a comment in sheetData": (
        HEADER + _row(2, _num("A2", 1)) + "<!-- <row r='9'> -->" + _row(3, _num("A3", 2)),
        False,
    ),
    "an empty row element": (HEADER + _row(2, _num("A2", 1)) + '<row r="3"/>', False),
}


@pytest.mark.parametrize("case", sorted(SHEETS))
def test_targeted_sheets_read_the_same_in_parts(
    tmp_path: Path, joined: list[bool], case: str
) -> None:
    rows, from_parts = SHEETS[case]
    path = write_xlsx(tmp_path / "case.xlsx", {"S": rows, "Other": HEADER})
    assert _assert_same(path, joined)[0] is from_parts


def test_a_prefixed_namespace_reads_the_same_in_parts(tmp_path: Path, joined: list[bool]) -> None:
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rows = "".join(
        _row(r, _num(f"A{r}", r), inline(f"B{r}", f"n{r}"), prefix="x:") for r in range(2, 12)
    )
    rows = rows.replace("<c ", "<x:c ").replace("</c>", "</x:c>").replace("<v>", "<x:v>")
    rows = rows.replace("</v>", "</x:v>").replace("<is>", "<x:is>").replace("</is>", "</x:is>")
    rows = rows.replace("<t>", "<x:t>").replace("</t>", "</x:t>")
    sheet = (
        f'<?xml version="1.0" encoding="UTF-8"?><x:worksheet xmlns:x="{main}">'
        f'<x:dimension ref="A1:B11"/><x:sheetData>{rows}</x:sheetData></x:worksheet>'
    )
    path = write_xlsx(tmp_path / "prefixed.xlsx", {"S": ""})
    path = _replace_sheet(path, tmp_path / "x.xlsx", sheet)
    assert _assert_same(path, joined) == [True]


def test_a_header_below_title_rows_reads_the_same_in_parts(
    tmp_path: Path, joined: list[bool]
) -> None:
    rows = _row(1, inline("A1", "Title")) + _row(3, inline("A3", "id"), inline("B3", "v"))
    rows += "".join(_row(r, _num(f"A{r}", r), _num(f"B{r}", r * 2)) for r in range(4, 20))
    path = write_xlsx(tmp_path / "titled.xlsx", {"S": rows})
    assert _assert_same(path, joined, header_row=3) == [True]


def _replace_sheet(source: Path, target: Path, sheet: str) -> Path:
    import zipfile

    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for member in old.infolist():
            data = old.read(member)
            if member.filename == "xl/worksheets/sheet1.xml":
                data = sheet.encode()
            new.writestr(member, data)
    return target


def _shared_strings_workbook(path: Path, rows: int, *, distinct: bool = False) -> Path:
    """Titanic-like rows through xlsxwriter: shared strings, nulls, several thousand rows.

    ``distinct`` makes every name long and different: over 1 MiB of shared strings.
    """
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("train")
    sheet.write_row(0, 0, ["PassengerId", "Name", "Sex", "Age", "Cabin", "Fare"])
    for i in range(1, rows + 1):
        age = None if i % 5 == 0 else (i % 80) + 0.5
        cabin = f"C{i % 97}" if i % 4 == 0 else None
        name = f"Person {i}, Mr. {'x' * 400}" if distinct else f"Person, Mr. {i % 311}"
        sheet.write_row(i, 0, [i, name, ("male", "female")[i % 2], age])
        if cabin is not None:
            sheet.write_string(i, 4, cabin)
        sheet.write_number(i, 5, i / 7)
    book.close()
    return path


def test_a_shared_strings_workbook_reads_the_same_in_many_parts(
    tmp_path: Path, joined: list[bool]
) -> None:
    path = _shared_strings_workbook(tmp_path / "sst.xlsx", 3_000)
    whole = _sheets(path, WHOLE)["train"]
    joined.clear()
    parts = _sheets(path, ReaderLimits(split_sheet_bytes=12_000))["train"]
    assert joined == [True]
    assert parts.cells.equals(whole.cells)
    assert parts.row_numbers.equals(whole.row_numbers)


def test_parts_small_beside_large_shared_strings_are_not_made(
    tmp_path: Path, joined: list[bool]
) -> None:
    """Each part parses the shared strings again: not worth it beside 1 MiB of them."""
    path = _shared_strings_workbook(tmp_path / "sst.xlsx", 3_000, distinct=True)
    whole = _sheets(path, WHOLE)["train"]
    joined.clear()
    parts = _sheets(path, ReaderLimits(split_sheet_bytes=100_000))["train"]
    assert joined == [False]
    assert parts.cells.equals(whole.cells)


def test_the_parser_child_reads_in_parts_too(tmp_path: Path) -> None:
    """The production reader: guards, the forked child (its threads), Arrow handed back."""
    path = _shared_strings_workbook(tmp_path / "sst.xlsx", 2_000)
    info = info_for(path)

    def read(limits: dict[str, object]) -> RawSheet:
        with build_reader(limits).open(LocalFile(path, info.size), info) as workbook:
            return workbook.read("train", 1)

    whole, parts = read({}), read({"split_sheet_bytes": 8_000})
    assert parts.cells.equals(whole.cells)
    assert parts.row_numbers.equals(whole.row_numbers)
    assert whole.cells.num_rows == 2_000


def test_a_sheet_over_the_row_limit_is_refused_alike(tmp_path: Path) -> None:
    rows = HEADER + "".join(_row(r, _num(f"A{r}", r)) for r in range(2, 30))
    path = write_xlsx(tmp_path / "long.xlsx", {"S": rows})
    refusals = []
    for split in (WHOLE.split_sheet_bytes, 1):
        with pytest.raises(UnreadableFileError) as caught:
            _sheets(path, ReaderLimits(max_rows_per_sheet=20, split_sheet_bytes=split))
        refusals.append((caught.value.code, caught.value.message, dict(caught.value.details)))
    assert refusals[0] == refusals[1]
    assert refusals[0][0] == "too_many_rows"


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [
        ("max 100000\n", None),  # no quota: every core of the affinity
        ("150000 100000\n", 1),  # 1.5 CPUs: one whole core, so no parts
        ("200000 100000\n", 2),
        ("not a quota\n", None),
    ],
)
def test_parts_run_on_the_whole_cores_a_cpu_quota_leaves(
    tmp_path: Path, cpu_max: str, expected: int | None
) -> None:
    affinity = len(os.sched_getaffinity(0))
    (tmp_path / "cpu.max").write_text(cpu_max)

    found = excel.cores(tmp_path / "cpu.max")

    assert found == (affinity if expected is None else min(affinity, expected))


def test_without_a_cgroup_cpu_controller_every_core_of_the_affinity_counts(
    tmp_path: Path,
) -> None:
    assert excel.cores(tmp_path / "absent") == len(os.sched_getaffinity(0))


# ------------------------------------------------------------ how the parts are sized


def _sizes(plan: PartPlan) -> list[int]:
    """The part lengths ``plan`` asks for, each cut as asked, until the sheet is cut."""
    sizes: list[int] = []
    while (cut := sum(sizes)) < plan.total:
        sizes.append(min(plan.size(len(sizes), cut), plan.total - cut))
    return sizes


def test_a_million_row_sheet_is_cut_in_parts_small_at_both_ends() -> None:
    mib = 1024 * 1024
    plan = excel.part_plan(464 * 10**6, shared=0, workers=2, split_bytes=32 * mib)
    assert plan is not None

    sizes = _sizes(plan)

    assert max(sizes) == plan.largest == 16 * mib
    # The first parts grow to the largest in workers + 1 steps...
    assert sizes[:3] == [plan.largest // 3, 2 * plan.largest // 3, plan.largest]
    # ...the last ones shrink to a sixteenth of it: whichever thread ends last,
    # the other is idle for a part that small at most.
    assert sizes[-1] <= plan.smallest == plan.largest // 16
    assert sizes[-4:] == sorted(sizes[-4:], reverse=True)
    assert all(size >= plan.smallest for size in sizes[:-1])


@pytest.mark.parametrize(
    ("size", "workers", "shared", "made"),
    [
        (100 * 10**6, 1, 0, False),  # one core: parts only add their own cost
        (100 * 10**6, 2, 0, True),
        (100 * 10**6, 2, 2 * 1024 * 1024, True),  # 16 MiB of shared strings per 16 MiB part
        (100 * 10**6, 2, 3 * 1024 * 1024, False),  # more than the part parsed again per part
    ],
)
def test_parts_are_planned_only_where_they_save(
    size: int, workers: int, shared: int, made: bool
) -> None:
    plan = excel.part_plan(size, shared, workers, split_bytes=32 * 1024 * 1024)

    assert (plan is not None) == made
    if plan is not None:
        # Every part parses the shared strings again: the smallest is large beside them.
        assert plan.smallest >= (8 * shared if shared > 1024 * 1024 else 1)


def test_a_part_package_is_read_by_its_path_and_closed_with_a_view_held(tmp_path: Path) -> None:
    rows = HEADER + "".join(_row(r, _num(f"A{r}", r)) for r in range(2, 400))
    path = write_xlsx(tmp_path / "p.xlsx", {"S": rows})
    splitter = SheetSplitter(path, "xl/worksheets/sheet1.xml", WHOLE.max_cells_per_sheet)
    part = next(splitter.parts(PartPlan(splitter.inflated_bytes, 2_000, 1_000, workers=2)))

    package = splitter.package(part)
    held = memoryview(package.data)
    loaded = fastexcel.read_excel(package.path).load_sheet(0, header_row=None)
    package.close()  # the view keeps the mapping; the memory file goes back to the splitter
    splitter.close()

    assert part.end_row is not None
    assert loaded.height == part.end_row - 1
    assert bytes(held[:2]) == b"PK"


def test_a_memory_file_used_again_holds_only_the_later_part(tmp_path: Path) -> None:
    rows = HEADER + "".join(_row(r, _num(f"A{r}", r)) for r in range(2, 2_000))
    path = write_xlsx(tmp_path / "p.xlsx", {"S": rows})
    splitter = SheetSplitter(path, "xl/worksheets/sheet1.xml", WHOLE.max_cells_per_sheet)
    plan = PartPlan(splitter.inflated_bytes, 20_000, 2_000, workers=1)
    first, second, *_ = list(splitter.parts(plan))
    larger, smaller = sorted((first, second), key=lambda p: p.size, reverse=True)
    assert larger.size > smaller.size

    with splitter.package(larger) as package:
        used = int(package.path.rsplit("/", 1)[1])
    with splitter.package(smaller) as package:
        again = int(package.path.rsplit("/", 1)[1])
        # Longer than this package, the file would end in the earlier one's bytes, and
        # a zip reader, which looks for the directory from the end, would read that one.
        file_size, mapped = os.fstat(again).st_size, len(package.data)
        start = max(smaller.first_row, 2)  # below the header
        loaded = fastexcel.read_excel(package.path).load_sheet(
            0, header_row=None, skip_rows=start - 1
        )
    splitter.close()

    assert again == used
    assert file_size == mapped
    assert smaller.end_row is not None
    assert loaded.to_arrow().column(0).to_pylist() == list(range(start, smaller.end_row))
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(used)  # closed with the splitter


def test_without_a_memory_file_for_the_parts_the_sheet_is_parsed_whole(
    tmp_path: Path, joined: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _shared_strings_workbook(tmp_path / "sst.xlsx", 500)
    whole = _sheets(path, WHOLE)["train"]
    joined.clear()

    def no_memory(name: str, flags: int = 0) -> int:
        raise OSError(errno.ENOMEM, "Cannot allocate memory")

    monkeypatch.setattr(os, "memfd_create", no_memory)
    parts = _sheets(path, IN_PARTS)["train"]

    assert joined == [False]
    assert parts.cells.equals(whole.cells)
