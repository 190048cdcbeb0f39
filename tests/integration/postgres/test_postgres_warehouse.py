"""PostgresWarehouse against a real server: what the shared behaviour suite cannot show.

Concurrency between instances, retries, lost connections, COPY's NULL handling, drift
as PostgreSQL's catalog reports it, and names that would break unquoted SQL.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import psycopg.errors
import pyarrow as pa
import pytest

from application.ports import LoadRequest
from domain.contracts import LoadMode, TableContract, contract_from_mapping
from domain.errors import (
    ConfigurationError,
    SchemaDriftError,
    TerminalError,
    TransientError,
    WarehouseUnavailableError,
)
from domain.ledger import LoadStatus, SourceOrder
from infrastructure.warehouse.credentials import Credentials
from infrastructure.warehouse.factory import warehouse_from_url
from infrastructure.warehouse.postgres_options import PostgresOptions
from infrastructure.warehouse.postgres_warehouse import PostgresWarehouse
from infrastructure.warehouse.sql_warehouse import OnMerged
from tests.integration.warehouse.test_warehouse_behaviour import (
    PEOPLE,
    T0,
    URI,
    col,
    contract_rows,
    entry,
    make_request,
    person,
)
from tests.support.postgres import PostgresServer, fresh_database, url_credentials
from tests.support.warehouse_rows import FailNextMerge, table_rows

pytestmark = pytest.mark.integration

# Retries as the service does them, only quicker.
FAST = {"retry_base_delay_s": 0.01, "retry_max_delay_s": 0.05}

Opener = Callable[..., PostgresWarehouse]


@pytest.fixture
def db_url(postgres: PostgresServer) -> Iterator[str]:
    with fresh_database(postgres, "pgwh") as url:
        yield url


@pytest.fixture
def open_warehouse(db_url: str) -> Iterator[Opener]:
    """Open any number of instances on the test's database; all closed at the end."""
    made: list[PostgresWarehouse] = []

    def open_(
        ledger_table: str = "datalakep_load_ledger",
        on_merged: OnMerged | None = None,
        **options: Any,
    ) -> PostgresWarehouse:
        warehouse = PostgresWarehouse(
            url_credentials(db_url),
            ledger_table=ledger_table,
            options={**FAST, **options},
            on_merged=on_merged,
        )
        made.append(warehouse)
        return warehouse

    yield open_
    for warehouse in made:
        warehouse.close()


@pytest.fixture
def warehouse(open_warehouse: Opener) -> PostgresWarehouse:
    return open_warehouse()


def query(url: str, statement: str, params: tuple[Any, ...] | None = None) -> list[Any]:
    """``statement`` on a connection of its own, outside the warehouse under test."""
    with psycopg.connect(url, autocommit=True) as con:
        cursor = con.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def ledger(url: str) -> list[tuple[str, str]]:
    return query(url, "SELECT status, source_version FROM datalakep_load_ledger ORDER BY 1, 2")


# ---------------------------------------------------------------- create, load, skip, upsert


def test_create_load_skip_and_upsert(warehouse: PostgresWarehouse, db_url: str) -> None:
    warehouse.ensure_table(PEOPLE)
    first = make_request(PEOPLE, [person(1), person(2)])

    assert warehouse.load(first).status is LoadStatus.LOADED
    skipped = warehouse.load(make_request(PEOPLE, [person(1, "changed")]))
    upserted = warehouse.load(make_request(PEOPLE, [person(2, "new", "7.25")], version="v2"))

    assert (skipped.status, skipped.load_id, skipped.rows_loaded) == (
        LoadStatus.SKIPPED, first.load_id, 0,
    )  # fmt: skip
    assert upserted.status is LoadStatus.LOADED
    assert query(db_url, 'SELECT id, name, score FROM people ORDER BY id') == [
        (1, "person 1", Decimal("1.50")), (2, "new", Decimal("7.25")),
    ]  # fmt: skip
    assert ledger(db_url) == [("loaded", "v1"), ("loaded", "v2"), ("skipped", "v1")]
    columns = query(
        db_url,
        "SELECT column_name, data_type, character_maximum_length, numeric_precision, "
        "numeric_scale, is_nullable FROM information_schema.columns "
        "WHERE table_name = 'people' ORDER BY ordinal_position",
    )
    assert columns[:3] == [
        ("id", "integer", None, 32, 0, "NO"),
        ("name", "character varying", 50, None, None, "NO"),
        ("score", "numeric", None, 8, 2, "YES"),
    ]
    assert [c[0] for c in columns[3:]] == ["_load_id", "_loaded_at"]


