from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from domain.rejects import (
    REPORT_ERRORS_COLUMN,
    REPORT_ROW_COLUMN,
    CellReject,
    RejectedRow,
    RejectReason,
    RejectsReport,
    SheetRejects,
)
from infrastructure.reports import local
from infrastructure.reports.local import (
    CSV_COLUMNS,
    MAX_DATA_ROWS,
    LocalRejectsReportWriter,
    safe_file_name,
)
from infrastructure.reports.workbook import typed_value
from tests.fakes.reports import InMemoryRejectsReportWriter

pytestmark = pytest.mark.integration

HEADER = ("PassengerId", "Name", "Age", "Fare")
BAD_FILL = "FFFFC7CE"


def _reject(
    sheet: str, row: int, column: str, position: int, value: str | None, reason: RejectReason
) -> CellReject:
    return CellReject(
        sheet=sheet,
        row=row,
        column=column,
        position=position,
        value=value,
        reason=reason,
        message=f"{reason.value} ({value!r})",
    )


def _report() -> RejectsReport:
    age = _reject("train", 3, "Age", 2, '=HYPERLINK("http://x","y")', RejectReason.TYPE)
    fare = _reject("train", 3, "Fare", 3, "@SUM(1)", RejectReason.TYPE)
    fare_min = _reject("train", 3, "Fare", 3, "@SUM(1)", RejectReason.BELOW_MIN)
    pid = _reject("train", 7, "PassengerId", 0, "+1", RejectReason.DUPLICATE_KEY)
    name = _reject("train", 9, "Name", 1, None, RejectReason.NULL)
    train = SheetRejects(
        sheet="train",
        table="train_data",
        header=HEADER,
        header_row=1,
        rows=(
            RejectedRow(
                row=3,
                values=("2", "Cumings, Mrs. John", age.value, fare.value),
                problems=(age, fare, fare_min),
            ),
            RejectedRow(
                row=7, values=("+1", "Heikkinen, Miss. Laina", "26", "-3"), problems=(pid,)
            ),
            RejectedRow(row=9, values=("4", None, "35", "53.1"), problems=(name,)),
        ),
    )
    # A title Excel would refuse, and a whole-sheet refusal with no rows.
    odd = SheetRejects(
        sheet="Q1/Q2: [draft]*? with a very long name indeed",
        table=None,
        header=("a", "b"),
        header_row=2,
        rows=(),
        sheet_error="no contract matches the header (a, b)",
        load_id="ledger-2",
    )
    return RejectsReport(
        source_uri="s3://bucket/incoming/train.xlsx",
        source_version="v-123",
        load_id="load-42",
        sheets=(train, odd),
    )


def _fill(cell: Any) -> str | None:
    if cell.fill is None or cell.fill.fill_type != "solid":
        return None
    return str(cell.fill.start_color.rgb)


@pytest.fixture
def written(tmp_path: Path) -> tuple[Path, Path]:
    where = LocalRejectsReportWriter(tmp_path / "reports").write(_report())
    xlsx = Path(where)
    assert xlsx == (tmp_path / "reports" / "train.xlsx.load-42.rejects.xlsx").absolute()
    return xlsx, xlsx.with_suffix(".csv")


