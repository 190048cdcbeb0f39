from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from domain.rejects import RejectReason
from domain.routing import Router
from domain.sheet import RawSheet, SheetPreview
from domain.validation import validate_sheet

pytestmark = pytest.mark.unit

HEADER = ("PassengerId", "Survived", "Pclass", "Name", "Sex", "Age",
          "SibSp", "Parch", "Ticket", "Fare", "Cabin", "Embarked")  # fmt: skip


def test_a_value_outside_the_list_is_reported_as_such_not_as_too_long(router: Router) -> None:
    rows = [
        ["1", "0", "3", "A", "unknown", "22", "0", "0", "T", "7.25", None, "S"],
        ["2", "1", "1", "B", "female", "38", "0", "0", "T", "7.25", None, "Southampton"],
        ["3", "1", "1", "C", "femal", "38", "0", "0", "T", "7.25", None, "C"],
    ]
    columns = [pa.array([r[i] for r in rows], pa.string()) for i in range(len(HEADER))]
    sheet = RawSheet(
        source="x.csv",
        name="x",
        header=HEADER,
        header_row=1,
        cells=pa.table(columns, names=[f"c{i}" for i in range(len(HEADER))]),
        row_numbers=pa.array(np.arange(2, 5, dtype=np.int64)),
    )
    route = router.route("x.csv", SheetPreview("x", (HEADER,)))

    result = validate_sheet(sheet, route)

    found = [(r.row, r.column, r.reason, r.message) for r in result.rejects]
    assert found == [
        (2, "Sex", RejectReason.NOT_ALLOWED, "'unknown' is not one of: male, female"),
        (3, "Embarked", RejectReason.NOT_ALLOWED, "'Southampton' is not one of: C, Q, S"),
        (4, "Sex", RejectReason.NOT_ALLOWED, "'femal' is not one of: male, female"),
    ]