def test_a_failure_mid_load_leaves_no_rows_no_ledger_row_and_no_staging_table(
    open_warehouse: Opener, db_url: str
) -> None:
    failing = FailNextMerge()
    warehouse = open_warehouse(on_merged=failing)
    warehouse.ensure_table(PEOPLE)
    failing.arm(RuntimeError("injected"))
    with pytest.raises(RuntimeError, match="injected"):
        warehouse.load(make_request(PEOPLE, [person(1), person(2)]))

    assert query(db_url, "SELECT count(*) FROM people") == [(0,)]
    assert ledger(db_url) == []
    assert warehouse.load(make_request(PEOPLE, [person(1)])).status is LoadStatus.LOADED
    staged = "SELECT count(*) FROM pg_class WHERE relname LIKE '_datalakep_staging_%'"
    assert query(db_url, staged) == [(0,)]


def test_rows_the_table_refuses_are_a_terminal_constraint_violation(
    warehouse: PostgresWarehouse, db_url: str
) -> None:
    warehouse.ensure_table(PEOPLE)
    too_long = make_request(PEOPLE, [person(1), person(2, "x" * 51)])
    no_name = pa.table(
        {"id": pa.array([3], pa.int32()), "name": pa.array([None], pa.string()),
         "score": pa.array([None], pa.decimal128(8, 2))}
    )  # fmt: skip
    # The validator never lets this through; the table's NOT NULL is the last line.
    null_name = replace(make_request(PEOPLE, [person(3)], version="v2"), rows=no_name)

    for request in (too_long, null_name):
        with pytest.raises(TerminalError) as caught:
            warehouse.load(request)
        assert caught.value.code == "constraint_violation"
        assert "people" in str(caught.value)

    assert query(db_url, "SELECT count(*) FROM people") == [(0,)]
    assert ledger(db_url) == []


@pytest.mark.parametrize("first", ["straight", "merged"])
def test_a_large_load_is_the_same_written_straight_or_staged_and_merged(
    warehouse: PostgresWarehouse, db_url: str, first: str
) -> None:
    warehouse.ensure_table(PEOPLE)
    if first == "merged":
        # A row already there sends the upsert through staging, ANALYZE and merge.
        warehouse.load(make_request(PEOPLE, [person(7, "old")], version="v0"))
    n = 120_000  # above ANALYZE_MIN_ROWS, and three COPY chunks
    rows = [person(i, f'name, "{i}"', f"{i % 1000}.25") for i in range(1, n + 1)]
    request = make_request(PEOPLE, rows)

    receipt = warehouse.load(request)

    assert receipt.rows_loaded == n
    assert query(db_url, "SELECT count(*), sum(score) FROM people") == [
        (n, sum(Decimal(f"{i % 1000}.25") for i in range(1, n + 1))),
    ]
    assert query(db_url, "SELECT name FROM people WHERE id = 7") == [('name, "7"',)]
    assert query(db_url, "SELECT DISTINCT _load_id FROM people") == [(request.load_id,)]
    [(loaded_at,)] = query(db_url, "SELECT DISTINCT _loaded_at FROM people")
    assert abs(loaded_at - datetime.now(UTC).replace(tzinfo=None)) < timedelta(minutes=1)


# ---------------------------------------------------------------- concurrency


def _hold(_: LoadRequest) -> None:
    """Hold each merge's transaction open a while, so that racing loads overlap."""
    time.sleep(0.3)


def _race(warehouses: list[PostgresWarehouse], requests: list[Any]) -> list[Any]:
    """Load each request on its own instance in its own thread, all released at once."""
    barrier = threading.Barrier(len(warehouses))
    results: list[Any] = [None] * len(warehouses)

    def run(i: int) -> None:
        barrier.wait(timeout=10)
        try:
            results[i] = warehouses[i].load(requests[i])
        except Exception as exc:  # noqa: BLE001 - handed to the asserting thread
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(warehouses))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


