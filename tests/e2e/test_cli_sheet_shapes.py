"""The CLI on workbooks shaped as people save them: default empty sheets, notes,
ages in fractions of a year, and files that cannot be opened."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import openpyxl
import pytest
import yaml

from entrypoints.cli import main
from tests.e2e.workbooks import kaggle_frame

pytestmark = pytest.mark.e2e

SHIPPED = Path(__file__).parents[2] / "config" / "datalakep.yaml"


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict[str, Any]]]:
    code = main([*args, "--json"])
    lines = capsys.readouterr().out.splitlines()
    return code, [json.loads(line) for line in lines if line.strip()]


def ledger(db: Path) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        query = "SELECT status, table_name, sheets FROM datalakep_load_ledger ORDER BY table_name"
        return con.execute(query).fetchall()


@pytest.fixture
def use_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Run the CLI under the shipped config, changed by ``edit``."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATALAKEP_WAREHOUSE", raising=False)

    def use(edit: Callable[[dict[str, Any]], None] = lambda config: None) -> None:
        config = yaml.safe_load(SHIPPED.read_text())
        edit(config)
        path = tmp_path / "datalakep.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        monkeypatch.setenv("DATALAKEP_CONFIG", str(path))

    return use


def train_workbook(titanic: Path, out: Path, age_of: dict[int, float] | None = None) -> Path:
    """The Kaggle train rows on a sheet, ages replaced for the given PassengerIds,
    beside the empty Sheet2 and Sheet3 Excel adds and a sheet of notes."""
    frame = kaggle_frame(titanic, "train")
    for pid, age in (age_of or {}).items():
        frame.loc[frame["PassengerId"] == pid, "Age"] = age
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Passengers"
    sheet.append(list(frame.columns))
    for record in frame.itertuples(index=False):
        sheet.append([None if v != v else v for v in record])  # NaN is an empty cell
    book.create_sheet("Sheet2")
    book.create_sheet("Sheet3")["C7"].number_format = "0.00"  # formatted, never filled
    notes = book.create_sheet("Notes")
    notes.append(["Passenger list as received from the purser; ages under 1 are in months/12."])
    notes.append(["PassengerId", "Survived"])  # would route to gender_submission if not ignored
    book.save(out)
    return out


def ignore_notes(config: dict[str, Any]) -> None:
    config["routing"].append({"sheet": "Notes*", "ignore": True})


def test_empty_and_ignored_sheets_leave_a_loaded_file_at_exit_0(
    titanic: Path,
    tmp_path: Path,
    use_config: Callable[..., None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    use_config(ignore_notes)
    book = train_workbook(titanic, tmp_path / "train.xlsx")
    db = tmp_path / "wh.duckdb"

    code, lines = run_json(capsys, "ingest", str(book), "--warehouse", f"duckdb:///{db}")

    assert code == 0, lines
    shown = [(x["sheet"], x["status"], x["table"], x["rows_loaded"], x["error"]) for x in lines]
    assert sorted(shown) == [
        ("Notes", "ignored", None, 0, None),
        ("Passengers", "loaded", "train_data", 891, None),
        ("Sheet2", "empty", None, 0, None),
        ("Sheet3", "empty", None, 0, None),
    ]
    assert all(x["error_code"] is None and x["source"] == book.as_uri() for x in lines)
    assert ledger(db) == [("loaded", "train_data", '["Passengers"]')]
    code, lines = run_json(capsys, "validate", str(book))
    assert code == 0
    assert {x["status"] for x in lines} == {"valid", "empty", "ignored"}


def test_an_age_of_0_9167_is_rejected_unless_the_contract_rounds(
    titanic: Path,
    tmp_path: Path,
    use_config: Callable[..., None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    book = train_workbook(titanic, tmp_path / "train.xlsx", {79: 0.9167, 306: 0.1667})

    use_config(ignore_notes)
    code, lines = run_json(capsys, "validate", str(book))
    [sheet] = [x for x in lines if x["sheet"] == "Passengers"]
    # Rows rejected under the threshold: validate exits 0, as ingest would (issue 15).
    assert (code, sheet["status"], sheet["rows_rejected"]) == (0, "invalid", 2)
    too_precise = "has more decimal places than decimal(5,2) allows"
    assert [(r["row"], r["column"], r["reason"], r["message"]) for r in sheet["rejects"]] == [
        (80, "Age", "too_many_decimal_places", f"0.9167 {too_precise}"),
        (307, "Age", "too_many_decimal_places", f"0.1667 {too_precise}"),
    ]

    def round_ages(config: dict[str, Any]) -> None:
        ignore_notes(config)
        for column in config["tables"]["train_data"]["columns"]:
            if column["name"] == "Age":
                column["rounding"] = "half_even"

    use_config(round_ages)
    db = tmp_path / "wh.duckdb"
    code, lines = run_json(capsys, "ingest", str(book), "--warehouse", f"duckdb:///{db}")
    assert code == 0
    [sheet] = [x for x in lines if x["sheet"] == "Passengers"]
    assert (sheet["rows_loaded"], sheet["rows_rejected"]) == (891, 0)
    with duckdb.connect(str(db), read_only=True) as con:
        query = 'SELECT "Age" FROM train_data WHERE "PassengerId" IN (79, 306) ORDER BY 1'
        assert con.execute(query).fetchall() == [(Decimal("0.17"),), (Decimal("0.92"),)]


def test_missing_corrupt_and_good_files_are_named_by_one_uri_form(
    titanic: Path,
    tmp_path: Path,
    use_config: Callable[..., None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    use_config()
    good = tmp_path / "gender_submission.csv"
    good.write_text((titanic / "gender_submission.csv").read_text())
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"this is not a workbook")
    missing = tmp_path / "missing.xlsx"
    db = tmp_path / "wh.duckdb"

    code, lines = run_json(
        capsys, "ingest", "gender_submission.csv", str(broken), str(missing),
        "--warehouse", f"duckdb:///{db}",
    )  # fmt: skip

    assert code == 1
    by_source = {x["source"]: (x["status"], x["error_code"]) for x in lines}
    assert by_source[good.as_uri()] == ("loaded", None)
    assert by_source[missing.as_uri()] == ("failed", "not_found")
    status, error_code = by_source[broken.as_uri()]
    assert status == "failed"
    assert error_code is not None
    assert all("error_code" in x for x in lines)


def test_a_column_name_too_long_for_the_warehouse_stops_start_up(
    tmp_path: Path, use_config: Callable[..., None], capfd: pytest.CaptureFixture[str]
) -> None:
    long_name = "Home port " + "x" * 118  # 128 bytes

    def rename_cabin(config: dict[str, Any]) -> None:
        for column in config["tables"]["train_data"]["columns"]:
            if column["name"] == "Cabin":
                column["name"] = long_name

    use_config(rename_cabin)
    (tmp_path / "never-read.csv").write_text("PassengerId,Survived\n1,0\n")

    code = main(["ingest", "never-read.csv", "--warehouse", f"duckdb:///{tmp_path / 'w.duckdb'}"])

    assert code == 2
    error = capfd.readouterr().err
    assert f"table train_data, column '{long_name}': the name is 128 UTF-8 bytes" in error
    assert not (tmp_path / "w.duckdb").exists()
