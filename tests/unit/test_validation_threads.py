"""Validation in the caller's pool: the verdict of one thread, and only for long sheets."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from domain.routing import Router
from domain.sheet import RawSheet, SheetPreview
from domain.validation import SheetValidation, validate_sheet

pytestmark = pytest.mark.unit

HEADER = ("PassengerId", "Survived", "Pclass", "Name", "Sex", "Age",
          "SibSp", "Parch", "Ticket", "Fare", "Cabin", "Embarked")  # fmt: skip
GOOD = ["1", "0", "3", "A", "male", "22", "0", "0", "T", "7.25", None, "S"]


class RecordingPool(ThreadPoolExecutor):
    """A real thread pool that counts the tasks handed to it."""

    def __init__(self) -> None:
        super().__init__(max_workers=2)
        self.tasks = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.tasks += 1
        return super().submit(fn, *args, **kwargs)


@pytest.fixture
def pool() -> Iterator[RecordingPool]:
    with RecordingPool() as made:
        yield made


def sheet_of(count: int) -> RawSheet:
    rows = [[str(n + 1), *GOOD[1:]] for n in range(count)]
    rows[3][4] = "unknown"  # Sex outside its list
    rows[-1][5] = "old"  # Age not a number
    columns = [pa.array([r[i] for r in rows], pa.string()) for i in range(len(HEADER))]
    return RawSheet(
        source="x.csv",
        name="x",
        header=HEADER,
        header_row=1,
        cells=pa.table(columns, names=[f"c{i}" for i in range(len(HEADER))]),
        row_numbers=pa.array(np.arange(2, count + 2, dtype=np.int64)),
    )


def verdict(result: SheetValidation) -> tuple[object, ...]:
    return (result.typed, result.rejected, result.rejects)


def test_a_long_sheet_is_checked_in_the_pool_with_the_verdict_of_one_thread(
    router: Router, pool: RecordingPool
) -> None:
    sheet = sheet_of(12_000)
    route = router.route("x.csv", SheetPreview("x", (HEADER,)))

    threaded = validate_sheet(sheet, route, pool)
    alone = validate_sheet(sheet, route)

    assert pool.tasks == len(HEADER)
    assert verdict(threaded) == verdict(alone)
    assert [(r.row, r.column) for r in threaded.rejects] == [(5, "Sex"), (12_001, "Age")]


def test_a_short_sheet_stays_in_the_callers_thread(router: Router, pool: RecordingPool) -> None:
    sheet = sheet_of(891)
    route = router.route("x.csv", SheetPreview("x", (HEADER,)))

    result = validate_sheet(sheet, route, pool)

    assert pool.tasks == 0
    assert [(r.row, r.column) for r in result.rejects] == [(5, "Sex"), (892, "Age")]