def test_two_loads_of_one_version_at_once_end_as_one_load_and_one_skip(
    open_warehouse: Opener, db_url: str
) -> None:
    a, b = open_warehouse(on_merged=_hold), open_warehouse(on_merged=_hold)
    a.ensure_table(PEOPLE)
    b.ensure_table(PEOPLE)
    rows = [person(1), person(2), person(3)]
    requests = [make_request(PEOPLE, rows), make_request(PEOPLE, rows)]

    results = _race([a, b], requests)

    assert all(not isinstance(r, BaseException) for r in results), results
    by_status = {r.status: r for r in results}
    assert set(by_status) == {LoadStatus.LOADED, LoadStatus.SKIPPED}
    assert by_status[LoadStatus.SKIPPED].load_id == by_status[LoadStatus.LOADED].load_id
    assert query(db_url, "SELECT id, count(*) FROM people GROUP BY id ORDER BY id") == [
        (1, 1), (2, 1), (3, 1),
    ]  # fmt: skip
    assert ledger(db_url) == [("loaded", "v1"), ("skipped", "v1")]


def test_two_versions_with_overlapping_keys_at_once_both_merge(
    open_warehouse: Opener, db_url: str
) -> None:
    a, b = open_warehouse(on_merged=_hold), open_warehouse(on_merged=_hold)
    a.ensure_table(PEOPLE)
    b.ensure_table(PEOPLE)
    v1 = make_request(PEOPLE, [person(1), person(2, "v1"), person(3, "v1")])
    v2 = make_request(PEOPLE, [person(2, "v2"), person(3, "v2"), person(4)], version="v2")

    results = _race([a, b], [v1, v2])

    assert all(not isinstance(r, BaseException) for r in results), results
    assert [r.status for r in results] == [LoadStatus.LOADED, LoadStatus.LOADED]
    names = dict(query(db_url, "SELECT id, name FROM people"))
    assert sorted(names) == [1, 2, 3, 4]
    assert names[2] == names[3] in ("v1", "v2")  # one merge wholly after the other


# ---------------------------------------------------------------- drift

DRIFT = contract_from_mapping(
    "people",
    {
        "primary_key": ["id"],
        "columns": [
            {"name": "id", "type": "integer", "nullable": False},
            {"name": "name", "type": "varchar(50)", "nullable": False},
            {"name": "score", "type": "decimal(8,2)"},
            {"name": "code", "type": "char(3)"},
            {"name": "note", "type": "varchar(20)"},
            {"name": "amount", "type": "decimal(10,2)"},
            {"name": "label", "type": "varchar(10)"},
            {"name": "flag", "type": "boolean"},
            {"name": "Kind", "type": "varchar(5)"},
        ],
    },
)


def test_drift_against_a_table_made_by_hand_names_every_column(
    warehouse: PostgresWarehouse, db_url: str
) -> None:
    query(
        db_url,
        "CREATE TABLE people (id bigint NOT NULL, name varchar(40) NOT NULL, "
        "score numeric(9,2), code char(2), note text, amount numeric, label varchar, "
        "flag boolean NOT NULL, kind varchar(5), _load_id varchar(36) NOT NULL, "
        "extra integer)",
    )

    with pytest.raises(SchemaDriftError) as caught:
        warehouse.ensure_table(DRIFT)

    assert sorted(caught.value.details["differences"]) == sorted([
        "column id: type differs: expected INTEGER found bigint",
        "column name: type differs: expected VARCHAR(50) found character varying(40)",
        "column score: type differs: expected DECIMAL(8,2) found numeric(9,2)",
        "column code: type differs: expected CHAR(3) found character(2)",
        "column note: type differs: expected VARCHAR(20) found text",
        "column amount: type differs: expected DECIMAL(10,2) found numeric",
        "column label: type differs: expected VARCHAR(10) found character varying",
        "column flag: nullability differs: expected NULL found NOT NULL",
        "column Kind: missing in table",  # identifiers are case-sensitive here
        "column kind: unexpected in table",
        "column _loaded_at: missing in table",
        "column extra: unexpected in table",
    ])  # fmt: skip
    assert str(caught.value).startswith("table people differs from its contract")
    assert query(db_url, "SELECT count(*) FROM information_schema.columns "
                 "WHERE table_name = 'people'") == [(11,)]  # fmt: skip


