from __future__ import annotations

import time
from pathlib import Path

import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pytest
from python_calamine import CalamineWorkbook

from devtools import sample
from devtools.sample import (
    MAX_NAME_LENGTH,
    TABLES,
    XLSX_MAX_ROWS,
    generate_passengers,
    write_workbook,
)

pytestmark = pytest.mark.integration

KAGGLE_TRAIN_HEADER = [
    "PassengerId", "Survived", "Pclass", "Name", "Sex", "Age",
    "SibSp", "Parch", "Ticket", "Fare", "Cabin", "Embarked",
]  # fmt: skip


@pytest.fixture(scope="module")
def train() -> pa.Table:
    return generate_passengers("train_data", 20_000, seed=11)


def _null_ratio(table: pa.Table, column: str) -> float:
    return float(table[column].null_count / table.num_rows)


def test_the_tables_have_kaggle_headers() -> None:
    assert generate_passengers("train_data", 3).column_names == KAGGLE_TRAIN_HEADER
    assert generate_passengers("test_data", 3).column_names == [
        c for c in KAGGLE_TRAIN_HEADER if c != "Survived"
    ]
    assert generate_passengers("gender_submission", 3).column_names == ["PassengerId", "Survived"]
    assert set(TABLES) == {"train_data", "test_data", "gender_submission"}


def test_the_same_seed_gives_the_same_passengers() -> None:
    first = generate_passengers("train_data", 2_000, seed=5)
    assert first.equals(generate_passengers("train_data", 2_000, seed=5))
    assert not first.equals(generate_passengers("train_data", 2_000, seed=6))


def test_tables_made_with_one_seed_describe_the_same_passengers() -> None:
    test = generate_passengers("test_data", 1_000, seed=3, start_id=892)
    submission = generate_passengers("gender_submission", 1_000, seed=3, start_id=892)
    assert submission["PassengerId"].equals(test["PassengerId"])
    # Kaggle's baseline submission: every woman survives, every man does not.
    women = pc.cast(pc.equal(test["Sex"], "female"), pa.int64())
    assert submission["Survived"].equals(women)


def test_passenger_ids_are_consecutive_from_start_id() -> None:
    ids = generate_passengers("test_data", 418, start_id=892)["PassengerId"].to_pylist()
    assert ids == list(range(892, 892 + 418))


def test_null_ratios_are_kaggle_like(train: pa.Table) -> None:
    assert _null_ratio(train, "Age") == pytest.approx(0.20, abs=0.015)
    assert _null_ratio(train, "Cabin") == pytest.approx(0.77, abs=0.02)
    assert 0.0005 <= _null_ratio(train, "Embarked") <= 0.004
    for column in ("PassengerId", "Survived", "Pclass", "Name", "Sex", "SibSp", "Parch"):
        assert train[column].null_count == 0, column
    assert train["Ticket"].null_count == train["Fare"].null_count == 0


