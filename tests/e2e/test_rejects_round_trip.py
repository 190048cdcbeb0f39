"""The uploader's round trip: fix the highlighted cells of the rejects workbook, upload it again.

Through the CLI with the real isolated reader, DuckDB and the local report writer,
the way a person does it: ingest, open the report with a spreadsheet library, fix
the flagged cells, save, ingest the report.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import openpyxl
import pytest

from devtools.sample import generate_passengers
from domain.rejects import REPORT_ERRORS_COLUMN, REPORT_ROW_COLUMN
from tests.support.cli import ingest_json, isolated_project

pytestmark = pytest.mark.e2e

CONFIG = Path(__file__).resolve().parents[2] / "config" / "datalakep.yaml"
# An append table: no key, so only the rows the report holds may be added again.
VISITS = {
    "load_mode": "append",
    "max_reject_ratio": 0.5,
    "columns": [
        {"name": "visitor", "type": "varchar(32)", "nullable": False},
        {"name": "day", "type": "date", "nullable": False},
        {"name": "paid", "type": "boolean"},
        {"name": "amount", "type": "decimal(8,2)", "min": 0},
    ],
}


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolated_project(tmp_path, monkeypatch, visits=VISITS)


def data_sheet_of_report(
    capsys: pytest.CaptureFixture[str], db: Path, source: Path, loaded: int, rejected: int
) -> tuple[Path, Any]:
    """Ingest ``source``, check its counts; the report's path and its data sheet."""
    code, [result] = ingest_json(capsys, db, source)
    assert (code, result["rows_loaded"], result["rows_rejected"]) == (0, loaded, rejected)
    report = Path(result["rejects_report"])
    assert report.name.startswith(f"{source.name}.")  # foo.xlsx and foo.csv told apart
    book = openpyxl.load_workbook(report)
    [data] = [ws for ws in book.worksheets if ws.title != "summary"]
    return report, data


def fix(report: Path, fixes: dict[tuple[int, str], object]) -> None:
    """Set the (source_row, column) cells of the report's data sheet, as a person would."""
    book = openpyxl.load_workbook(report)
    [data] = [ws for ws in book.worksheets if ws.title != "summary"]
    header = [c.value for c in data[1]]
    for cells in data.iter_rows(min_row=2):
        for column, value in [(c, v) for (r, c), v in fixes.items() if r == cells[0].value]:
            cells[header.index(column)].value = value
    book.save(report)


def test_fixing_the_flagged_cells_loads_exactly_the_fixed_rows_by_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    passengers = generate_passengers("train_data", 40, seed=3).to_pylist()
    passengers[1]["Age"] = "thirty"  # sheet row 3
    passengers[3]["Sex"] = "unknown"  # row 5
    passengers[5]["Fare"] = -5  # row 7: a negative number, below the minimum
    source = tmp_path / "passengers.xlsx"
    book = openpyxl.Workbook()
    book.active.append(list(passengers[0]))
    for passenger in passengers:
        book.active.append(list(passenger.values()))
    book.save(source)
    db = tmp_path / "wh.duckdb"

    report, data = data_sheet_of_report(capsys, db, source, loaded=37, rejected=3)

    assert data.parent.sheetnames == ["summary", "Sheet"]
    header = [c.value for c in data[1]]
    assert header[0] == REPORT_ROW_COLUMN
    assert header[-1] == REPORT_ERRORS_COLUMN
    assert header[1:-1] == list(passengers[0])  # the original header
    fare = [r[header.index("Fare")] for r in data.iter_rows(min_row=2, values_only=True)]
    assert -5 in fare  # a number, not the text "'-5"
    ids = [r[header.index("PassengerId")] for r in data.iter_rows(min_row=2, values_only=True)]
    assert all(isinstance(i, int) for i in ids)

    fix(report, {(3, "Age"): 30, (5, "Sex"): "female", (7, "Fare"): 5})
    code, results = ingest_json(capsys, db, report)

    assert code == 0, results
    # The summary sheet is recognised and set aside, like any ignored sheet.
    [summary] = [r for r in results if r["sheet"] == "summary"]
    assert (summary["status"], summary["table"]) == ("ignored", None)
    [again] = [r for r in results if r["sheet"] != "summary"]
    assert (again["table"], again["rows_loaded"], again["rows_rejected"]) == ("train_data", 3, 0)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM train_data").fetchone() == (40,)
        fixed = con.execute(
            'SELECT "PassengerId", "Age", "Sex", "Fare" FROM train_data '
            'WHERE "PassengerId" IN (?, ?, ?) ORDER BY 1',
            [passengers[i]["PassengerId"] for i in (1, 3, 5)],
        ).fetchall()
    assert [(r[1], r[2], r[3]) for r in fixed] == [
        (Decimal("30.00"), passengers[1]["Sex"], fixed[0][3]),
        (fixed[1][1], "female", fixed[1][3]),
        (fixed[2][1], passengers[5]["Sex"], Decimal("5.0000")),
    ]


def test_an_append_table_gets_only_the_reports_rows_and_csv_reports_are_told_apart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [
        "visitor,day,paid,amount",
        "ann,2026-11-02,true,12.50",
        "bob,2026-11-03,false,-3",
        "cy,2026-11-04,yes,abc",
        "=cmd|' /C calc'!A0,2026-11-05,true,1",
        "dee,2026-11-06,no,7",
    ]
    source = tmp_path / "visits.csv"
    source.write_text("\n".join(lines) + "\n")
    db = tmp_path / "wh.duckdb"

    report, data = data_sheet_of_report(capsys, db, source, loaded=3, rejected=2)

    rows = list(data.iter_rows(min_row=2, values_only=True))
    assert [r[1:5] for r in rows] == [
        ("bob", dt.datetime(2026, 11, 3), False, -3),
        ("cy", dt.datetime(2026, 11, 4), "yes", "abc"),
    ]

    fix(report, {(3, "amount"): 3, (4, "amount"): 4.25})
    code, results = ingest_json(capsys, db, report)

    assert code == 0, results
    loaded = [r for r in results if r["status"] != "ignored"]  # the summary is set aside
    assert [(r["rows_loaded"], r["rows_rejected"]) for r in loaded] == [(2, 0)]
    with duckdb.connect(str(db), read_only=True) as con:
        got = con.execute("SELECT visitor, amount FROM visits ORDER BY visitor").fetchall()
    assert got == [
        ("=cmd|' /C calc'!A0", Decimal("1.00")),
        ("ann", Decimal("12.50")),
        ("bob", Decimal("3.00")),
        ("cy", Decimal("4.25")),
        ("dee", Decimal("7.00")),
    ]