def test_a_matching_table_made_by_hand_is_accepted(
    warehouse: PostgresWarehouse, db_url: str
) -> None:
    query(
        db_url,
        "CREATE TABLE people (id int4 PRIMARY KEY, name character varying(50) NOT NULL, "
        "score numeric(8,2), _load_id varchar(36) NOT NULL, "
        "_loaded_at timestamp NOT NULL)",
    )

    warehouse.ensure_table(PEOPLE)

    assert warehouse.load(make_request(PEOPLE, [person(1)])).status is LoadStatus.LOADED
    # No default on its _loaded_at: the load sent the time itself.
    [(loaded_at,)] = query(db_url, "SELECT _loaded_at FROM people")
    assert abs(loaded_at - datetime.now(UTC).replace(tzinfo=None)) < timedelta(minutes=1)


def test_a_drifted_ledger_fails_every_call_naming_it(open_warehouse: Opener, db_url: str) -> None:
    query(db_url, 'CREATE TABLE "My Ledger" (load_id varchar(36) NOT NULL, status text)')
    warehouse = open_warehouse(ledger_table="My Ledger")

    with pytest.raises(SchemaDriftError, match="table My Ledger differs") as caught:
        warehouse.history()

    assert "column status: type differs: expected VARCHAR(16) found text" in str(caught.value)


# ---------------------------------------------------------------- values through COPY

TEXTS = contract_from_mapping(
    "texts",
    {
        "primary_key": ["k"],
        "columns": [
            {"name": "k", "type": "integer", "nullable": False},
            {"name": "v", "type": "varchar(40)"},
            {"name": "c", "type": "char(2)"},
        ],
    },
)
AWKWARD = ["", None, " ", '""', '"', "\\N", "NULL", ",", "a\nb", "a\r\nb", "é☃", "\t"]


def test_null_and_empty_string_stay_apart_through_copy(
    warehouse: PostgresWarehouse, db_url: str
) -> None:
    rows = [{"k": i, "v": v, "c": None if v is None else "x"} for i, v in enumerate(AWKWARD)]
    rows.append({"k": 99, "v": "y", "c": ""})

    warehouse.ensure_table(TEXTS)
    warehouse.load(make_request(TEXTS, rows))

    assert [r["v"] for r in table_rows(warehouse, "texts")] == [*AWKWARD, "y"]
    assert query(db_url, "SELECT count(*) FROM texts WHERE v IS NULL") == [(1,)]
    assert query(db_url, "SELECT count(*) FROM texts WHERE v = ''") == [(1,)]
    # char(n) pads, as PostgreSQL does; '' is kept apart from NULL all the same.
    assert query(db_url, "SELECT c FROM texts WHERE k IN (0, 1, 99) ORDER BY k") == [
        ("x ",), (None,), ("  ",),
    ]  # fmt: skip


# ---------------------------------------------------------------- retries and outages


def _backend_pids(url: str) -> list[int]:
    return [
        r[0]
        for r in query(
            url,
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = 'datalakep'",
        )
    ]


def test_a_dropped_connection_is_reopened_by_the_next_call(
    warehouse: PostgresWarehouse, db_url: str
) -> None:
    warehouse.ensure_table(PEOPLE)
    warehouse.load(make_request(PEOPLE, [person(1)]))
    [pid] = _backend_pids(db_url)

    query(db_url, "SELECT pg_terminate_backend(%s)", (pid,))
    receipt = warehouse.load(make_request(PEOPLE, [person(2)], version="v2"))

    assert receipt.status is LoadStatus.LOADED
    assert [r["id"] for r in table_rows(warehouse, "people")] == [1, 2]
    assert _backend_pids(db_url) not in ([], [pid])
    assert ledger(db_url) == [("loaded", "v1"), ("loaded", "v2")]


def test_with_one_attempt_a_dropped_connection_is_unavailable_then_reopened(
    open_warehouse: Opener, db_url: str
) -> None:
    warehouse = open_warehouse(retry_attempts=1)
    warehouse.ensure_table(PEOPLE)
    [pid] = _backend_pids(db_url)
    query(db_url, "SELECT pg_terminate_backend(%s)", (pid,))

    with pytest.raises(WarehouseUnavailableError, match="after 1 attempt"):
        warehouse.load(make_request(PEOPLE, [person(1)]))

    assert warehouse.load(make_request(PEOPLE, [person(1)])).status is LoadStatus.LOADED


