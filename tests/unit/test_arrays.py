"""The Arrow arrays the service builds itself (domain/arrays.py)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from domain.arrays import any_set, counting, falses, true_at

pytestmark = pytest.mark.unit


def test_falses_select_nothing() -> None:
    assert falses(3).to_pylist() == [False, False, False]
    assert falses(0).to_pylist() == []
    assert falses(3).null_count == 0


@pytest.mark.parametrize(
    ("start", "length", "kind", "expected"),
    [
        (1, 4, None, [1, 2, 3, 4]),
        (0, 3, pa.int32(), [0, 1, 2]),
        (-2, 3, None, [-2, -1, 0]),
        (5, 0, None, []),
        (2**40, 2, None, [2**40, 2**40 + 1]),
    ],
)
def test_counting_counts_up_from_its_start(
    start: int, length: int, kind: pa.DataType | None, expected: list[int]
) -> None:
    counted = counting(start, length, kind)

    assert counted.type == (kind or pa.int64())
    assert counted.to_pylist() == expected
    assert counted.null_count == 0


def test_true_at_marks_exactly_the_rows_given() -> None:
    assert true_at(5, [0, 3]).to_pylist() == [True, False, False, True, False]
    assert true_at(2, []).to_pylist() == [False, False]
    assert true_at(0, []).to_pylist() == []
    assert true_at(3, iter([2])).type == pa.bool_()


@pytest.mark.parametrize(
    "chunks",
    [
        [[False, False]],
        [[False, None]],
        [[None, None]],
        [[False, True]],
        [[False], [None, True]],
        [[False], []],
        [[], []],
    ],
)
def test_any_set_answers_as_arrow_any_does(chunks: list[list[bool | None]]) -> None:
    """Read from the counts, the answer is the kernel's: nulls are not set (and a mask
    of nulls only, or of nothing, makes the kernel answer null, which is no)."""
    whole = pa.chunked_array(chunks, pa.bool_())
    assert any_set(whole) is bool(pc.any(whole).as_py()) is any_set(whole.combine_chunks())