def test_the_workbook_shows_each_rejected_row_with_its_bad_cells(
    written: tuple[Path, Path],
) -> None:
    book = openpyxl.load_workbook(written[0])
    assert book.sheetnames == ["summary", "train", "Q1_Q2_ _draft___ with a very lo"]
    ws = book["train"]
    assert ws.freeze_panes == "A2"
    rows = [[c.value for c in r] for r in ws.iter_rows()]
    assert rows[0] == [REPORT_ROW_COLUMN, *HEADER, REPORT_ERRORS_COLUMN]
    assert [r[0] for r in rows[1:]] == [3, 7, 9]
    # Typed as read: numbers stay numbers; formula text stays as written, neutralised
    # by Excel's quote prefix so that a fixed report loads the text verbatim.
    assert rows[1][1:5] == [2, "Cumings, Mrs. John", '=HYPERLINK("http://x","y")', "@SUM(1)"]
    assert rows[2][1:5] == ["+1", "Heikkinen, Miss. Laina", 26, -3]
    assert ws["D2"].quotePrefix
    assert ws["E2"].quotePrefix
    assert not ws["B3"].quotePrefix
    assert not ws["E3"].quotePrefix
    assert rows[3][2] is None
    assert rows[1][5] == (
        'Age: invalid_type (\'=HYPERLINK("http://x","y")\'); '
        "Fare: invalid_type ('@SUM(1)'); Fare: below_minimum ('@SUM(1)')"
    )
    assert rows[2][5] == "PassengerId: duplicate_key ('+1')"

    # Nothing the source supplied may reach Excel as a formula or an error value.
    for row in ws.iter_rows(min_row=2, min_col=2):
        for cell in row:
            assert cell.data_type in {"s", "n"}
            if isinstance(cell.value, str) and cell.value[:1] in "=+-@":
                assert cell.data_type == "s"
                assert cell.quotePrefix or cell.value == "+1"

    bad = {(3, "D"), (3, "E"), (7, "B"), (9, "C")}
    for row_cells in ws.iter_rows(min_row=2):
        source_row = row_cells[0].value
        for cell in row_cells[1:5]:
            flagged = (source_row, cell.column_letter) in bad
            assert (_fill(cell) == BAD_FILL) is flagged, (source_row, cell.coordinate)
            assert (cell.comment is not None) is flagged, (source_row, cell.coordinate)
    assert ws["D2"].comment.text == 'invalid_type (\'=HYPERLINK("http://x","y")\')'
    assert ws["E2"].comment.text == "invalid_type ('@SUM(1)')\nbelow_minimum ('@SUM(1)')"
    assert ws["C4"].comment.text == "null_not_allowed (None)"
    assert ws["E2"].comment.author == "datalakeP"


def test_the_summary_lists_the_load_and_each_sheet(written: tuple[Path, Path]) -> None:
    ws = openpyxl.load_workbook(written[0])["summary"]
    rows = [[c.value for c in r] for r in ws.iter_rows()]
    assert rows[0][:2] == ["Source", "s3://bucket/incoming/train.xlsx"]
    assert rows[1][:2] == ["Version", "v-123"]
    assert rows[2][:2] == ["Report id", "load-42"]
    assert rows[3][:2] == ["Rejected rows", 3]
    table = [r for r in rows[5:] if any(v is not None for v in r)]
    assert table[0] == [
        "Sheet",
        "Report sheet",
        "Table",
        "Header row",
        "Rejected rows",
        "Sheet error",
        "Note",
        "Load id",  # the ledger row of the sheet's load or refusal
    ]
    assert table[1] == ["train", "train", "train_data", 1, 3, None, None, None]
    assert table[2] == [
        "Q1/Q2: [draft]*? with a very long name indeed",
        "Q1_Q2_ _draft___ with a very lo",
        None,
        2,
        0,
        "no contract matches the header (a, b)",
        None,
        "ledger-2",
    ]


def test_a_refused_sheet_still_shows_its_header(written: tuple[Path, Path]) -> None:
    ws = openpyxl.load_workbook(written[0])["Q1_Q2_ _draft___ with a very lo"]
    assert [[c.value for c in r] for r in ws.iter_rows()] == [
        [REPORT_ROW_COLUMN, "a", "b", REPORT_ERRORS_COLUMN]
    ]


def test_the_csv_has_one_line_per_problem(written: tuple[Path, Path]) -> None:
    raw = written[1].read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    with written[1].open(encoding="utf-8", newline="") as handle:
        lines = list(csv.reader(handle))
    source = "s3://bucket/incoming/train.xlsx"
    assert lines[0] == list(CSV_COLUMNS)
    assert lines[1:] == [
        [source, "train", "3", "Age", "'=HYPERLINK(\"http://x\",\"y\")", "invalid_type",
         "invalid_type ('=HYPERLINK(\"http://x\",\"y\")')"],
        [source, "train", "3", "Fare", "'@SUM(1)", "invalid_type", "invalid_type ('@SUM(1)')"],
        [source, "train", "3", "Fare", "'@SUM(1)", "below_minimum", "below_minimum ('@SUM(1)')"],
        [source, "train", "7", "PassengerId", "+1", "duplicate_key", "duplicate_key ('+1')"],
        [source, "train", "9", "Name", "", "null_not_allowed", "null_not_allowed (None)"],
        [source, "Q1/Q2: [draft]*? with a very long name indeed", "", "", "", "sheet_error",
         "no contract matches the header (a, b)"],
    ]  # fmt: skip


