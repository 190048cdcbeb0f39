"""One behaviour suite for every Warehouse: the in-memory fake, DuckDB and PostgreSQL.

What the fake lets the use-case tests assume, the real adapters must do too.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from itertools import count
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pyarrow as pa
import pytest

from application.ports import LoadReceipt, LoadRequest, Warehouse
from domain.arrow_types import arrow_schema
from domain.contracts import Column, LoadMode, TableContract, contract_from_mapping
from domain.errors import (
    DatalakepError,
    SchemaDriftError,
    TerminalError,
    WarehouseUnavailableError,
)
from domain.ledger import LedgerEntry, LedgerFilter, LoadStatus, SourceOrder
from domain.types import ColumnType
from infrastructure.warehouse.duckdb_warehouse import DuckDbWarehouse
from infrastructure.warehouse.postgres_warehouse import PostgresWarehouse
from tests.fakes.warehouse import InMemoryWarehouse
from tests.support.postgres import PostgresServer, fresh_database, url_credentials
from tests.support.redshift import redshift_through_proxy
from tests.support.warehouse_rows import FailNextMerge, table_rows

pytestmark = pytest.mark.integration

URI = "s3://in/people.xlsx"
T0 = datetime(2026, 1, 1, 12, 0, 0)
_ids = count(1)


def col(name: str, type_: str, nullable: bool = True) -> Column:
    return Column(name, ColumnType.parse(type_), nullable=nullable)


PEOPLE = TableContract(
    name="people",
    columns=(
        col("id", "integer", nullable=False),
        col("name", "varchar(50)", nullable=False),
        col("score", "decimal(8,2)"),
    ),
    primary_key=("id",),
)


def make_request(
    contract: TableContract,
    rows: Sequence[Mapping[str, Any]],
    version: str = "v1",
    uri: str = URI,
    load_id: str | None = None,
) -> LoadRequest:
    table = pa.Table.from_pylist([dict(r) for r in rows], schema=arrow_schema(contract))
    return LoadRequest(
        contract=contract,
        rows=table,
        source_uri=uri,
        source_version=version,
        load_id=load_id or f"load-{next(_ids):04d}",
        sheets=("Sheet1",),
        rows_read=len(rows) + 1,
        rows_rejected=1,
        started_at=T0,
    )


def person(pid: int, name: str | None = None, score: str | None = "1.50") -> dict[str, Any]:
    return {
        "id": pid,
        "name": name or f"person {pid}",
        "score": None if score is None else Decimal(score),
    }


def contract_rows(rows: list[dict[str, Any]], contract: TableContract) -> list[dict[str, Any]]:
    """The rows without their lineage columns."""
    return [{c: r[c] for c in contract.column_names} for r in rows]


def entry(
    load_id: str,
    finished_at: datetime,
    status: LoadStatus = LoadStatus.REJECTED,
    table: str | None = "people",
    error: str | None = "too many rejects",
    uri: str = URI,
    rejects_report: str | None = None,
) -> LedgerEntry:
    return LedgerEntry(
        load_id=load_id,
        source_uri=uri,
        source_version="v9",
        table=table,
        sheets=("A", "B é"),
        status=status,
        rows_read=10,
        rows_loaded=0,
        rows_rejected=5,
        started_at=finished_at - timedelta(seconds=3),
        finished_at=finished_at,
        error=error,
        rejects_report=rejects_report,
    )


@pytest.fixture
def fail_next_merge() -> FailNextMerge:
    return FailNextMerge()


@pytest.fixture(params=["memory", "duckdb", "postgres", "redshift"])
def warehouse(
    request: pytest.FixtureRequest, tmp_path: Path, fail_next_merge: FailNextMerge
) -> Iterator[Warehouse]:
    if request.param == "redshift":
        # redshift_connector, through a loopback proxy, on the same PostgreSQL server.
        server = request.getfixturevalue("postgres")
        with redshift_through_proxy(server, on_merged=fail_next_merge) as redshift:
            yield redshift
        return
    if request.param == "postgres":
        # Asked for here, not in the signature, so only these cases start the server.
        with fresh_database(request.getfixturevalue("postgres"), "behaviour") as url:
            made: Warehouse = PostgresWarehouse(url_credentials(url), on_merged=fail_next_merge)
            yield made
            made.close()
        return
    made = (
        InMemoryWarehouse()
        if request.param == "memory"
        else DuckDbWarehouse(str(tmp_path / "wh" / "test.duckdb"), on_merged=fail_next_merge)
    )
    yield made
    made.close()


Arm = Callable[[Exception], None]


@pytest.fixture
def fail_next_load(warehouse: Warehouse, fail_next_merge: FailNextMerge) -> Arm:
    """Call with an exception: the next load raises it after merging, before commit."""

    def arm(error: Exception) -> None:
        if isinstance(warehouse, InMemoryWarehouse):
            warehouse.fail_next_load = error
            return
        fail_next_merge.arm(error)

    return arm


def load(warehouse: Warehouse, request: LoadRequest) -> LoadReceipt:
    warehouse.ensure_table(request.contract)
    return warehouse.load(request)


# ---------------------------------------------------------------- create, load, skip


def test_ensure_table_creates_an_empty_table_and_accepts_the_same_contract_again(
    warehouse: Warehouse,
) -> None:
    warehouse.ensure_table(PEOPLE)
    warehouse.ensure_table(PEOPLE)

    assert table_rows(warehouse, "people") == []
    assert list(warehouse.history()) == []


def test_a_table_never_created_reads_as_empty(warehouse: Warehouse) -> None:
    assert table_rows(warehouse, "nothing_here") == []


def test_load_writes_rows_with_lineage_and_one_loaded_ledger_row(
    warehouse: Warehouse,
) -> None:
    request = make_request(PEOPLE, [person(2), person(1, score=None)])

    receipt = load(warehouse, request)

    assert receipt == LoadReceipt(LoadStatus.LOADED, request.load_id, 2)
    rows = table_rows(warehouse, "people")
    assert contract_rows(rows, PEOPLE) == [person(1, score=None), person(2)]
    assert {r["_load_id"] for r in rows} == {request.load_id}
    [loaded_at] = {r["_loaded_at"] for r in rows}
    assert loaded_at.tzinfo is None
    assert abs(loaded_at - datetime.now(UTC).replace(tzinfo=None)) < timedelta(minutes=1)
    [entry_] = warehouse.history()
    assert entry_ == LedgerEntry(
        load_id=request.load_id,
        source_uri=URI,
        source_version="v1",
        table="people",
        sheets=("Sheet1",),
        status=LoadStatus.LOADED,
        rows_read=3,
        rows_loaded=2,
        rows_rejected=1,
        started_at=T0,
        finished_at=entry_.finished_at,
    )
    assert warehouse.loaded_tables(URI, "v1") == frozenset({"people"})
    assert warehouse.loaded_tables(URI, "v2") == frozenset()


def test_the_same_version_again_is_skipped_and_the_table_left_untouched(
    warehouse: Warehouse,
) -> None:
    first = make_request(PEOPLE, [person(1), person(2)])
    load(warehouse, first)
    before = table_rows(warehouse, "people")

    again = make_request(PEOPLE, [person(1, "changed"), person(3)])
    receipt = load(warehouse, again)

    assert receipt == LoadReceipt(LoadStatus.SKIPPED, first.load_id, 0)
    assert table_rows(warehouse, "people") == before
    by_status = {e.status: e for e in warehouse.history()}
    assert set(by_status) == {LoadStatus.LOADED, LoadStatus.SKIPPED}
    skipped = by_status[LoadStatus.SKIPPED]
    assert (skipped.load_id, skipped.rows_loaded, skipped.table) == (again.load_id, 0, "people")
    assert warehouse.loaded_tables(URI, "v1") == frozenset({"people"})


def test_a_changed_version_upserts_by_key(warehouse: Warehouse) -> None:
    first = make_request(PEOPLE, [person(1), person(2), person(3)])
    load(warehouse, first)

    second = make_request(PEOPLE, [person(2, "renamed", "9.99"), person(4)], version="v2")
    receipt = load(warehouse, second)

    assert receipt == LoadReceipt(LoadStatus.LOADED, second.load_id, 2)
    rows = {r["id"]: r for r in table_rows(warehouse, "people")}
    assert sorted(rows) == [1, 2, 3, 4]
    assert rows[2]["name"] == "renamed"
    assert rows[2]["score"] == Decimal("9.99")
    assert [rows[i]["_load_id"] for i in (1, 2, 3, 4)] == [
        first.load_id, second.load_id, first.load_id, second.load_id,
    ]  # fmt: skip
    assert rows[2]["_loaded_at"] >= rows[1]["_loaded_at"]
    assert warehouse.loaded_tables(URI, "v2") == frozenset({"people"})


# ---------------------------------------------------------------- load modes

EVENTS = contract_from_mapping(
    "events",
    {
        "load_mode": "append",
        "columns": [{"name": "kind", "type": "varchar(10)"}, {"name": "n", "type": "bigint"}],
    },
)


def test_append_mode_keeps_every_load(warehouse: Warehouse) -> None:
    load(warehouse, make_request(EVENTS, [{"kind": "a", "n": 1}, {"kind": None, "n": 2}]))
    load(warehouse, make_request(EVENTS, [{"kind": "a", "n": 1}], version="v2"))

    assert contract_rows(table_rows(warehouse, "events"), EVENTS) == [
        {"kind": None, "n": 2}, {"kind": "a", "n": 1}, {"kind": "a", "n": 1},
    ]  # fmt: skip


def test_append_mode_refuses_a_key_already_in_the_table_and_keeps_nothing(
    warehouse: Warehouse,
) -> None:
    keyed = TableContract("keyed", PEOPLE.columns, ("id",), LoadMode.APPEND)
    load(warehouse, make_request(keyed, [person(1)]))
    before = table_rows(warehouse, "keyed")

    with pytest.raises(TerminalError):
        load(warehouse, make_request(keyed, [person(2), person(1)], version="v2"))

    assert table_rows(warehouse, "keyed") == before
    assert [e.status for e in warehouse.history()] == [LoadStatus.LOADED]


@pytest.mark.parametrize("mode", list(LoadMode))
def test_rows_that_repeat_a_key_are_refused_whole_in_every_mode(
    warehouse: Warehouse, mode: LoadMode
) -> None:
    keyed = TableContract("keyed", PEOPLE.columns, ("id",), mode)
    load(warehouse, make_request(keyed, [person(1), person(2)]))
    before = table_rows(warehouse, "keyed")

    with pytest.raises(TerminalError) as caught:
        load(warehouse, make_request(keyed, [person(3), person(4), person(3, "again")], "v2"))

    assert caught.value.code == "constraint_violation"
    assert "3" in str(caught.value)
    assert table_rows(warehouse, "keyed") == before
    assert [e.status for e in warehouse.history()] == [LoadStatus.LOADED]


def test_a_two_column_key_repeats_only_when_both_parts_do(warehouse: Warehouse) -> None:
    pair = TableContract("pair", PEOPLE.columns, ("id", "name"))
    distinct = [person(1, "a"), person(1, "b"), person(2, "a")]
    load(warehouse, make_request(pair, distinct))

    with pytest.raises(TerminalError) as caught:
        load(warehouse, make_request(pair, [*distinct, person(1, "b")], "v2"))

    assert caught.value.code == "constraint_violation"
    assert "'b'" in str(caught.value)
    assert len(table_rows(warehouse, "pair")) == 3
    assert [e.status for e in warehouse.history()] == [LoadStatus.LOADED]


def test_replace_mode_makes_the_file_the_whole_table(warehouse: Warehouse) -> None:
    whole = TableContract("whole", PEOPLE.columns, ("id",), LoadMode.REPLACE)
    load(warehouse, make_request(whole, [person(1), person(2), person(3)]))

    second = make_request(whole, [person(3, "again"), person(9)], version="v2")
    load(warehouse, second)

    rows = table_rows(warehouse, "whole")
    assert contract_rows(rows, whole) == [person(3, "again"), person(9)]
    assert {r["_load_id"] for r in rows} == {second.load_id}


# ---------------------------------------------------------------- drift and failures


def test_an_existing_table_of_another_contract_is_drift_naming_each_column(
    warehouse: Warehouse,
) -> None:
    warehouse.ensure_table(PEOPLE)
    drifted = TableContract(
        "people",
        (
            col("id", "varchar(10)", nullable=False),  # type changed
            col("score", "decimal(8,2)", nullable=False),  # nullability changed
            col("email", "varchar(100)"),  # new; "name" is gone
        ),
        ("id",),
    )

    with pytest.raises(SchemaDriftError) as caught:
        warehouse.ensure_table(drifted)

    message = str(caught.value)
    assert "people" in message
    assert "column email: missing in table" in message
    assert "column name: unexpected in table" in message
    assert "column id: type differs: expected VARCHAR(10) found" in message
    assert "column score: nullability differs: expected NOT NULL found NULL" in message


def test_a_failure_mid_load_leaves_no_rows_and_no_ledger_row(
    warehouse: Warehouse, fail_next_load: Arm
) -> None:
    warehouse.ensure_table(PEOPLE)
    fail_next_load(RuntimeError("injected"))

    with pytest.raises(RuntimeError, match="injected"):
        warehouse.load(make_request(PEOPLE, [person(1), person(2)]))

    assert table_rows(warehouse, "people") == []
    assert list(warehouse.history()) == []
    assert warehouse.loaded_tables(URI, "v1") == frozenset()
    # Nothing was half-done: the same load now goes through.
    assert warehouse.load(make_request(PEOPLE, [person(1)])).status is LoadStatus.LOADED


def test_a_failed_upsert_keeps_the_previous_rows(warehouse: Warehouse, fail_next_load: Arm) -> None:
    load(warehouse, make_request(PEOPLE, [person(1), person(2)]))
    before = table_rows(warehouse, "people")
    fail_next_load(RuntimeError("injected"))

    with pytest.raises(RuntimeError):
        warehouse.load(make_request(PEOPLE, [person(2, "new"), person(3)], version="v2"))

    assert table_rows(warehouse, "people") == before
    assert [e.source_version for e in warehouse.history()] == ["v1"]


# ---------------------------------------------------------------- ledger


def test_history_is_newest_first_and_honours_the_limit(warehouse: Warehouse) -> None:
    for load_id, minutes in [("b", 2), ("a", 1), ("d", 3), ("c", 3)]:
        warehouse.record(entry(load_id, T0 + timedelta(minutes=minutes)))

    assert [e.load_id for e in warehouse.history()] == ["c", "d", "b", "a"]
    assert [e.load_id for e in warehouse.history(limit=2)] == ["c", "d"]
    assert list(warehouse.history(limit=0)) == []
    with pytest.raises(ValueError, match="history limit"):
        warehouse.history(limit=-1)


def test_history_filters_by_source_glob_status_table_time_and_load_id(
    warehouse: Warehouse,
) -> None:
    rows = [
        ("a", "s3://in/2026/jan_a.xlsx", LoadStatus.REJECTED, "people", 1),
        ("b", "s3://in/2026/janXa.xlsx", LoadStatus.FAILED, None, 2),
        ("c", "s3://in/2026/100%[1].csv", LoadStatus.SKIPPED, "people", 3),
        ("d", "s3://other/2026/jan_a.xlsx", LoadStatus.REJECTED, "pets", 4),
    ]
    for load_id, uri, status, table, minutes in rows:
        warehouse.record(entry(load_id, T0 + timedelta(minutes=minutes), status, table, uri=uri))

    def ids(**where: Any) -> list[str]:
        limit = where.pop("limit", None)
        return [e.load_id for e in warehouse.history(limit, LedgerFilter(**where))]

    assert ids() == ["d", "c", "b", "a"]
    assert ids(source="s3://in/*") == ["c", "b", "a"]
    assert ids(source="*/jan_a.xlsx") == ["d", "a"]  # '_' is literal, not any character
    assert ids(source="*/jan?a.xlsx") == ["d", "b", "a"]
    assert ids(source="s3://in/2026/100%[1].csv") == ["c"]  # '%' and '[' are literal
    assert ids(source="S3://IN/*") == []  # case-sensitive, as URIs are
    assert ids(status=LoadStatus.REJECTED) == ["d", "a"]
    assert ids(table="people") == ["c", "a"]
    assert ids(since=T0 + timedelta(minutes=2)) == ["d", "c", "b"]
    assert ids(source="s3://in/*", status=LoadStatus.REJECTED, table="people") == ["a"]
    assert ids(source="s3://in/*", limit=1) == ["c"]
    assert ids(load_id="b") == ["b"]
    assert ids(load_id="nope") == []


def test_the_ledger_keeps_where_the_rejects_report_is(warehouse: Warehouse) -> None:
    report = "s3://in/rejects/people.0123456789abcdef.rejects.xlsx"
    warehouse.record(entry("with", T0, rejects_report=report))
    warehouse.record(entry("without", T0 - timedelta(minutes=1)))
    request = replace(make_request(PEOPLE, [person(1)]), rejects_report=report)
    load(warehouse, request)

    found = {e.load_id: e.rejects_report for e in warehouse.history()}
    assert found == {"with": report, "without": None, request.load_id: report}


def test_recorded_versions_are_every_status_of_exactly_the_uris_asked_for(
    warehouse: Warehouse,
) -> None:
    odd = "s3://in/100% 'odd' %s Übersicht.xlsx"
    load(warehouse, make_request(PEOPLE, [person(1)]))
    load(warehouse, make_request(PEOPLE, [person(1)]))  # skipped
    warehouse.record(entry("r1", T0))  # rejected, version v9
    failed = entry("f1", T0, LoadStatus.FAILED, table=None)
    warehouse.record(replace(failed, source_uri=odd, source_version="sha256:ab"))
    warehouse.record(replace(failed, load_id="f2", source_uri="s3://in/other.xlsx"))
    # Sorting before the others, they push them into the third batch of URIs.
    unknown = [f"s3://in/0-unknown/{n:05d}.xlsx" for n in range(2500)]

    found = warehouse.recorded_versions([*unknown, URI, odd, URI.upper()])

    assert found == {(URI, "v1"), (URI, "v9"), (odd, "sha256:ab")}
    assert warehouse.recorded_versions([]) == frozenset()


def test_record_keeps_a_rejected_attempt_exactly(warehouse: Warehouse) -> None:
    rejected = entry("r1", T0, error='bad "quote", and é')
    no_table = entry("r2", T0 + timedelta(seconds=1), LoadStatus.FAILED, table=None, error=None)

    warehouse.record(rejected)
    warehouse.record(no_table)

    assert list(warehouse.history()) == [no_table, rejected]
    assert warehouse.loaded_tables(URI, "v9") == frozenset()


def test_record_stores_aware_times_as_naive_utc(warehouse: Warehouse) -> None:
    paris = timezone(timedelta(hours=1))
    warehouse.record(entry("r1", datetime(2026, 1, 1, 13, 0, tzinfo=paris)))

    [stored] = warehouse.history()

    assert stored.finished_at == datetime(2026, 1, 1, 12, 0)


def test_record_refuses_a_loaded_row(warehouse: Warehouse) -> None:
    with pytest.raises(ValueError, match="written by load"):
        warehouse.record(entry("x", T0, LoadStatus.LOADED))


# ---------------------------------------------------------------- version order

OLDER = SourceOrder(sequencer="005F40A1C2", modified_at=T0)
NEWER = SourceOrder(sequencer="005F40A1C3", modified_at=T0 + timedelta(seconds=5))


def ordered(request: LoadRequest, order: SourceOrder) -> LoadRequest:
    return replace(request, source_order=order)


@pytest.mark.parametrize("by", ["sequencer", "last_modified"])
def test_an_older_version_committing_after_a_newer_one_is_stale_and_changes_nothing(
    warehouse: Warehouse, by: str
) -> None:
    def order(of: SourceOrder) -> SourceOrder:
        return of if by == "sequencer" else SourceOrder(modified_at=of.modified_at)

    v2 = ordered(make_request(PEOPLE, [person(1, "v2")], version="v2"), order(NEWER))
    load(warehouse, v2)
    before = table_rows(warehouse, "people")
    v1 = ordered(make_request(PEOPLE, [person(1, "v1"), person(2)]), order(OLDER))

    receipt = load(warehouse, v1)

    assert receipt == LoadReceipt(LoadStatus.STALE, v2.load_id, 0)
    assert table_rows(warehouse, "people") == before
    stale = next(e for e in warehouse.history() if e.status is LoadStatus.STALE)
    assert (stale.load_id, stale.source_version, stale.rows_loaded) == (v1.load_id, "v1", 0)
    assert stale.source_order == order(OLDER).normalised()
    assert warehouse.loaded_tables(URI, "v1") == frozenset()


def test_a_newer_version_after_an_older_one_loads_and_the_ledger_keeps_the_order(
    warehouse: Warehouse,
) -> None:
    v1 = ordered(make_request(PEOPLE, [person(1, "v1")]), OLDER)
    v2 = ordered(make_request(PEOPLE, [person(1, "v2")], version="v2"), NEWER)
    load(warehouse, v1)

    receipt = load(warehouse, v2)

    assert receipt.status is LoadStatus.LOADED
    assert [r["name"] for r in table_rows(warehouse, "people")] == ["v2"]
    by_version = {e.source_version: e for e in warehouse.history()}
    assert by_version["v2"].source_order == NEWER.normalised()
    assert by_version["v1"].finished_at <= by_version["v2"].finished_at
    assert by_version["v2"].finished_at >= by_version["v2"].started_at


def test_the_sequencer_orders_versions_that_last_modified_cannot(warehouse: Warehouse) -> None:
    same_second = replace(NEWER, modified_at=T0)
    load(warehouse, ordered(make_request(PEOPLE, [person(1, "v2")], version="v2"), same_second))

    receipt = load(warehouse, ordered(make_request(PEOPLE, [person(1, "v1")]), OLDER))

    assert receipt.status is LoadStatus.STALE
    assert [r["name"] for r in table_rows(warehouse, "people")] == ["v2"]


def test_order_is_per_source_and_unknown_order_never_refuses(warehouse: Warehouse) -> None:
    other = "s3://in/other.xlsx"
    load(warehouse, ordered(make_request(PEOPLE, [person(1)], version="v2"), NEWER))

    elsewhere = ordered(make_request(PEOPLE, [person(2)], uri=other), OLDER)
    unknown = make_request(PEOPLE, [person(3)], version="v0")

    assert load(warehouse, elsewhere).status is LoadStatus.LOADED
    assert load(warehouse, unknown).status is LoadStatus.LOADED


def test_the_ledger_holds_any_legal_s3_uri(warehouse: Warehouse) -> None:
    longest = "s3://" + "b" * 63 + "/" + "k/é" * 256  # a 1,024-byte key
    request = make_request(PEOPLE, [person(1)], uri=longest)

    assert load(warehouse, request).status is LoadStatus.LOADED
    [entry_] = warehouse.history()
    assert entry_.source_uri == longest
    assert warehouse.loaded_tables(longest, "v1") == frozenset({"people"})
    assert warehouse.recorded_versions([longest]) == {(longest, "v1")}


# ---------------------------------------------------------------- values and names

TYPED = contract_from_mapping(
    "typed",
    {
        "primary_key": ["k"],
        "columns": [
            {"name": "k", "type": "smallint", "nullable": False},
            {"name": "big", "type": "bigint"},
            {"name": "amount", "type": "decimal(38,10)"},
            {"name": "ratio", "type": "double precision"},
            {"name": "flag", "type": "boolean"},
            {"name": "day", "type": "date"},
            {"name": "at", "type": "timestamp"},
            {"name": "code", "type": "char(3)"},
            {"name": "note", "type": "varchar(65535)"},
        ],
    },
)


def test_values_of_every_type_round_trip(warehouse: Warehouse) -> None:
    full = {
        "k": 1,
        "big": 2**63 - 1,
        "amount": Decimal("-1234567890123456789012345678.0123456789"),
        "ratio": 0.1,
        "flag": True,
        "day": date(1912, 4, 15),
        "at": datetime(1912, 4, 15, 2, 20, 0, 123456),
        "code": "ABC",
        "note": "é\n\"quoted\", 'single'; \\ ☃",
    }
    empty = {"k": 2, **{c: None for c in TYPED.column_names if c != "k"}}
    falsy = {**empty, "k": 3, "big": 0, "amount": Decimal(0), "ratio": 0.0, "flag": False}

    load(warehouse, make_request(TYPED, [full, empty, falsy]))

    assert contract_rows(table_rows(warehouse, "typed"), TYPED) == [full, empty, falsy]


def test_hostile_and_reserved_names_are_quoted_as_written(warehouse: Warehouse) -> None:
    victim = TableContract("t", (col("id", "integer", nullable=False),), ("id",))
    load(warehouse, make_request(victim, [{"id": 1}]))
    hostile = TableContract(
        'x"; DROP TABLE t;--',
        (
            col("select", "integer", nullable=False),
            col("Mixed Case", "varchar(20)"),
            col('say "hi"', "varchar(20)"),
            col("from", "varchar(5)"),
        ),
        ("select",),
    )
    row = {"select": 1, "Mixed Case": "MiXeD", 'say "hi"': 'a "b"', "from": None}

    load(warehouse, make_request(hostile, [row]))
    load(warehouse, make_request(hostile, [{**row, "from": "x"}], version="v2"))
    warehouse.ensure_table(hostile)

    assert contract_rows(table_rows(warehouse, hostile.name), hostile) == [{**row, "from": "x"}]
    assert contract_rows(table_rows(warehouse, "t"), victim) == [{"id": 1}]
    assert warehouse.loaded_tables(URI, "v2") == frozenset({hostile.name})


# ---------------------------------------------------------------- DuckDB only


def test_duckdb_creates_the_parent_directory_and_keeps_state_across_instances(
    tmp_path: Path,
) -> None:
    path = tmp_path / "a" / "b" / "wh.duckdb"
    first = DuckDbWarehouse(str(path))
    request = make_request(PEOPLE, [person(1)])
    load(first, request)
    first.close()

    again = DuckDbWarehouse(str(path))
    try:
        for contract in (PEOPLE, TYPED, EVENTS):  # the catalog, re-read, matches
            again.ensure_table(contract)
        receipt = again.load(make_request(PEOPLE, [person(1)]))
        assert receipt == LoadReceipt(LoadStatus.SKIPPED, request.load_id, 0)
        assert [r["id"] for r in table_rows(again, "people")] == [1]
    finally:
        again.close()


def test_duckdb_reports_drift_against_a_table_made_by_hand(tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(
            "CREATE TABLE people (id BIGINT NOT NULL, name VARCHAR NOT NULL, "
            "score DECIMAL(9,2), _load_id VARCHAR NOT NULL, "
            "extra INTEGER)"
        )
    warehouse = DuckDbWarehouse(str(path))
    try:
        with pytest.raises(SchemaDriftError) as caught:
            warehouse.ensure_table(PEOPLE)
    finally:
        warehouse.close()

    message = str(caught.value)
    assert "column id: type differs: expected INTEGER found BIGINT" in message
    assert "column score: type differs: expected DECIMAL(8,2) found DECIMAL(9,2)" in message
    assert "column _loaded_at: missing in table" in message
    assert "column extra: unexpected in table" in message
    assert "column name" not in message  # VARCHAR without a length is all DuckDB reports


def test_duckdb_stores_sheets_as_a_json_array(tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    warehouse = DuckDbWarehouse(str(path), ledger_table="My Ledger")
    warehouse.record(entry("r1", T0))
    warehouse.close()

    with duckdb.connect(str(path)) as con:
        stored = con.execute('SELECT sheets, status FROM "My Ledger"').fetchall()

    assert stored == [('["A", "B é"]', "rejected")]


def test_duckdb_held_by_another_process_is_unavailable_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "held.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
            "sys.stdin.read()",
            str(path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        warehouse = DuckDbWarehouse(str(path))
        with pytest.raises(WarehouseUnavailableError) as caught:
            warehouse.history()
        assert str(path) in str(caught.value)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)

    assert list(warehouse.history()) == []  # once released, the same instance works
    warehouse.close()


# A ledger as the first release created it, before rejects_report.
FIRST_LEDGER = """CREATE TABLE datalakep_load_ledger (
    load_id VARCHAR(36) NOT NULL, source_uri VARCHAR(1024) NOT NULL,
    source_version VARCHAR(256) NOT NULL, table_name VARCHAR(127),
    sheets VARCHAR(65535) NOT NULL, status VARCHAR(16) NOT NULL,
    rows_read BIGINT NOT NULL, rows_loaded BIGINT NOT NULL, rows_rejected BIGINT NOT NULL,
    started_at TIMESTAMP NOT NULL, finished_at TIMESTAMP NOT NULL, error VARCHAR(65535))"""
OLD_ROW = (
    "INSERT INTO datalakep_load_ledger VALUES ('old', 's3://in/old.xlsx', 'v1', 'people', "
    "'[\"S\"]', 'loaded', 3, 3, 0, '2026-01-01 12:00:00', '2026-01-01 12:00:01', NULL)"
)


@pytest.mark.parametrize("engine", ["duckdb", "postgres"])
def test_an_existing_ledger_gains_the_report_column_and_keeps_its_rows(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    def open_old() -> Iterator[Warehouse]:
        if engine == "duckdb":
            path = tmp_path / "old.duckdb"
            with duckdb.connect(str(path)) as con:
                con.execute(FIRST_LEDGER)
                con.execute(OLD_ROW)
            yield DuckDbWarehouse(str(path))
            return
        import psycopg

        with fresh_database(request.getfixturevalue("postgres"), "migrate") as url:
            with psycopg.connect(url, autocommit=True) as con:
                con.execute(FIRST_LEDGER)
                con.execute(OLD_ROW)
            yield PostgresWarehouse(url_credentials(url))

    for warehouse in open_old():
        try:
            warehouse.record(entry("new", T0 + timedelta(days=1), rejects_report="s3://r.xlsx"))
            found = {e.load_id: (e.status, e.rejects_report) for e in warehouse.history()}
        finally:
            warehouse.close()
        assert found == {
            "new": (LoadStatus.REJECTED, "s3://r.xlsx"),
            "old": (LoadStatus.LOADED, None),
        }


# ---------------------------------------------------------------- PostgreSQL only


def test_a_table_changed_behind_the_warehouse_is_checked_again_once_a_load_into_it_fails(
    postgres: PostgresServer,
) -> None:
    # A table found to match is not checked on every file (issue 16); a load that
    # fails must make the next ensure_table look at the catalog again.
    with fresh_database(postgres, "recheck") as url:
        warehouse = PostgresWarehouse(url_credentials(url))
        try:
            load(warehouse, make_request(PEOPLE, [person(1)]))
            with psycopg.connect(url, autocommit=True) as con:
                con.execute("DROP TABLE people")
                con.execute("CREATE TABLE people (id integer PRIMARY KEY)")

            with pytest.raises(DatalakepError):
                load(warehouse, make_request(PEOPLE, [person(2)], version="v2"))
            with pytest.raises(SchemaDriftError) as caught:
                warehouse.ensure_table(PEOPLE)
        finally:
            warehouse.close()

    assert "column name: missing in table" in str(caught.value)
