"""Key uniqueness for key types the Titanic contract does not use: text and two columns."""

from __future__ import annotations

import pytest

from domain.contracts import catalog_from_mapping
from domain.rejects import RejectReason
from domain.routing import Router
from tests.unit.conftest import make_harness

pytestmark = pytest.mark.unit


def ingest(key: list[str], rows: list[list[object]]) -> tuple[list[int], list[object]]:
    """The rows rejected as duplicate keys, and the codes that were loaded."""
    catalog = catalog_from_mapping(
        {
            "codes": {
                "primary_key": key,
                "max_reject_ratio": 1.0,  # a few rows here; the threshold is not under test
                "columns": [
                    {"name": "code", "type": "varchar(8)", "nullable": False},
                    {"name": "part", "type": "integer", "nullable": False},
                    {"name": "label", "type": "varchar(20)"},
                ],
            }
        }
    )
    harness = make_harness(Router(catalog))
    harness.drop("s3://in/codes.xlsx", {"S": [["code", "part", "label"], *rows]})
    [sheet] = harness.ingest("s3://in/codes.xlsx").sheets
    dupes = [r.row for r in sheet.rejects if r.reason is RejectReason.DUPLICATE_KEY]
    return dupes, [r["code"] for r in harness.warehouse.rows("codes")]


def test_a_repeated_text_key_rejects_every_copy() -> None:
    rows: list[list[object]] = [["a", 1, "x"], ["b", 1, "y"], ["a", 2, "z"], ["c", 1, None]]

    dupes, loaded = ingest(["code"], rows)

    assert dupes == [2, 4]
    assert loaded == ["b", "c"]


def test_distinct_text_keys_all_load() -> None:
    dupes, loaded = ingest(["code"], [["a", 1, None], ["B", 1, None], ["b", 1, None]])

    assert dupes == []
    assert loaded == ["B", "a", "b"]


def test_a_two_column_key_repeats_only_when_both_parts_repeat() -> None:
    rows: list[list[object]] = [["a", 1, None], ["a", 2, None], ["a", 1, None], ["b", 1, None]]

    dupes, loaded = ingest(["code", "part"], rows)

    assert dupes == [2, 4]
    assert sorted(str(c) for c in loaded) == ["a", "b"]


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        ([1, 2, 3, 7], []),  # ascending: proven distinct without a sort
        ([7, 3, 1, 2], []),  # out of order and distinct: the sort finds no repeat
        ([1, 2, 2, 3], [3, 4]),  # ascending but not strictly: the neighbours repeat
        ([3, 1, 2, 3], [2, 5]),  # out of order: the repeat meets its copy once sorted
    ],
)
def test_an_integer_key_repeats_wherever_its_copies_stand(
    parts: list[int], expected: list[int]
) -> None:
    rows: list[list[object]] = [[f"c{n}", part, None] for n, part in enumerate(parts)]

    dupes, _ = ingest(["part"], rows)

    assert dupes == expected