@pytest.mark.parametrize(
    "failure", [psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected]
)
def test_a_serialization_failure_or_deadlock_retries_the_whole_load(
    failure: type[psycopg.Error],
    open_warehouse: Opener,
    db_url: str,
) -> None:
    calls: list[int] = []

    def once(_: LoadRequest) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise failure("injected")

    warehouse = open_warehouse(on_merged=once)
    warehouse.ensure_table(PEOPLE)
    request = make_request(PEOPLE, [person(1), person(2)])

    receipt = warehouse.load(request)

    assert (receipt.status, receipt.load_id, receipt.rows_loaded) == (
        LoadStatus.LOADED, request.load_id, 2,
    )  # fmt: skip
    assert len(calls) == 2
    assert query(db_url, "SELECT count(*) FROM people") == [(2,)]
    assert ledger(db_url) == [("loaded", "v1")]


def test_a_failure_on_every_attempt_is_unavailable_and_writes_nothing(
    open_warehouse: Opener, db_url: str
) -> None:
    calls: list[int] = []

    def always(_: LoadRequest) -> None:
        calls.append(1)
        raise psycopg.errors.SerializationFailure("injected")

    warehouse = open_warehouse(retry_attempts=3, on_merged=always)
    warehouse.ensure_table(PEOPLE)

    with pytest.raises(WarehouseUnavailableError, match="load of table people failed after 3"):
        warehouse.load(make_request(PEOPLE, [person(1)]))

    assert len(calls) == 3
    assert query(db_url, "SELECT count(*) FROM people") == [(0,)]
    assert ledger(db_url) == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_server_that_is_down_is_unavailable_naming_host_and_port_not_the_password() -> None:
    port = _free_port()
    password = "s3cr3t-Pa55word"
    warehouse = PostgresWarehouse(
        Credentials("127.0.0.1", port, "warehouse", "loader", password),
        options={**FAST, "retry_attempts": 2, "connect_timeout": 2},
    )

    for call in (warehouse.history, lambda: warehouse.ensure_table(PEOPLE)):
        with pytest.raises(WarehouseUnavailableError) as caught:
            call()
        error = caught.value
        assert isinstance(error, TransientError)
        assert f"127.0.0.1:{port}" in str(error)
        assert "after 2 attempt(s)" in str(error)
        for text in (str(error), repr(error.details), str(error.__cause__), repr(warehouse)):
            assert password not in text
    warehouse.close()


def test_a_database_that_does_not_exist_is_a_configuration_error_at_once(
    postgres: PostgresServer,
) -> None:
    warehouse = PostgresWarehouse(
        Credentials(postgres.host, postgres.port, "no_such_db", postgres.user, "pw-never-shown"),
        options={"retry_attempts": 4, "retry_base_delay_s": 5},  # a retry would be slow
    )
    started = time.monotonic()

    with pytest.raises(ConfigurationError) as caught:
        warehouse.history()

    assert time.monotonic() - started < 3
    assert f"{postgres.host}:{postgres.port}/no_such_db" in str(caught.value)
    assert "does not exist" in str(caught.value)
    assert "pw-never-shown" not in str(caught.value)


def test_bad_options_are_a_configuration_error() -> None:
    for bad in ({"sslmode": "sometimes"}, {"retry_attempts": 0}, {"connect_timeout": "x"}):
        with pytest.raises(ConfigurationError):
            PostgresOptions.from_mapping(bad)
    assert (
        PostgresOptions.from_mapping({"retry_attempts": "2", "url": "ignored"}).retry_attempts == 2
    )


# ---------------------------------------------------------------- names


