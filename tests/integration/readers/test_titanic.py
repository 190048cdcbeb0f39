"""The real Kaggle train.csv, as CSV and as an .xlsx built from it, read alike."""

from __future__ import annotations

import csv
from pathlib import Path

import openpyxl
import pytest

from domain.sheet import RawSheet
from tests.integration.readers.builders import opened, text_cells

pytestmark = pytest.mark.integration

HEADER = (
    "PassengerId", "Survived", "Pclass", "Name", "Sex", "Age",
    "SibSp", "Parch", "Ticket", "Fare", "Cabin", "Embarked",
)  # fmt: skip


def _as_cell(text: str) -> object:
    """A number where Excel would store one, when it prints back the same."""
    if text.isdigit() and (text == "0" or not text.startswith("0")):
        return int(text)
    try:
        number = float(text)
    except ValueError:
        return text or None
    return number if repr(number) == text else text


def _check_train(sheet: RawSheet) -> None:
    assert sheet.header == HEADER
    assert sheet.num_rows == 891
    assert sheet.row_numbers[0].as_py() == 2
    assert sheet.row_numbers[-1].as_py() == 892
    columns = dict(zip(HEADER, text_cells(sheet).columns, strict=True))
    assert columns["Name"][0].as_py() == "Braund, Mr. Owen Harris"
    assert columns["Age"].null_count == 177
    assert columns["Cabin"].null_count == 687
    assert columns["Age"][0].as_py() == "22"
    assert columns["Fare"][0].as_py() == "7.25"
    assert columns["Fare"][1].as_py() == "71.2833"


def test_train_csv(titanic: Path) -> None:
    with opened(titanic / "train.csv") as workbook:
        assert workbook.sheet_names == ("train",)
        assert workbook.preview("train", 1).rows == (HEADER,)
        _check_train(workbook.read("train", 1))


def test_train_as_xlsx_reads_like_the_csv(tmp_path: Path, titanic: Path) -> None:
    train_csv = titanic / "train.csv"
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("train")
    with train_csv.open(newline="", encoding="utf-8") as fh:
        for record in csv.reader(fh):
            ws.append([_as_cell(cell) for cell in record])
    wb.save(tmp_path / "train.xlsx")

    with opened(tmp_path / "train.xlsx") as workbook:
        from_xlsx = workbook.read("train", 1)
    with opened(train_csv) as workbook:
        from_csv = workbook.read("train", 1)
    _check_train(from_xlsx)
    assert text_cells(from_xlsx).equals(text_cells(from_csv))
    assert from_xlsx.row_numbers.equals(from_csv.row_numbers)
