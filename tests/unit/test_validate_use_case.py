"""ValidateFile on the in-memory fakes: ingest's judgement, with nothing written."""

from __future__ import annotations

import pytest

from application.results import Outcome
from tests.unit.conftest import Harness, passenger
from tests.unit.test_ingest_use_case import train_rows

pytestmark = pytest.mark.unit


def test_dry_run_writes_nothing(harness: Harness) -> None:
    harness.drop(
        "s3://in/t.xlsx",
        {"good": train_rows(10), "bad": [*train_rows(3, start=100), passenger(103, Age="x")]},
    )

    result = harness.validate("s3://in/t.xlsx")

    assert [(s.sheet, s.status) for s in result.sheets] == [
        ("good", Outcome.VALID), ("bad", Outcome.INVALID),
    ]  # fmt: skip
    assert harness.warehouse.ledger == []
    assert harness.warehouse.tables == {}
    assert harness.reports.reports == []


def test_a_file_with_no_data_sheet_validates(harness: Harness) -> None:
    harness.drop("s3://in/blank.xlsx", {"Sheet1": [], "Sheet2": []})

    assert harness.validate("s3://in/blank.xlsx").ok
    assert harness.warehouse.ledger == []


def test_a_refused_sheet_is_invalid_with_its_error_and_reported_on_request(
    harness: Harness,
) -> None:
    harness.drop(
        "s3://in/t.xlsx",
        {"odd": [["what", "ever"], [1, 2]], "some": [*train_rows(20), passenger(21, Age="x")]},
    )

    result = harness.validate("s3://in/t.xlsx", write_report=True)

    assert not result.ok
    assert [(s.sheet, s.status, s.error_code) for s in result.sheets] == [
        ("odd", Outcome.INVALID, "unroutable_sheet"),
        ("some", Outcome.INVALID, None),
    ]
    [report] = harness.reports.reports
    assert [(s.sheet, s.sheet_error is not None) for s in report.sheets] == [
        ("odd", True), ("some", False),
    ]  # fmt: skip
    assert {s.rejects_report for s in result.sheets} != {None}
    assert harness.warehouse.ledger == []
    assert harness.warehouse.tables == {}
