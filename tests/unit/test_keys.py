"""domain/keys.py: the repeat test both validation and the warehouse trust."""

from __future__ import annotations

import pyarrow as pa
import pytest

from domain.keys import all_distinct, repeated_key


@pytest.mark.parametrize(
    ("values", "distinct"),
    [
        ([1, 2, 3, None, None], True),  # ascending: one comparison with the next
        ([3, 1, 2], True),  # out of order: the sort
        ([3, 1, 3], False),
        ([1, 1], False),
        (["a", "b", None], True),
        (["a", "b", "a"], False),
        ([], True),
    ],
)
def test_all_distinct_leaves_nulls_out(values: list[object], distinct: bool) -> None:
    kind = pa.string() if any(isinstance(v, str) for v in values) else pa.int64()
    assert all_distinct(pa.array(values, kind)) is distinct
    assert all_distinct(pa.chunked_array([pa.array(values, kind)])) is distinct


def test_repeated_key_names_the_key_two_rows_share() -> None:
    rows = pa.table({"id": [1, 2, 3, 2], "name": ["a", "b", "c", "d"]})

    assert repeated_key(rows, ("id",)) == {"id": 2}
    assert repeated_key(rows, ("id", "name")) is None
    assert repeated_key(rows, ()) is None


def test_a_two_column_key_repeats_only_when_every_part_does() -> None:
    rows = pa.table({"id": [1, 1, 2, 1], "day": ["x", "y", "x", "y"]})

    assert repeated_key(rows, ("id", "day")) == {"id": 1, "day": "y"}
    assert repeated_key(rows.slice(0, 3), ("id", "day")) is None


def test_null_keys_group_together_as_sql_groups_them() -> None:
    rows = pa.table({"id": pa.array([None, 1, None], pa.int64())})

    assert repeated_key(rows, ("id",)) == {"id": None}
    assert repeated_key(rows.slice(0, 2), ("id",)) is None
