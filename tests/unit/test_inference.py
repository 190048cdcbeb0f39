from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from domain.contracts import LoadMode
from domain.inference import column_names, header_row_of, infer_contract
from domain.sheet import RawSheet, SheetPreview

pytestmark = pytest.mark.unit


def sheet(**columns: list[object]) -> RawSheet:
    arrays = [pa.array(v) for v in columns.values()]
    rows = len(arrays[0])
    return RawSheet(
        source="x.csv",
        name="x",
        header=tuple(columns),
        header_row=1,
        cells=pa.table(arrays, names=[f"c{i}" for i in range(len(arrays))]),
        row_numbers=pa.array(np.arange(2, rows + 2, dtype=np.int64)),
    )


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["1", "2", "3.0"], "integer"),
        (["1", "3000000000"], "bigint"),
        (["007", "12"], "varchar(16)"),  # leading zeros are text, not a number
        (["0.9167", "80", "-1.5"], "decimal(6,4)"),
        (["1e5", "2.5"], "double precision"),
        (["0.1234567890123", "1"], "double precision"),  # past a sensible scale
        (["true", "No", "yes"], "boolean"),
        (["1", "0"], "integer"),  # Survived stays a number
        (["2026-01-02", "1912-04-15"], "date"),
        (["2026-01-02 13:45:00", "2026-01-02"], "timestamp"),
        (["2026-02-30"], "varchar(16)"),  # no such day
        (["x" * 100], "varchar(256)"),
        ([1.5, 2.25, None], "decimal(3,2)"),  # a numeric column from a workbook
        ([None, None], "varchar(16)"),
    ],
)
def test_the_narrowest_type_that_accepts_every_cell(values: list[object], expected: str) -> None:
    [column] = infer_contract(sheet(v=values), "t").contract.columns
    assert str(column.type) == expected


def test_nullable_key_and_allowed_come_from_the_data() -> None:
    inferred = infer_contract(
        sheet(id=["1", "2", "3", "4"], sex=["m", "f", "m", "f"], note=["a", None, "b", "c"]),
        "t",
        allowed=True,
    )
    contract = inferred.contract
    assert contract.primary_key == ("id",)
    assert [c.nullable for c in contract.columns] == [False, False, True]
    assert contract.column("sex").allowed == ("f", "m")
    assert contract.column("note").allowed is None  # every value seen once: not a list


def test_without_a_unique_filled_column_rows_are_appended() -> None:
    inferred = infer_contract(sheet(a=["1", "1"], b=["x", None]), "t")
    assert (inferred.contract.load_mode, inferred.contract.primary_key) == (LoadMode.APPEND, ())
    assert inferred.note is not None
    assert "no primary key" in inferred.note


def test_repeated_and_unnamed_header_cells() -> None:
    assert column_names(["name", "Name ", None, " ", "NAME"]) == [
        "name",
        "Name_2",
        None,
        None,
        "NAME_3",
    ]


def test_the_header_is_the_first_full_row_below_titles() -> None:
    preview = SheetPreview("s", (("Passengers",), (None,), ("a", "b", "c"), ("1", "2", "3")))
    assert header_row_of(preview) == 3
