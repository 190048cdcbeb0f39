"""`datalakep contract infer`: the contract it writes loads the same file with no rejects.

On the three real Kaggle files and on a titanic3-shaped workbook built here: lower-case
names, a dotted name, infant ages (0.9167), columns mixing text and numbers, a repeated
header name, and no unique column (so the table is appended to).
"""

from __future__ import annotations

import csv
import difflib
from pathlib import Path
from typing import Any

import duckdb
import openpyxl
import pytest
import yaml

from entrypoints.cli import main
from tests.support.cli import CONFIG, ingest_json, isolated_project

pytestmark = pytest.mark.e2e

TITANIC3 = ["pclass", "survived", "name", "sex", "age", "sibsp", "parch", "ticket", "fare",
            "cabin", "embarked", "boat", "body", "home.dest", "Ticket"]  # fmt: skip


@pytest.fixture(autouse=True)
def isolated_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # The shipped text itself (comments and all): --write must keep every line of it.
    config = isolated_project(tmp_path, monkeypatch)
    config.write_text(CONFIG.read_text())
    return config


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().out


def ingest(capsys: pytest.CaptureFixture[str], db: Path, path: Path) -> list[dict[str, Any]]:
    code, results = ingest_json(capsys, db, path)
    assert code == 0, results
    return results


def titanic3(titanic: Path, path: Path) -> int:
    """titanic3's shape from Kaggle's train.csv; returns the number of data rows."""
    with (titanic / "train.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "titanic3"
    sheet.append(TITANIC3)
    for i, row in enumerate(rows):
        age: float | None = float(row["Age"]) if row["Age"] else None
        if i % 97 == 0:
            age = 0.9167  # an infant, as titanic3 writes months
        ticket: object = int(row["Ticket"]) if row["Ticket"].isdigit() else row["Ticket"]
        boat: object = (i % 16 or "C") if i % 3 == 0 else None  # numbers and letters
        body: object = 100 + i if i % 11 == 0 else None
        sheet.append(
            [int(row["Pclass"]), int(row["Survived"]), row["Name"], row["Sex"], age,
             int(row["SibSp"]), int(row["Parch"]), ticket, float(row["Fare"]),
             row["Cabin"] or None, row["Embarked"] or None, boat, body,
             "St Louis, MO" if i % 4 == 0 else None, str(ticket).lower()]
        )  # fmt: skip
    sheet.append(sheet[2 + 5][i].value for i in range(len(TITANIC3)))  # a repeated passenger
    book.save(path)
    return len(rows) + 1


@pytest.mark.parametrize(
    ("name", "rows"), [("train", 891), ("test", 418), ("gender_submission", 418)]
)
def test_the_inferred_contract_loads_each_kaggle_file_with_no_rejects(
    titanic: Path, tmp_path: Path, isolated_config: Path, capsys: pytest.CaptureFixture[str],
    name: str, rows: int,
) -> None:  # fmt: skip
    source = tmp_path / f"{name}.csv"
    source.write_bytes((titanic / f"{name}.csv").read_bytes())
    before = isolated_config.read_text()

    code, out = cli(capsys, "contract", "infer", str(source), "--table", f"my_{name}", "--write")

    assert code == 0, out
    after = isolated_config.read_text()
    diff = difflib.ndiff(before.splitlines(), after.splitlines())
    assert not [line for line in diff if line.startswith("- ")]  # the file was only added to
    config = yaml.safe_load(after)
    assert {"file": f"{name}.csv", "table": f"my_{name}"} in config["routing"]
    assert config["tables"][f"my_{name}"]["primary_key"] == ["PassengerId"]
    [result] = ingest(capsys, tmp_path / "wh.duckdb", source)
    assert (result["table"], result["rows_loaded"], result["rows_rejected"]) == (
        f"my_{name}",
        rows,
        0,
    )


def test_a_titanic3_workbook_gets_precise_types_and_loads_whole(
    titanic: Path, tmp_path: Path, isolated_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "titanic3.xlsx"
    rows = titanic3(titanic, source)

    code, printed = cli(capsys, "contract", "infer", str(source), "--allowed")

    assert code == 0
    table = yaml.safe_load(printed)["titanic3"]
    types = {c["name"]: c["type"] for c in table["columns"]}
    assert types["age"] == "decimal(6,4)"  # 0.9167 keeps its four decimals
    assert types["fare"] == "decimal(7,4)"
    assert types["ticket"].startswith("varchar(")
    assert types["boat"].startswith("varchar(")
    assert types["body"] == "integer"
    assert types["pclass"] == "integer"
    assert "home.dest" in types
    assert "Ticket_2" in types
    sex = next(c for c in table["columns"] if c["name"] == "sex")
    assert (sex["nullable"], sex["allowed"]) == (False, ["female", "male"])
    assert table["load_mode"] == "append"
    assert "primary_key" not in table
    assert "# no column is filled and unique in every row" in printed

    code, _ = cli(capsys, "contract", "infer", str(source), "--allowed", "--write")
    assert code == 0
    db = tmp_path / "wh.duckdb"
    [result] = ingest(capsys, db, source)
    assert (result["rows_loaded"], result["rows_rejected"]) == (rows, 0)
    with duckdb.connect(str(db), read_only=True) as con:
        ages = con.execute("SELECT count(*) FROM titanic3 WHERE age = 0.9167").fetchone()
    assert ages == (len(range(0, rows - 1, 97)),)


def test_write_refuses_a_table_that_exists(
    titanic: Path, tmp_path: Path, isolated_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = isolated_config.read_text()
    code = main(
        ["contract", "infer", str(titanic / "train.csv"), "--table", "train_data", "--write"]
    )
    assert code == 2
    assert "already has a table train_data" in capsys.readouterr().err
    assert isolated_config.read_text() == before