def test_hostile_reserved_mixed_case_and_percent_names_work(
    open_warehouse: Opener, db_url: str
) -> None:
    warehouse = open_warehouse(ledger_table="Ledger %s 100%")
    victim = TableContract("t", (col("id", "integer", nullable=False),), ("id",))
    warehouse.ensure_table(victim)
    warehouse.load(make_request(victim, [{"id": 1}]))
    hostile = TableContract(
        'x"; DROP TABLE t;--',
        (
            col("select", "integer", nullable=False),
            col("Mixed Case", "varchar(20)"),
            col("100%", "decimal(5,2)"),
            col("a%s", "varchar(5)"),
            col("order", "varchar(5)"),
        ),
        ("select",),
    )
    upper = TableContract("T", (col("ID", "integer", nullable=False),), ("ID",), LoadMode.APPEND)
    row = {"select": 1, "Mixed Case": "MiXeD", "100%": Decimal("99.5"), "a%s": "%s", "order": None}

    for contract in (hostile, upper):
        warehouse.ensure_table(contract)
    warehouse.load(make_request(hostile, [row]))
    warehouse.load(make_request(hostile, [row]))  # skipped
    warehouse.load(make_request(hostile, [{**row, "order": "%%"}], version="v2"))
    warehouse.load(make_request(upper, [{"ID": 5}]))
    warehouse.ensure_table(hostile)

    assert contract_rows(table_rows(warehouse, hostile.name), hostile) == [{**row, "order": "%%"}]
    assert contract_rows(table_rows(warehouse, "t"), victim) == [{"id": 1}]
    assert contract_rows(table_rows(warehouse, "T"), upper) == [{"ID": 5}]
    assert warehouse.loaded_tables(URI, "v2") == frozenset({hostile.name})
    assert sorted(e.status.value for e in warehouse.history()) == ["loaded"] * 4 + ["skipped"]
    tables = query(
        db_url,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
        'ORDER BY table_name COLLATE "C"',
    )
    assert [t[0] for t in tables] == ["Ledger %s 100%", "T", "t", 'x"; DROP TABLE t;--']


# ---------------------------------------------------------------- recorded versions


def test_recorded_versions_answers_for_more_uris_than_one_statement_can_bind(
    open_warehouse: Opener,
) -> None:
    # 70,000 URIs are more than the 65,535 parameters one statement may carry.
    warehouse = open_warehouse(ledger_table="Ledger %s 100%")
    uris = [f"s3://in/{n:05d}.xlsx" for n in range(70_000)]
    for number, uri in ((1, uris[0]), (2, uris[-1])):
        warehouse.record(replace(entry(f"r{number}", T0), source_uri=uri, source_version="v1"))

    found = warehouse.recorded_versions(uris)

    assert found == {(uris[0], "v1"), (uris[-1], "v1")}


def test_recorded_versions_survives_a_dropped_connection(
    warehouse: PostgresWarehouse, db_url: str
) -> None:
    warehouse.record(entry("r1", T0))
    [pid] = _backend_pids(db_url)

    query(db_url, "SELECT pg_terminate_backend(%s)", (pid,))

    assert warehouse.recorded_versions([URI]) == {(URI, "v9")}


# ---------------------------------------------------------------- the factory


def test_the_factory_builds_it_from_a_url_with_options(db_url: str) -> None:
    warehouse = warehouse_from_url(
        f"{db_url}?sslmode=disable&application_name=from-url",
        ledger_table="other_ledger",
        options={"retry_attempts": 2, "url": "ignored", "ledger_table": "ignored"},
    )
    try:
        assert isinstance(warehouse, PostgresWarehouse)
        assert list(warehouse.history()) == []
        assert query(
            db_url,
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'from-url'",
        ) == [(1,)]
        assert query(db_url, "SELECT count(*) FROM other_ledger") == [(0,)]
    finally:
        warehouse.close()


# ---------------------------------------------------------------- ledger migration

# The ledger as releases before version ordering made it.
OLD_LEDGER = (
    "CREATE TABLE datalakep_load_ledger (load_id VARCHAR(36) NOT NULL, "
    "source_uri VARCHAR(1024) NOT NULL, source_version VARCHAR(256) NOT NULL, "
    "table_name VARCHAR(127), sheets VARCHAR(65535) NOT NULL, status VARCHAR(16) NOT NULL, "
    "rows_read BIGINT NOT NULL, rows_loaded BIGINT NOT NULL, rows_rejected BIGINT NOT NULL, "
    "started_at TIMESTAMP NOT NULL, finished_at TIMESTAMP NOT NULL, error VARCHAR(65535))"
)