def test_values_stay_in_kaggle_ranges(train: pa.Table) -> None:
    rows = train.num_rows
    male = pc.sum(pc.equal(train["Sex"], "male")).as_py() / rows
    assert male == pytest.approx(0.65, abs=0.02)
    assert set(train["Pclass"].to_pylist()) == {1, 2, 3}
    assert pc.sum(pc.equal(train["Pclass"], 3)).as_py() / rows == pytest.approx(0.54, abs=0.02)
    assert set(train["Sex"].to_pylist()) == {"male", "female"}
    assert set(train["Embarked"].drop_null().to_pylist()) == {"S", "C", "Q"}
    assert set(train["Survived"].to_pylist()) == {0, 1}

    ages = train["Age"].drop_null().to_pylist()
    assert 0.17 <= min(ages) < 1
    assert max(ages) <= 80
    assert any(a < 1 and a != round(a, 1) for a in ages)  # 0.42, 0.83...
    assert any(a > 1 and a % 1 == 0.5 for a in ages)  # 28.5, 70.5...

    sibsp, parch = train["SibSp"].to_pylist(), train["Parch"].to_pylist()
    assert set(sibsp) <= set(range(9))
    assert sibsp.count(0) / rows > 0.6
    assert set(parch) <= set(range(7))
    assert parch.count(0) / rows > 0.7

    fares = train["Fare"].to_pylist()
    assert min(fares) == 0
    assert max(fares) <= 512.3292
    assert all(f == round(f, 4) for f in fares)
    assert sorted(fares)[rows // 2] < 20  # skewed: most passengers travelled cheaply


def test_tickets_and_cabins_look_like_kaggle(train: pa.Table) -> None:
    tickets = train["Ticket"].to_pylist()
    assert any(t.isdigit() for t in tickets)
    for prefix in ("PC ", "A/5 ", "STON/O2. ", "C.A. "):
        assert any(t.startswith(prefix) for t in tickets), prefix
    cabins = train["Cabin"].drop_null().to_pylist()
    assert all(part[0] in "ABCDEFGT" and part[1:].isdigit() for c in cabins for part in c.split())
    assert any(len(c.split()) == 4 for c in cabins)


def test_names_are_kaggle_style_and_awkward(train: pa.Table) -> None:
    names = train["Name"].to_pylist()
    assert max(len(n) for n in names) <= MAX_NAME_LENGTH
    assert all(", " in n and "." in n for n in names)
    assert all(n.count("(") == n.count(")") and n.count('"') % 2 == 0 for n in names)
    assert any("(" in n and ")" in n for n in names)
    assert any('"' in n for n in names)
    titles = {n.split(", ", 1)[1].split(".", 1)[0] for n in names}
    assert {"Mr", "Mrs", "Miss", "Master"} <= titles


def test_a_full_sheet_of_rows_takes_seconds() -> None:
    # Guards the vectorised generation: a per-row Python loop takes minutes.
    started = time.perf_counter()
    table = generate_passengers("train_data", 1_048_576, seed=1)
    assert table.num_rows == 1_048_576
    assert time.perf_counter() - started < 30


def test_xlsx_reads_back_with_numbers_and_empty_cells(tmp_path: Path) -> None:
    table = generate_passengers("train_data", 3_000, seed=2)
    path = tmp_path / "train.xlsx"
    write_workbook(table, path)

    rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_name("Passengers").to_python()
    assert rows[0] == KAGGLE_TRAIN_HEADER
    assert len(rows) == 1 + table.num_rows

    book = openpyxl.load_workbook(path, read_only=True)
    assert book.sheetnames == ["Passengers"]
    got = list(book["Passengers"].iter_rows(min_row=2, values_only=True))
    book.close()
    assert got == [tuple(r.values()) for r in table.to_pylist()]


def test_xlsx_refuses_more_rows_than_a_sheet_holds(tmp_path: Path) -> None:
    table = generate_passengers("gender_submission", XLSX_MAX_ROWS + 1)
    with pytest.raises(ValueError, match="do not fit"):
        write_workbook(table, tmp_path / "big.xlsx")


def test_csv_reads_back(tmp_path: Path) -> None:
    table = generate_passengers("test_data", 500, seed=4)
    path = tmp_path / "test.csv"
    write_workbook(table, path)
    back = pa_csv.read_csv(path)
    assert back.column_names == table.column_names
    assert back.num_rows == table.num_rows
    assert back["Name"].equals(table["Name"])
    assert back["Age"].null_count == table["Age"].null_count


def test_ods_reads_back(tmp_path: Path) -> None:
    table = generate_passengers("train_data", 60, seed=4)
    path = tmp_path / "train.ods"
    write_workbook(table, path, sheet="train")
    back = pd.read_excel(path, engine="odf", sheet_name="train")
    assert list(back.columns) == KAGGLE_TRAIN_HEADER
    assert len(back) == 60
    assert back["Age"].isna().sum() == table["Age"].null_count


def test_ods_refuses_large_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sample, "ODS_MAX_ROWS", 10)
    with pytest.raises(ValueError, match=r"too many for \.ods"):
        write_workbook(generate_passengers("train_data", 11), tmp_path / "x.ods")


def test_unknown_inputs_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown table"):
        generate_passengers("crew", 1)
    with pytest.raises(ValueError, match="rows"):
        generate_passengers("train_data", -1)
    with pytest.raises(ValueError, match=r"\.xlsx, \.csv or \.ods"):
        write_workbook(generate_passengers("train_data", 1), tmp_path / "x.xls")
