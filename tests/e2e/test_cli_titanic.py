"""The CLI as a user runs it, on workbooks built from the real Kaggle files."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from devtools.sample import main as sample
from entrypoints.cli import main
from tests.e2e.workbooks import write_kaggle

pytestmark = pytest.mark.e2e

EXPECTED = {"train_data": 891, "test_data": 418, "gender_submission": 418}


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().out


def json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def counts(db: Path) -> dict[str, int]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in EXPECTED}  # type: ignore[index]


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Reports and the default warehouse are relative to the working directory.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATALAKEP_WAREHOUSE", raising=False)
    monkeypatch.setenv(
        "DATALAKEP_CONFIG", str(Path(__file__).parents[2] / "config" / "datalakep.yaml")
    )


@pytest.mark.parametrize("fmt", ["xlsx", "ods", "xls", "csv"])
def test_kaggle_files_load_in_every_format(
    fmt: str, titanic: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    title = "Titanic passengers (Kaggle)" if fmt in ("xlsx", "xls") else None
    files = [
        write_kaggle(titanic, name, fmt, inbox, title)
        for name in ("train", "test", "gender_submission")
    ]
    db = tmp_path / "wh.duckdb"

    code, out = run_cli(
        capsys, "ingest", *map(str, files), "--warehouse", f"duckdb:///{db}", "--json"
    )

    assert code == 0, out
    lines = json_lines(out)
    assert {(line["table"], line["status"], line["rows_loaded"]) for line in lines} == {
        (table, "loaded", rows) for table, rows in EXPECTED.items()
    }
    assert all(line["rows_rejected"] == 0 and line["error"] is None for line in lines)
    assert counts(db) == EXPECTED
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute('SELECT count(*) FROM train_data WHERE "Age" IS NULL').fetchone() == (
            177,
        )
        assert con.execute('SELECT count(*) FROM test_data WHERE "Fare" IS NULL').fetchone() == (1,)
        assert con.execute('SELECT max("Fare"), min("Age") FROM train_data').fetchone() == (
            Decimal("512.3292"), Decimal("0.42"),
        )  # fmt: skip
        name = con.execute('SELECT "Name" FROM train_data WHERE "PassengerId" = 2').fetchone()
        assert name == ("Cumings, Mrs. John Bradley (Florence Briggs Thayer)",)


def test_second_run_skips_and_a_changed_file_upserts(
    titanic: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train = write_kaggle(titanic, "train", "xlsx", tmp_path)
    db = f"duckdb:///{tmp_path / 'wh.duckdb'}"
    assert run_cli(capsys, "ingest", str(train), "--warehouse", db)[0] == 0

    code, out = run_cli(capsys, "ingest", str(train), "--warehouse", db, "--json")
    assert code == 0
    assert [line["status"] for line in json_lines(out)] == ["skipped"]

    import openpyxl

    book = openpyxl.load_workbook(train)
    book.active.cell(row=2, column=4, value="Braund, Mr. Owen Harris (renamed)")  # PassengerId 1
    book.save(train)
    code, out = run_cli(capsys, "ingest", str(train), "--warehouse", db, "--json")
    assert [(line["status"], line["rows_loaded"]) for line in json_lines(out)] == [("loaded", 891)]
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM train_data").fetchone() == (891,)
        assert con.execute('SELECT "Name" FROM train_data WHERE "PassengerId" = 1').fetchone() == (
            "Braund, Mr. Owen Harris (renamed)",
        )

    code, out = run_cli(capsys, "history", "--warehouse", db, "--json")
    assert [e["status"] for e in json_lines(out)] == ["loaded", "skipped", "loaded"]


def test_bad_rows_are_reported_and_the_rest_loads(
    titanic: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import openpyxl

    train = write_kaggle(titanic, "train", "xlsx", tmp_path, title="Manifest")
    book = openpyxl.load_workbook(train)
    sheet = book.active
    sheet.cell(row=4, column=6, value="abc")  # Age of PassengerId 1 (header on row 3)
    sheet.cell(row=5, column=5, value='=HYPERLINK("http://x","y")')  # Sex of PassengerId 2
    book.save(train)

    code, out = run_cli(
        capsys, "ingest", str(train), "--warehouse", f"duckdb:///{tmp_path / 'w.duckdb'}", "--json"
    )

    assert code == 0  # rejected rows alone do not fail the run
    [line] = json_lines(out)
    assert (line["status"], line["rows_loaded"], line["rows_rejected"]) == ("loaded", 889, 2)
    report = Path(str(line["rejects_report"]))
    assert report.is_file()
    assert report.suffix == ".xlsx"
    assert report.with_suffix(".csv").is_file()
    csv_text = report.with_suffix(".csv").read_text()
    assert "Passengers,4,Age,abc" in csv_text
    rejected = openpyxl.load_workbook(report)
    cells = [c.value for row in rejected.worksheets[-1].iter_rows() for c in row]
    assert not any(isinstance(v, str) and v.startswith("=") for v in cells)


def test_validate_is_a_dry_run(
    titanic: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train = write_kaggle(titanic, "train", "csv", tmp_path)
    text = train.read_text().replace('1,0,3,"Braund', '1,7,3,"Braund', 1)
    train.write_text(text)

    code, out = run_cli(capsys, "validate", str(train))

    assert code == 0  # as ingest: rows rejected under the table's limit are no failure
    assert "would reject 1 rows and load the other 890" in out
    assert "row 2, Survived: '7' is not one of: 0, 1" in out
    assert not (tmp_path / "data").exists()  # no warehouse, no reports


def test_validate_tells_a_refused_sheet_and_writes_the_report_when_asked(
    titanic: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train = write_kaggle(titanic, "train", "csv", tmp_path)
    lines = train.read_text().splitlines()
    # 100 of 891 rows with Survived=7: over train_data's 10% limit.
    bad = [
        re.sub(r"^(\d+),\d,", r"\1,7,", line) if i <= 100 else line for i, line in enumerate(lines)
    ]
    train.write_text("\n".join(bad) + "\n")

    code, out = run_cli(capsys, "validate", str(train), "--report", str(tmp_path / "check"))

    assert code == 1
    assert "would refuse the sheet" in out
    assert "would reject" not in out.split("would refuse")[0]
    [report] = (tmp_path / "check").glob("train.csv.*.rejects.xlsx")
    assert f"rejects report: {report.absolute()}" in out
    assert not (tmp_path / "data").exists()  # still nothing loaded


def test_unroutable_and_unreadable_files_exit_1_with_reasons(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    odd = tmp_path / "odd.csv"
    odd.write_text("PassengerId,Survived,Colour\n1,0,red\n")
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"this is not a workbook")

    code, out = run_cli(capsys, "ingest", str(odd), str(broken), "--json")

    assert code == 1
    by_file = {Path(str(line["source"])).name: line for line in json_lines(out)}
    assert by_file["odd.csv"]["status"] == "rejected"
    assert "closest table gender_submission" in str(by_file["odd.csv"]["error"])
    assert "extra columns Colour" in str(by_file["odd.csv"]["error"])
    assert by_file["broken.xlsx"]["status"] == "failed"
    assert "broken.xlsx" in str(by_file["broken.xlsx"]["error"])


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["ingest"])
    assert raised.value.code == 2
    assert main(["ingest", "x.csv", "--warehouse", "mysql://nope"]) == 2


def test_init_tables_then_history_as_a_subprocess(tmp_path: Path) -> None:
    env = {**os.environ, "DATALAKEP_WAREHOUSE": f"duckdb:///{tmp_path / 'wh.duckdb'}"}
    done = subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", "init-tables"],
        capture_output=True, text=True, env=env, cwd=Path(__file__).parents[2], check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert [line.split()[0] for line in done.stdout.splitlines()[2:]] == list(EXPECTED)
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:
        tables = con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    assert {r[0] for r in tables} >= {*EXPECTED, "datalakep_load_ledger"}


def test_a_sample_test_data_workbook_ingests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "s.xlsx"
    args = ["--table", "test_data", "--rows", "500", "--out", str(out), "--seed", "3"]
    assert sample(args) == 0
    capsys.readouterr()
    code, text = run_cli(
        capsys, "ingest", str(out), "--json", "--warehouse", f"duckdb:///{tmp_path / 'w.duckdb'}"
    )
    assert code == 0
    [line] = json_lines(text)
    assert (line["table"], line["rows_loaded"]) == ("test_data", 500)