def test_rewriting_the_same_load_replaces_the_files_and_leaves_no_debris(tmp_path: Path) -> None:
    writer = LocalRejectsReportWriter(tmp_path)
    writer.write(_report())
    writer.write(_report())
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "train.xlsx.load-42.rejects.csv",
        "train.xlsx.load-42.rejects.xlsx",
    ]


def test_hostile_text_is_kept_readable(tmp_path: Path) -> None:
    # Control characters are illegal in xlsx XML; "#N/A" must stay text, not
    # become an error value; a ragged row wider than the header is shown whole.
    problem = _reject("s", 2, "b", 3, "x", RejectReason.TOO_LONG)
    sheet = SheetRejects(
        sheet="History",
        table="t",
        header=("a", "b"),
        header_row=1,
        rows=(RejectedRow(row=2, values=("bell\x07", "#N/A", "extra"), problems=(problem,)),),
    )
    report = RejectsReport("../../etc/pass wd", "v", "../id 1", (sheet,))
    xlsx = Path(LocalRejectsReportWriter(tmp_path).write(report))
    assert xlsx.name == "pass_wd._id_1.rejects.xlsx"
    book = openpyxl.load_workbook(xlsx)
    assert book.sheetnames == ["summary", "History (2)"]
    ws = book["History (2)"]
    assert [c.value for c in ws[1]] == [
        REPORT_ROW_COLUMN,
        "a",
        "b",
        None,
        None,
        REPORT_ERRORS_COLUMN,
    ]
    assert [c.value for c in ws[2]][:5] == [2, "bell\\x07", "#N/A", "extra", None]
    assert ws["C2"].data_type == "s"
    assert _fill(ws["E2"]) == BAD_FILL


@pytest.mark.parametrize(
    ("uri", "stem"),
    [
        ("s3://bucket/in/Q1 sales.xlsx", "Q1_sales.xlsx"),
        ("C:\\Users\\me\\train.csv", "train.csv"),
        ("s3://bucket/in/train.xlsx", "train.xlsx"),
        ("train", "train"),
        (".hidden.xlsx", "hidden.xlsx"),
        ("s3://bucket/in/", "in"),
        ("s3://b/..", "source"),
        ("s3://b/été.xlsx", "_t_.xlsx"),
    ],
)
def test_the_file_name_is_safe(uri: str, stem: str) -> None:
    assert safe_file_name(uri) == stem


def test_in_memory_writer_keeps_the_reports() -> None:
    writer = InMemoryRejectsReportWriter()
    report = _report()
    assert writer.write(report) == "memory://rejects/load-42"
    assert writer.reports == [report]


def test_rows_beyond_excel_limit_are_left_to_the_csv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert MAX_DATA_ROWS == 1_048_576 - 1  # Excel's rows, less our header
    monkeypatch.setattr(local, "MAX_DATA_ROWS", 2)
    xlsx = Path(LocalRejectsReportWriter(tmp_path).write(_report()))
    book = openpyxl.load_workbook(xlsx)
    assert [c.value for c in book["train"]["A"]] == [REPORT_ROW_COLUMN, 3, 7]
    assert book["summary"]["G7"].value == (
        "only the first 2 rows are shown here; the CSV lists every problem"
    )
    with xlsx.with_suffix(".csv").open(encoding="utf-8") as handle:
        assert len(list(csv.reader(handle))) == 1 + 5 + 1


@pytest.mark.parametrize(
    ("text", "typed"),
    [
        ("22", 22),
        ("-5", -5),
        ("0.9167", 0.9167),
        ("1e-10", 1e-10),
        ("true", True),
        ("2020-01-02", dt.date(2020, 1, 2)),
        ("2020-01-02 13:45:00", dt.datetime(2020, 1, 2, 13, 45)),
        # No typed twin: text stays text.
        ("007", None),
        ("22.0", None),
        ("7.250", None),
        ("-0", None),
        ("-0.0", None),
        ("nan", None),
        ("inf", None),
        ("1_000", None),
        ("True", None),
        ("2020-02-30", None),
        ("9007199254740993", None),  # past 2**53: a double would change it
    ],
)
def test_a_cell_is_typed_only_when_it_reads_back_as_the_same_text(text: str, typed: object) -> None:
    assert typed_value(text) == typed
    assert type(typed_value(text)) is type(typed)
