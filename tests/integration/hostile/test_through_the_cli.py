"""Hostile names, sizes and formulas, through the whole use case into DuckDB via the CLI.

The CLI builds everything from ``entrypoints.containers.cli_container``: the
isolated reader, routing, validation, the DuckDB warehouse and the local
rejects report.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import duckdb
import openpyxl
import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest

from devtools.sample import TRAIN_COLUMNS, generate_passengers, write_workbook
from tests.integration.readers.builders import inline, write_xlsx
from tests.support.cli import ingest_json, isolated_project

pytestmark = pytest.mark.integration

CONFIG = Path(__file__).resolve().parents[3] / "config" / "datalakep.yaml"
INJECTION = 'x"; DROP TABLE t;--'
HYPERLINK = '=HYPERLINK("http://evil","x")'
EXCEL_CELL_CHARS = 32_767
# A table whose column names are SQL keywords and an injection attempt; the
# contract is what makes them identifiers, and they are always quoted.
NOTES = {
    "primary_key": ["id"],
    "columns": [
        {"name": "id", "type": "integer", "nullable": False},
        {"name": "select", "type": "varchar(16)"},
        {"name": "from", "type": "varchar(16)"},
        {"name": "table", "type": "varchar(16)"},
        {"name": INJECTION, "type": "varchar(32)"},
        {"name": "body", "type": "varchar(65535)"},
        {"name": "label", "type": "varchar(256)"},
    ],
}
NOTES_HEADER = ["id", "select", "from", "table", INJECTION, "body", "label"]


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolated_project(tmp_path, monkeypatch, notes=NOTES)


def ingest(
    capsys: pytest.CaptureFixture[str], db: Path, *files: Path
) -> tuple[int, dict[str, list[dict[str, Any]]]]:
    """Exit code and the JSON lines per file name."""
    code, results = ingest_json(capsys, db, *files)
    by_file: dict[str, list[dict[str, Any]]] = {}
    for result in results:
        by_file.setdefault(Path(str(result["source"])).name, []).append(result)
    return code, by_file


def canary(db: Path) -> None:
    """A table named t, for the injection attempts to aim at."""
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE t (v INTEGER)")
        con.execute("INSERT INTO t VALUES (42)")


def canary_alive(db: Path) -> bool:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("SELECT v FROM t").fetchall() == [(42,)]


def report_rows(result: dict[str, Any]) -> list[dict[str, str]]:
    with Path(str(result["rejects_report"])).with_suffix(".csv").open(newline="") as f:
        return list(csv.DictReader(f))


def write_notes(path: Path, rows: list[list[object]]) -> Path:
    if path.suffix == ".csv":
        columns = list(zip(*rows, strict=True))
        table = pa.table(
            {f"c{i}": pa.array([str(v) for v in col]) for i, col in enumerate(columns)}
        )
        # Header written by hand: pyarrow would not repeat the names given.
        with path.open("w", newline="") as out:
            csv.writer(out).writerow(NOTES_HEADER)
        with path.open("ab") as out:
            pa_csv.write_csv(table, out, pa_csv.WriteOptions(include_header=False))
        return path
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(NOTES_HEADER)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_keyword_and_injection_column_names_are_only_ever_quoted_identifiers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    db = tmp_path / "wh.duckdb"
    canary(db)
    rows: list[list[object]] = [
        [i, "s", "f", "t", "'; DELETE FROM t;--", "b", "l"] for i in range(1, 4)
    ]
    path = write_notes(tmp_path / f"notes{suffix}", rows)

    code, results = ingest(capsys, db, path)

    assert code == 0, results
    [result] = results[path.name]
    assert (result["table"], result["status"], result["rows_loaded"]) == ("notes", "loaded", 3)
    assert canary_alive(db)
    with duckdb.connect(str(db), read_only=True) as con:
        loaded = con.execute(
            'SELECT "select", "from", "table", "x""; DROP TABLE t;--" FROM notes ORDER BY id'
        ).fetchall()
    assert loaded == [("s", "f", "t", "'; DELETE FROM t;--")] * 3


def test_headers_that_match_no_contract_end_in_routing_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "wh.duckdb"
    canary(db)
    long_label = "L" * 200
    headers = {
        "injection.csv": ["PassengerId", "Survived", INJECTION],
        "keywords.csv": ["select", "from", "table"],
        "long.csv": ["PassengerId", "Survived", long_label],
        "cases.csv": ["PassengerId", "passengerid", "Survived"],
    }
    files = []
    for name, header in headers.items():
        with (tmp_path / name).open("w", newline="") as out:
            csv.writer(out).writerows([header, ["1", "0", "x"]])
        files.append(tmp_path / name)

    code, results = ingest(capsys, db, *files)

    assert code == 1
    for name in headers:
        [result] = results[name]
        assert result["status"] == "rejected", result
        where = f"{result['source']} [sheet {Path(name).stem}]: "
        assert str(result["source"]).endswith(name)
        assert str(result["error"]).startswith(where)
    assert f"extra columns {INJECTION}" in results["injection.csv"][0]["error"]
    # Keywords are labels like any other: they only half-match the notes table.
    assert "closest table notes (header row 1): missing columns id, " in str(
        results["keywords.csv"][0]["error"]
    )
    assert f"extra columns {long_label}" in results["long.csv"][0]["error"]
    assert "repeated columns passengerid" in results["cases.csv"][0]["error"]
    assert canary_alive(db)
    with duckdb.connect(str(db), read_only=True) as con:
        ledger = con.execute(
            "SELECT status, count(*) FROM datalakep_load_ledger GROUP BY status"
        ).fetchall()
        tables = {
            r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        }
    assert ledger == [("rejected", 4)]
    assert "train_data" not in tables
    assert "gender_submission" not in tables


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_text_beyond_a_varchar_is_rejected_per_row_with_its_byte_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    longest = "é" * (EXCEL_CELL_CHARS // 2) + "a"  # Excel's longest cell: 32,767 characters
    rows: list[list[object]] = [[i, "s", "f", "t", "x", "b", "l"] for i in range(1, 31)]
    rows[0][5] = longest  # body: VARCHAR(65535) holds its 49,150 bytes
    rows[1][6] = "a" * EXCEL_CELL_CHARS  # label: VARCHAR(256)
    rows[2][6] = "é" * 200  # 200 characters, 400 bytes
    path = write_notes(tmp_path / f"sizes{suffix}", rows)

    code, results = ingest(capsys, tmp_path / "wh.duckdb", path)

    assert code == 0, results
    [result] = results[path.name]
    assert (result["status"], result["rows_loaded"], result["rows_rejected"]) == ("loaded", 28, 2)
    problems = {(r["row"], r["column"]): r for r in report_rows(result)}
    assert set(problems) == {("3", "label"), ("4", "label")}
    assert (
        "is 32767 bytes in UTF-8; VARCHAR(256) holds 256 bytes"
        in problems[("3", "label")]["message"]
    )
    assert (
        "is 400 bytes in UTF-8; VARCHAR(256) holds 256 bytes" in problems[("4", "label")]["message"]
    )
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:
        body = con.execute("SELECT body FROM notes WHERE id = 1").fetchone()
    assert body == (longest,)


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_formula_text_is_loaded_verbatim_and_neutralised_in_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    passengers = generate_passengers("train_data", 30, seed=11)
    names = passengers.column("Name").to_pylist()
    sexes = passengers.column("Sex").to_pylist()
    names[0] = HYPERLINK  # a valid name, as far as the contract can tell
    sexes[1] = HYPERLINK  # not one of male, female: the row is rejected
    passengers = passengers.set_column(3, "Name", pa.array(names))
    passengers = passengers.set_column(4, "Sex", pa.array(sexes))
    path = tmp_path / f"train{suffix}"
    write_workbook(passengers, path)
    first = passengers.column("PassengerId")[0].as_py()

    code, results = ingest(capsys, tmp_path / "wh.duckdb", path)

    assert code == 0, results
    [result] = results[path.name]
    assert (result["status"], result["rows_loaded"], result["rows_rejected"]) == ("loaded", 29, 1)
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:
        stored = con.execute('SELECT "Name" FROM train_data WHERE "PassengerId" = ?', [first])
        assert stored.fetchone() == (HYPERLINK,)
    [problem] = report_rows(result)
    assert (problem["row"], problem["column"], problem["value"]) == ("3", "Sex", "'" + HYPERLINK)
    book = openpyxl.load_workbook(Path(str(result["rejects_report"])))
    cells = [c for sheet in book.worksheets for row in sheet.iter_rows() for c in row]
    # In the workbook the text stays verbatim (a fixed report loads it as it was),
    # typed as a string and flagged with Excel's quote prefix: never a formula.
    [flagged] = [c for c in cells if c.value == HYPERLINK]
    assert (flagged.data_type, flagged.quotePrefix) == ("s", True)
    assert not any(c.data_type == "f" for c in cells)


def test_formula_cells_give_their_cached_value_never_a_computed_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    header = "".join(
        inline(f"{col}1", name) for col, name in zip("ABCDEFGHIJKL", TRAIN_COLUMNS, strict=True)
    )
    row = (
        '<c r="A2"><v>7</v></c><c r="B2"><v>1</v></c><c r="C2"><v>3</v></c>'
        # Excel would show "x"; computing the formula would need a network.
        '<c r="D2" t="str"><f>HYPERLINK("http://evil","x")</f><v>x</v></c>'
        f"{inline('E2', 'female')}"
        # 1+1 is 2; the cached value says 30, and 30 is what a reader must see.
        '<c r="F2"><f>1+1</f><v>30</v></c>'
        '<c r="G2"><v>0</v></c><c r="H2"><v>0</v></c>'
        f'{inline("I2", "A/5 21171")}<c r="J2"><f>SUM(1,2)</f><v>7.25</v></c>'
    )
    path = write_xlsx(
        tmp_path / "formulas.xlsx",
        {"Passengers": f'<row r="1">{header}</row><row r="2">{row}</row>'},
    )

    code, results = ingest(capsys, tmp_path / "wh.duckdb", path)

    assert code == 0, results
    assert [(r["status"], r["rows_loaded"]) for r in results[path.name]] == [("loaded", 1)]
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:
        loaded = con.execute('SELECT "Name", "Age", "Fare" FROM train_data').fetchall()
    assert [(name, float(age), float(fare)) for name, age, fare in loaded] == [("x", 30.0, 7.25)]