def test_a_ledger_of_an_earlier_release_is_migrated_in_place_keeping_its_rows(
    open_warehouse: Opener, db_url: str
) -> None:
    query(db_url, OLD_LEDGER)
    query(
        db_url,
        "INSERT INTO datalakep_load_ledger VALUES ('old', 's3://in/people.xlsx', 'v0', "
        "'people', '[]', 'loaded', 1, 1, 0, '2026-01-01', '2026-01-01', NULL)",
    )
    a, b = open_warehouse(), open_warehouse()
    longest = "s3://" + "b" * 63 + "/" + "k" * 1024

    [old] = a.history()  # two instances migrating at once both succeed
    b.ensure_table(PEOPLE)
    receipt = b.load(make_request(PEOPLE, [person(1)], uri=longest))

    assert (old.load_id, old.source_order) == ("old", SourceOrder())
    assert receipt.status is LoadStatus.LOADED
    columns = dict(
        query(
            db_url,
            "SELECT column_name, character_maximum_length FROM information_schema.columns "
            "WHERE table_name = 'datalakep_load_ledger'",
        )
    )
    assert columns["source_uri"] == 4096
    assert columns["source_sequencer"] == 64
    assert "source_modified_at" in columns
    assert columns["rejects_report"] == 1024


# ---------------------------------------------------------------- version order, racing

V1_ORDER = SourceOrder(sequencer="0062A1", modified_at=datetime(2026, 1, 1, 12))
V2_ORDER = SourceOrder(sequencer="0062A2", modified_at=datetime(2026, 1, 1, 12))


def test_v1_held_before_its_merge_while_v2_commits_ends_stale(
    open_warehouse: Opener, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The order check runs under the load's lock, not once before it (the old bug)."""
    slow, fast = open_warehouse(), open_warehouse()
    slow.ensure_table(PEOPLE)
    v1 = replace(make_request(PEOPLE, [person(1, "v1"), person(2, "v1")]), source_order=V1_ORDER)
    v2 = replace(make_request(PEOPLE, [person(1, "v2")], version="v2"), source_order=V2_ORDER)
    held, gate = threading.Event(), threading.Event()
    staged = slow._engine.prepared

    @contextmanager
    def gated(rows: pa.Table) -> Iterator[pa.Table]:  # v1's rows are ready; v1 waits here
        held.set()
        assert gate.wait(10)
        with staged(rows) as ready:
            yield ready

    monkeypatch.setattr(slow._engine, "prepared", gated)
    outcome: list[Any] = []
    racer = threading.Thread(target=lambda: outcome.append(slow.load(v1)))
    racer.start()
    assert held.wait(10)

    assert fast.load(v2).status is LoadStatus.LOADED
    gate.set()
    racer.join(10)

    assert [r.status for r in outcome] == [LoadStatus.STALE]
    assert outcome[0].load_id == v2.load_id
    assert query(db_url, "SELECT id, name FROM people ORDER BY id") == [(1, "v2")]
    assert ledger(db_url) == [("loaded", "v2"), ("stale", "v1")]


def test_v1_arriving_while_v2_merges_waits_for_the_lock_then_ends_stale(
    open_warehouse: Opener, db_url: str
) -> None:
    inside, release = threading.Event(), threading.Event()

    def hold(_: LoadRequest) -> None:  # v2 has merged and holds the lock, uncommitted
        inside.set()
        assert release.wait(10)

    fast, slow = open_warehouse(on_merged=hold), open_warehouse()
    fast.ensure_table(PEOPLE)
    v2 = replace(make_request(PEOPLE, [person(1, "v2")], version="v2"), source_order=V2_ORDER)
    v1 = replace(make_request(PEOPLE, [person(1, "v1")]), source_order=V1_ORDER)
    # Keyed by version: once v2 commits, v1's thread may return before v2's does.
    outcome: dict[str, Any] = {}
    first = threading.Thread(target=lambda: outcome.update(v2=fast.load(v2)))
    first.start()
    assert inside.wait(10)
    second = threading.Thread(target=lambda: outcome.update(v1=slow.load(v1)))
    second.start()
    second.join(0.5)
    assert second.is_alive()  # waiting on (source, table)'s lock, not merging

    release.set()
    first.join(10)
    second.join(10)

    assert (outcome["v2"].status, outcome["v1"].status) == (LoadStatus.LOADED, LoadStatus.STALE)
    assert query(db_url, "SELECT id, name FROM people ORDER BY id") == [(1, "v2")]
    assert ledger(db_url) == [("loaded", "v2"), ("stale", "v1")]
