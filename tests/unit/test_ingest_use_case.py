"""IngestPassengerFile on the in-memory fakes: outcomes, not call sequences."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest

from application.results import Outcome
from domain.contracts import catalog_from_mapping
from domain.errors import UnreadableFileError
from domain.ledger import LoadStatus
from domain.rejects import RejectReason
from domain.routing import Router, rules_from_config
from tests.unit.conftest import TRAIN_HEADER, Harness, make_harness, passenger

pytestmark = pytest.mark.unit


def train_rows(n: int, start: int = 1) -> list[Sequence[object]]:
    return [TRAIN_HEADER, *(passenger(start + i) for i in range(n))]


def test_valid_workbook_loads_every_row_with_lineage(harness: Harness) -> None:
    harness.drop("s3://in/train.xlsx", {"Passengers": train_rows(5)})

    result = harness.ingest("s3://in/train.xlsx")

    assert result.ok
    [sheet] = result.sheets
    assert (sheet.status, sheet.table, sheet.rows_read, sheet.rows_loaded) == (
        Outcome.LOADED, "train_data", 5, 5,
    )  # fmt: skip
    rows = harness.warehouse.rows("train_data")
    assert [r["PassengerId"] for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0]["Age"] == Decimal("22.00")
    assert rows[0]["Fare"] == Decimal("7.2500")
    assert {r["_load_id"] for r in rows} == {sheet.load_id}
    [entry] = harness.warehouse.ledger
    assert (entry.status, entry.table, entry.rows_loaded) == (LoadStatus.LOADED, "train_data", 5)
    # The row's lineage: its load_id leads to the ledger row naming the source.
    assert (entry.load_id, entry.source_uri) == (sheet.load_id, "s3://in/train.xlsx")
    assert entry.source_version == result.version


def test_text_and_float_cells_coerce_to_contract_types(harness: Harness) -> None:
    rows = [TRAIN_HEADER, passenger(1, PassengerId="7", Age="28.5", SibSp=1.0, Survived="1")]
    harness.drop("s3://in/t.xlsx", {"S": rows})

    harness.ingest("s3://in/t.xlsx")

    [row] = harness.warehouse.rows("train_data")
    assert (row["PassengerId"], row["Age"], row["SibSp"], row["Survived"]) == (
        7, Decimal("28.50"), 1, 1,
    )  # fmt: skip


def test_header_below_title_rows_and_blank_rows_keep_spreadsheet_row_numbers(
    harness: Harness,
) -> None:
    rows = [
        ["Titanic manifest"], [], TRAIN_HEADER, passenger(1), [], passenger(2, Age="abc"),
    ]  # fmt: skip
    harness.drop("s3://in/t.xlsx", {"S": rows})

    result = harness.ingest("s3://in/t.xlsx")

    [sheet] = result.sheets
    [reject] = sheet.rejects
    assert (reject.sheet, reject.row, reject.column, reject.value) == ("S", 6, "Age", "abc")
    assert reject.reason is RejectReason.TYPE
    assert "'abc' is not a number" in reject.message


@pytest.mark.parametrize(
    ("override", "column", "reason"),
    [
        ({"Age": "abc"}, "Age", RejectReason.TYPE),
        ({"PassengerId": "12.5"}, "PassengerId", RejectReason.TYPE),
        ({"Name": None}, "Name", RejectReason.NULL),
        ({"Sex": "woman"}, "Sex", RejectReason.NOT_ALLOWED),
        ({"Survived": 2}, "Survived", RejectReason.NOT_ALLOWED),
        ({"SibSp": -1}, "SibSp", RejectReason.BELOW_MIN),
        ({"Age": 200}, "Age", RejectReason.ABOVE_MAX),
        ({"Age": 1000}, "Age", RejectReason.OUT_OF_RANGE),
        ({"Parch": 40000}, "Parch", RejectReason.OUT_OF_RANGE),
        ({"Name": "é" * 129}, "Name", RejectReason.TOO_LONG),
        ({"Embarked": "É"}, "Embarked", RejectReason.NOT_ALLOWED),  # listed values come first
        ({"Cabin": "é" * 33}, "Cabin", RejectReason.TOO_LONG),
    ],
)
def test_each_reject_reason_names_sheet_row_column_and_value(
    harness: Harness, override: dict[str, object], column: str, reason: RejectReason
) -> None:
    rows = [*train_rows(10), passenger(11, **override)]
    harness.drop("s3://in/t.xlsx", {"Data": rows})

    result = harness.ingest("s3://in/t.xlsx")

    [sheet] = result.sheets
    assert (sheet.status, sheet.rows_loaded, sheet.rows_rejected) == (Outcome.LOADED, 10, 1)
    [reject] = sheet.rejects
    assert (reject.sheet, reject.row, reject.column, reject.reason) == ("Data", 12, column, reason)
    expected = override[column]
    assert reject.value == (None if expected is None else str(expected))
    assert 11 not in [r["PassengerId"] for r in harness.warehouse.rows("train_data")]


def test_varchar_limit_counts_utf8_bytes_not_characters(harness: Harness) -> None:
    # 128 two-byte characters are 256 bytes: exactly VARCHAR(256). One more is too long.
    rows = [TRAIN_HEADER, passenger(1, Name="é" * 128), passenger(2, Name="é" * 128 + "a")]
    rows += [passenger(i) for i in range(3, 12)]
    harness.drop("s3://in/t.xlsx", {"S": rows})

    [sheet] = harness.ingest("s3://in/t.xlsx").sheets

    assert [r.row for r in sheet.rejects] == [3]
    assert "257 bytes in UTF-8" in sheet.rejects[0].message


def test_duplicate_keys_reject_every_copy_naming_the_others(harness: Harness) -> None:
    rows = [*train_rows(40), passenger(5, Name="Other"), passenger(5, Name="Third")]
    harness.drop("s3://in/t.xlsx", {"S": rows})

    [sheet] = harness.ingest("s3://in/t.xlsx").sheets

    dupes = [r for r in sheet.rejects if r.reason is RejectReason.DUPLICATE_KEY]
    assert [r.row for r in dupes] == [6, 42, 43]
    assert "also in row 42, row 43" in dupes[0].message
    assert "also in row 6, row 43" in dupes[1].message
    assert 5 not in [r["PassengerId"] for r in harness.warehouse.rows("train_data")]
    assert sheet.rows_loaded == 39


def test_duplicate_keys_across_sheets_of_one_file_name_the_sheet(harness: Harness) -> None:
    harness.drop(
        "s3://in/t.xlsx",
        {"A": train_rows(10), "B": [*train_rows(10, start=11)[:-1], passenger(3)]},
    )

    result = harness.ingest("s3://in/t.xlsx")

    a, b = result.sheets
    assert "also in sheet 'B' row 11" in a.rejects[0].message
    assert "also in sheet 'A' row 4" in b.rejects[0].message
    # One (file version, table): a single load and a single ledger row.
    assert a.load_id == b.load_id
    assert [e.sheets for e in harness.warehouse.ledger] == [("A", "B")]
    assert len(harness.warehouse.rows("train_data")) == 9 + 9


def test_reject_ratio_above_the_limit_refuses_the_whole_sheet(harness: Harness) -> None:
    rows = [*train_rows(8), passenger(9, Sex="?"), passenger(10, Sex="?")]
    harness.drop("s3://in/t.xlsx", {"S": rows})

    result = harness.ingest("s3://in/t.xlsx")

    [sheet] = result.sheets
    assert not result.ok
    assert (sheet.status, sheet.rows_loaded, sheet.rows_rejected) == (Outcome.REJECTED, 0, 2)
    assert sheet.error is not None
    assert "2 of 10 rows rejected (20.0%)" in sheet.error
    assert harness.warehouse.rows("train_data") == []
    assert [e.status for e in harness.warehouse.ledger] == [LoadStatus.REJECTED]
    assert sheet.rejects_report is not None


def test_reject_ratio_at_the_limit_still_loads(harness: Harness) -> None:
    rows = [*train_rows(9), passenger(10, Sex="?")]
    harness.drop("s3://in/t.xlsx", {"S": rows})

    [sheet] = harness.ingest("s3://in/t.xlsx").sheets

    assert (sheet.status, sheet.rows_loaded, sheet.rows_rejected) == (Outcome.LOADED, 9, 1)


def test_same_version_again_is_skipped_without_touching_the_table(harness: Harness) -> None:
    harness.drop("s3://in/t.xlsx", {"S": train_rows(3)}, version="v1")
    first = harness.ingest("s3://in/t.xlsx")
    before = harness.warehouse.rows("train_data")

    second = harness.ingest("s3://in/t.xlsx")

    assert second.sheets[0].status is Outcome.SKIPPED
    assert harness.warehouse.rows("train_data") == before
    assert [e.status for e in harness.warehouse.ledger] == [LoadStatus.LOADED, LoadStatus.SKIPPED]
    assert first.sheets[0].load_id == before[0]["_load_id"]


def test_a_changed_file_under_the_same_name_upserts_by_key(harness: Harness) -> None:
    harness.drop("s3://in/t.xlsx", {"S": train_rows(3)}, version="v1")
    harness.ingest("s3://in/t.xlsx")
    changed = [TRAIN_HEADER, passenger(2, Name="Renamed"), passenger(3), passenger(4)]
    harness.drop("s3://in/t.xlsx", {"S": changed}, version="v2")

    result = harness.ingest("s3://in/t.xlsx")

    rows = {r["PassengerId"]: r for r in harness.warehouse.rows("train_data")}
    assert sorted(rows) == [1, 2, 3, 4]
    assert rows[2]["Name"] == "Renamed"
    assert rows[2]["_load_id"] == result.sheets[0].load_id
    assert rows[1]["_load_id"] != result.sheets[0].load_id


def test_every_sheet_is_routed_to_its_own_table(harness: Harness) -> None:
    test_header = [c for c in TRAIN_HEADER if c != "Survived"]
    test_row = [v for c, v in zip(TRAIN_HEADER, passenger(892), strict=True) if c != "Survived"]
    harness.drop(
        "s3://in/all.xlsx",
        {
            "train": train_rows(2),
            "test": [[c.upper() + "  " for c in reversed(test_header)], list(reversed(test_row))],
            "subm": [["PassengerId", "Survived"], [892, 1]],
        },
    )

    result = harness.ingest("s3://in/all.xlsx")

    assert [(s.sheet, s.table, s.status) for s in result.sheets] == [
        ("train", "train_data", Outcome.LOADED),
        ("test", "test_data", Outcome.LOADED),
        ("subm", "gender_submission", Outcome.LOADED),
    ]
    assert harness.warehouse.rows("test_data")[0]["Name"] == "Doe, Mr. John 892"


def test_unroutable_sheet_names_the_closest_contract_and_its_differences(
    harness: Harness,
) -> None:
    header = [c for c in TRAIN_HEADER if c != "Fare"] + ["Comment"]
    harness.drop("s3://in/t.xlsx", {"Odd": [header, [*passenger(1)[:11], "x"]]})

    result = harness.ingest("s3://in/t.xlsx")

    [sheet] = result.sheets
    assert sheet.status is Outcome.REJECTED
    assert sheet.error_code == "unroutable_sheet"
    assert sheet.error is not None
    assert "closest table train_data" in sheet.error
    assert "missing columns Fare" in sheet.error
    assert "extra columns Comment" in sheet.error
    assert [e.status for e in harness.warehouse.ledger] == [LoadStatus.REJECTED]
    assert len(harness.reports.reports) == 1


def test_a_routing_rule_wins_over_header_matching(harness: Harness) -> None:
    harness.drop(
        "s3://in/gender_submission.csv",
        {"gender_submission": [["PassengerId", "Survived"], [1, 0]]},
    )

    [sheet] = harness.ingest("s3://in/gender_submission.csv").sheets

    assert sheet.table == "gender_submission"


def test_unreadable_file_fails_with_its_reason_and_is_recorded(harness: Harness) -> None:
    harness.drop("s3://in/bad.xlsx", {})
    harness.reader.break_file(
        "s3://in/bad.xlsx",
        UnreadableFileError("s3://in/bad.xlsx: workbook is encrypted", code="encrypted_workbook"),
    )

    result = harness.ingest("s3://in/bad.xlsx")

    [sheet] = result.sheets
    assert (sheet.status, sheet.error_code) == (Outcome.FAILED, "encrypted_workbook")
    assert [e.status for e in harness.warehouse.ledger] == [LoadStatus.FAILED]


def test_missing_object_fails_cleanly(harness: Harness) -> None:
    [sheet] = harness.ingest("s3://in/nothing.xlsx").sheets
    assert (sheet.status, sheet.error_code) == (Outcome.FAILED, "not_found")


def test_rejects_report_holds_the_rejected_rows_with_their_problems(harness: Harness) -> None:
    harness.drop("s3://in/t.xlsx", {"S": [*train_rows(10), passenger(11, Age="abc", Sex="?")]})

    result = harness.ingest("s3://in/t.xlsx")

    [report] = harness.reports.reports
    [sheet] = report.sheets
    [row] = sheet.rows
    assert row.row == 12
    assert row.values[0] == "11"
    assert [(p.column, p.reason) for p in row.problems] == [
        ("Sex", RejectReason.NOT_ALLOWED), ("Age", RejectReason.TYPE),
    ]  # fmt: skip
    assert result.sheets[0].rejects_report is not None


def test_empty_and_ignored_sheets_are_reported_apart_and_never_refused(router: Router) -> None:
    notes = Router(router.catalog, rules_from_config([{"sheet": "Notes*", "ignore": True}]))
    harness = make_harness(notes)
    harness.drop(
        "s3://in/t.xlsx",
        {
            "Passengers": train_rows(3),
            "Sheet2": [],
            "Sheet3": [[None, "  "], []],
            "Notes": [["Collected by the purser"], ["PassengerId", "Survived"]],
        },
    )

    result = harness.ingest("s3://in/t.xlsx")

    assert result.ok
    assert [(s.sheet, s.status, s.table, s.error_code) for s in result.sheets] == [
        ("Sheet2", Outcome.EMPTY, None, None),
        ("Sheet3", Outcome.EMPTY, None, None),
        ("Notes", Outcome.IGNORED, None, None),
        ("Passengers", Outcome.LOADED, "train_data", None),
    ]
    assert [(e.status, e.sheets) for e in harness.warehouse.ledger] == [
        (LoadStatus.LOADED, ("Passengers",))
    ]
    assert harness.reports.reports == []


def test_a_sheet_blank_at_the_top_but_with_rows_below_is_not_empty(harness: Harness) -> None:
    blank_top: list[list[object]] = [[] for _ in range(40)]
    harness.drop("s3://in/t.xlsx", {"Late": [*blank_top, *train_rows(2)]})

    [sheet] = harness.ingest("s3://in/t.xlsx").sheets

    assert (sheet.status, sheet.error_code) == (Outcome.REJECTED, "unroutable_sheet")


def test_a_file_with_no_data_sheet_leaves_one_skipped_ledger_row(harness: Harness) -> None:
    harness.drop("s3://in/blank.xlsx", {"Sheet1": [], "Sheet2": []})

    result = harness.ingest("s3://in/blank.xlsx")

    assert result.ok
    assert {s.status for s in result.sheets} == {Outcome.EMPTY}
    [entry] = harness.warehouse.ledger
    assert (entry.status, entry.table, entry.sheets) == (
        LoadStatus.SKIPPED, None, ("Sheet1", "Sheet2"),
    )  # fmt: skip


def test_a_too_precise_decimal_is_a_rejected_cell_naming_the_type(harness: Harness) -> None:
    harness.drop("s3://in/t.xlsx", {"S": [*train_rows(11), passenger(12, Age=0.9167)]})

    [sheet] = harness.ingest("s3://in/t.xlsx").sheets

    assert (sheet.status, sheet.rows_loaded, sheet.rows_rejected) == (Outcome.LOADED, 11, 1)
    [reject] = sheet.rejects
    assert (reject.row, reject.column, reject.reason) == (13, "Age", RejectReason.TOO_PRECISE)
    assert reject.message == "0.9167 has more decimal places than decimal(5,2) allows"


def test_a_contract_that_opts_into_rounding_rounds_exactly(config: dict[str, Any]) -> None:
    tables = config["tables"]
    train = {**tables["train_data"], "rounding": "half_up"}
    catalog = catalog_from_mapping({**tables, "train_data": train}, config.get("defaults"))
    harness = make_harness(Router(catalog))
    harness.drop("s3://in/t.xlsx", {"S": [TRAIN_HEADER, passenger(1, Age=0.9167, Fare="7.12345")]})

    [sheet] = harness.ingest("s3://in/t.xlsx").sheets

    assert (sheet.status, sheet.rows_rejected) == (Outcome.LOADED, 0)
    [row] = harness.warehouse.rows("train_data")
    assert (row["Age"], row["Fare"]) == (Decimal("0.92"), Decimal("7.1235"))


def test_text_is_trimmed_unless_the_column_keeps_its_spaces(config: dict[str, Any]) -> None:
    tables = config["tables"]
    columns = [
        {**c, "trim": False} if c["name"] == "Ticket" else c
        for c in tables["train_data"]["columns"]
    ]
    train = {**tables["train_data"], "columns": columns}
    catalog = catalog_from_mapping({**tables, "train_data": train}, config.get("defaults"))
    harness = make_harness(Router(catalog))
    row = passenger(1, Name="  Doe, Mr. John ", Ticket=" A/5 21171\t")
    harness.drop("s3://in/t.xlsx", {"S": [TRAIN_HEADER, row]})

    harness.ingest("s3://in/t.xlsx")

    [loaded] = harness.warehouse.rows("train_data")
    assert (loaded["Name"], loaded["Ticket"]) == ("Doe, Mr. John", " A/5 21171\t")


def test_a_missing_and_an_unreadable_file_carry_the_source_as_opened(harness: Harness) -> None:
    harness.drop("s3://in/bad.xlsx", {})
    harness.reader.break_file("s3://in/bad.xlsx", UnreadableFileError("corrupt", code="corrupt"))

    [missing] = harness.ingest("s3://in/none.xlsx").sheets
    [broken] = harness.ingest("s3://in/bad.xlsx").sheets

    assert (missing.source, missing.error_code) == ("s3://in/none.xlsx", "not_found")
    assert (broken.source, broken.error_code) == ("s3://in/bad.xlsx", "corrupt")


def test_the_first_sheet_to_read_is_started_ahead_and_then_read(harness: Harness) -> None:
    rows = [["Title"], [], *train_rows(2)]
    harness.drop("s3://in/train.xlsx", {"Notes": [["just notes"]], "Passengers": rows})

    harness.ingest("s3://in/train.xlsx")

    workbook = harness.reader.workbooks["s3://in/train.xlsx"]
    assert workbook.prefetched == [("Passengers", 3)]
    assert workbook.reads == [("Passengers", 3)]


def test_a_version_already_loaded_is_started_ahead_but_never_read(harness: Harness) -> None:
    harness.drop("s3://in/train.xlsx", {"Passengers": train_rows(2)})
    harness.ingest("s3://in/train.xlsx")
    workbook = harness.reader.workbooks["s3://in/train.xlsx"]
    workbook.prefetched.clear()
    workbook.reads.clear()

    [sheet] = harness.ingest("s3://in/train.xlsx").sheets

    assert sheet.status is Outcome.SKIPPED
    assert workbook.prefetched == [("Passengers", 1)]
    assert workbook.reads == []
