"""RedshiftWarehouse through the real redshift_connector, the proxy and PostgreSQL 15.

PostgreSQL stands in for Redshift on the wire and in SQL; what it cannot show
(DISTSTYLE/SORTKEY, COPY from S3, 127-byte names) is checked in
tests/unit/test_redshift_sql.py and test_s3_staging.py.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal
from itertools import count
from typing import Any

import psycopg
import pytest
import redshift_connector
from redshift_connector.error import InterfaceError, ProgrammingError

from application.ports import LoadReceipt, LoadRequest
from domain.contracts import Column, LoadMode, TableContract
from domain.errors import SchemaDriftError, TerminalError, WarehouseUnavailableError
from domain.ledger import LoadStatus
from domain.types import ColumnType
from infrastructure.warehouse import redshift_warehouse, sql_warehouse
from infrastructure.warehouse.credentials import Credentials
from infrastructure.warehouse.redshift_warehouse import (
    RedshiftEngine,
    RedshiftSession,
    RedshiftWarehouse,
)
from infrastructure.warehouse.sql import redshift as redshift_sql
from infrastructure.warehouse.sql.dialect import Dialect
from tests.integration.postgres.test_postgres_warehouse import OLD_LEDGER
from tests.integration.redshift.conftest import PASSWORD, MakeWarehouse
from tests.support.postgres import _free_port
from tests.support.redshift import URI, request_for
from tests.support.redshift_proxy import RedshiftProxy
from tests.support.warehouse_rows import FailNextMerge, table_rows

pytestmark = pytest.mark.integration


def col(name: str, type_: str, nullable: bool = True) -> Column:
    return Column(name, ColumnType.parse(type_), nullable=nullable)


PEOPLE = TableContract(
    "people",
    (
        col("id", "integer", nullable=False),
        col("name", "varchar(20)", nullable=False),
        col("score", "decimal(8,2)"),
    ),
    ("id",),
)


def person(pid: int, name: str | None = None, score: str | None = "1.50") -> dict[str, Any]:
    amount = None if score is None else Decimal(score)
    return {"id": pid, "name": name or f"p{pid}", "score": amount}


def own(rows: list[dict[str, Any]], contract: TableContract = PEOPLE) -> list[dict[str, Any]]:
    return [{c: r[c] for c in contract.column_names} for r in rows]


def serialization_failure() -> ProgrammingError:
    """What Redshift sends for a conflicting concurrent transaction."""
    return ProgrammingError(
        {
            "S": "ERROR",
            "C": "XX000",
            "M": "1023",
            "D": "Serializable isolation violation on table - 100, transactions forming "
            "the cycle are: 1, 2 (pid:3)",
        }
    )


# ---------------------------------------------------------------- the proxy itself


def test_redshift_connector_talks_to_postgresql_through_the_proxy(
    proxy: RedshiftProxy, database: str
) -> None:
    con = redshift_connector.connect(
        host=proxy.host, port=proxy.port, database=database, user="postgres", password="x",
        ssl=False,
    )  # fmt: skip
    try:
        cursor = con.cursor()
        cursor.execute("SELECT 1")
        assert cursor.fetchall() == ([1],)
        assert (b"server_version", b"8.0.2") in con.parameter_statuses
    finally:
        con.close()


@pytest.mark.filterwarnings("ignore:ssl.*:DeprecationWarning")  # the driver's SSLContext()
def test_the_proxy_declines_ssl_so_clients_go_on_in_plain_text(
    proxy: RedshiftProxy, database: str
) -> None:
    # libpq sends an SSLRequest first under sslmode=prefer and carries on after the 'N'.
    dsn = f"postgresql://postgres@{proxy.host}:{proxy.port}/{database}?sslmode=prefer"
    with psycopg.connect(dsn) as con:
        assert con.execute("SELECT 1").fetchone() == (1,)
        assert con.info.parameter_status("server_version") == "8.0.2"
    # redshift_connector insists on TLS when ssl=True: the 'N' is a clear refusal.
    with pytest.raises(InterfaceError, match="Server refuses SSL"):
        redshift_connector.connect(
            host=proxy.host, port=proxy.port, database=database, user="postgres", password="x"
        )


# ---------------------------------------------------------------- DDL, load, skip


def test_ensure_table_creates_the_table_and_the_ledger_once(
    make_warehouse: MakeWarehouse, admin: psycopg.Connection[Any]
) -> None:
    warehouse = make_warehouse()

    warehouse.ensure_table(PEOPLE)
    warehouse.ensure_table(PEOPLE)

    columns = admin.execute(
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_name = 'people' ORDER BY ordinal_position"
    ).fetchall()
    assert columns == [
        ("id", "integer", "NO"), ("name", "character varying", "NO"), ("score", "numeric", "YES"),
        ("_load_id", "character varying", "NO"),
        ("_loaded_at", "timestamp without time zone", "NO"),
    ]  # fmt: skip
    ledger = admin.execute("SELECT count(*) FROM datalakep_load_ledger").fetchone()
    assert ledger == (0,)
    assert table_rows(warehouse, "people") == []


def test_a_small_load_goes_through_multi_row_inserts_and_writes_the_ledger(
    make_warehouse: MakeWarehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches: list[int] = []
    real = redshift_sql.insert_values_sql

    def spy(table: str, columns: Sequence[str], rows: int) -> str:
        batches.append(rows)
        return real(table, columns, rows)

    monkeypatch.setattr(redshift_sql, "insert_values_sql", spy)
    warehouse = make_warehouse()
    warehouse.ensure_table(PEOPLE)
    people = [person(i, score=None if i % 7 == 0 else f"{i}.25") for i in range(1, 2501)]
    request = request_for(PEOPLE, people)

    receipt = warehouse.load(request)

    assert receipt == LoadReceipt(LoadStatus.LOADED, request.load_id, 2500)
    assert batches == [1000, 1000, 500]
    rows = table_rows(warehouse, "people")
    assert own(rows) == people
    assert {r["_load_id"] for r in rows} == {request.load_id}
    [entry] = warehouse.history()
    assert (entry.status, entry.rows_loaded, entry.table) == (LoadStatus.LOADED, 2500, "people")
    assert warehouse.loaded_tables(URI, "v1") == frozenset({"people"})


def test_the_same_version_is_skipped_and_a_new_one_upserts_by_key(
    make_warehouse: MakeWarehouse,
) -> None:
    warehouse = make_warehouse()
    warehouse.ensure_table(PEOPLE)
    first = request_for(PEOPLE, [person(1), person(2), person(3)])
    warehouse.load(first)

    again = warehouse.load(request_for(PEOPLE, [person(1, "changed")]))
    second = request_for(PEOPLE, [person(2, "renamed", "9.99"), person(4)], version="v2")
    upserted = warehouse.load(second)

    assert again == LoadReceipt(LoadStatus.SKIPPED, first.load_id, 0)
    assert upserted == LoadReceipt(LoadStatus.LOADED, second.load_id, 2)
    rows = {r["id"]: r for r in table_rows(warehouse, "people")}
    assert own(list(rows.values())) == [
        person(1), person(2, "renamed", "9.99"), person(3), person(4),
    ]  # fmt: skip
    assert [rows[i]["_load_id"] for i in (1, 2, 3, 4)] == [
        first.load_id, second.load_id, first.load_id, second.load_id,
    ]  # fmt: skip
    assert sorted(e.status for e in warehouse.history()) == [
        LoadStatus.LOADED, LoadStatus.LOADED, LoadStatus.SKIPPED,
    ]  # fmt: skip


def test_concurrent_loads_of_one_version_load_once_and_skip_once(
    make_warehouse: MakeWarehouse,
) -> None:
    """LOCK on the ledger serialises them: the second sees the first's ledger row."""
    inside = threading.Event()
    release = threading.Event()

    def hold(_: LoadRequest) -> None:  # the first load waits, lock held, until the second starts
        inside.set()
        assert release.wait(10)

    first, second = make_warehouse(on_merged=hold), make_warehouse()
    first.ensure_table(PEOPLE)
    second.ensure_table(PEOPLE)
    receipts: dict[str, LoadReceipt] = {}
    one = request_for(PEOPLE, [person(1)])
    two = request_for(PEOPLE, [person(1, "other")])
    t1 = threading.Thread(target=lambda: receipts.update(a=first.load(one)))
    t1.start()
    assert inside.wait(10)
    t2 = threading.Thread(target=lambda: receipts.update(b=second.load(two)))
    t2.start()
    t2.join(0.3)
    assert t2.is_alive()  # waiting on the ledger lock
    release.set()
    t1.join(10)
    t2.join(10)

    assert receipts == {
        "a": LoadReceipt(LoadStatus.LOADED, one.load_id, 1),
        "b": LoadReceipt(LoadStatus.SKIPPED, one.load_id, 0),
    }
    assert own(table_rows(first, "people")) == [person(1)]


# ---------------------------------------------------------------- failures


def test_a_failure_mid_load_leaves_no_rows_and_no_ledger_row(
    make_warehouse: MakeWarehouse,
) -> None:
    failing = FailNextMerge()
    warehouse = make_warehouse(on_merged=failing)
    warehouse.ensure_table(PEOPLE)
    failing.arm(RuntimeError("injected"))

    with pytest.raises(RuntimeError, match="injected"):
        warehouse.load(request_for(PEOPLE, [person(1), person(2)]))

    assert table_rows(warehouse, "people") == []
    assert list(warehouse.history()) == []
    assert warehouse.load(request_for(PEOPLE, [person(1)])).status is LoadStatus.LOADED


def test_drift_names_every_differing_column(
    make_warehouse: MakeWarehouse, admin: psycopg.Connection[Any]
) -> None:
    admin.execute(
        "CREATE TABLE people (id BIGINT NOT NULL, name VARCHAR(30) NOT NULL, score NUMERIC(8,2),"
        " _load_id VARCHAR(36) NOT NULL, extra INTEGER)"
    )
    warehouse = make_warehouse()

    with pytest.raises(SchemaDriftError) as caught:
        warehouse.ensure_table(PEOPLE)

    message = str(caught.value)
    assert "column id: type differs: expected INTEGER found bigint" in message
    assert "column name: type differs: expected VARCHAR(20) found character varying(30)" in message
    assert "column _loaded_at: missing in table" in message
    assert "column extra: unexpected in table" in message
    assert "score" not in message


def test_a_server_error_is_terminal_and_loads_nothing(make_warehouse: MakeWarehouse) -> None:
    warehouse = make_warehouse()
    warehouse.ensure_table(PEOPLE)

    with pytest.raises(TerminalError) as caught:
        warehouse.load(request_for(PEOPLE, [person(1, "x" * 21)]))  # varchar(20)

    assert caught.value.code == "constraint_violation"
    assert "22001" in str(caught.value)
    assert table_rows(warehouse, "people") == []
    assert list(warehouse.history()) == []


def test_append_refuses_a_key_already_loaded_though_redshift_would_not(
    make_warehouse: MakeWarehouse,
) -> None:
    keyed = TableContract("keyed", PEOPLE.columns, ("id",), LoadMode.APPEND)
    warehouse = make_warehouse()
    warehouse.ensure_table(keyed)
    warehouse.load(request_for(keyed, [person(1)]))

    with pytest.raises(TerminalError, match="already in the table") as caught:
        warehouse.load(request_for(keyed, [person(2), person(1)], version="v2"))

    assert caught.value.code == "constraint_violation"
    assert [r["id"] for r in table_rows(warehouse, "keyed")] == [1]


# ---------------------------------------------------------------- retries


@pytest.mark.parametrize("source", ["redshift 1023", "server 40001"])
def test_a_serialization_failure_reruns_the_whole_transaction_once(
    make_warehouse: MakeWarehouse, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    warehouse = make_warehouse()
    warehouse.ensure_table(PEOPLE)
    waits: list[float] = []
    warehouse._retry = replace(warehouse._retry, sleep=waits.append)
    assert isinstance(warehouse._engine, RedshiftEngine)
    real = sql_warehouse.check_keys
    calls = count()

    def conflict_once(
        s: RedshiftSession, contract: TableContract, staging: str, dialect: Dialect, where: str
    ) -> None:
        real(s, contract, staging, dialect, where)
        if next(calls) > 0:
            return
        if source == "server 40001":  # a real ErrorResponse, through driver and proxy
            s.cur.execute(
                "DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '40001', "
                "MESSAGE = 'could not serialize access'; END $$"
            )
        raise serialization_failure()

    monkeypatch.setattr(redshift_warehouse, "check_keys", conflict_once)
    request = request_for(PEOPLE, [person(1), person(2)])

    receipt = warehouse.load(request)

    assert receipt == LoadReceipt(LoadStatus.LOADED, request.load_id, 2)
    assert next(calls) == 2
    assert len(waits) == 1
    assert own(table_rows(warehouse, "people")) == [person(1), person(2)]
    assert [e.status for e in warehouse.history()] == [LoadStatus.LOADED]


def test_a_conflict_that_persists_is_unavailable_after_the_attempts(
    make_warehouse: MakeWarehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts = count()
    failing = True

    def always(_: LoadRequest) -> None:
        if failing:
            next(attempts)
            raise serialization_failure()

    warehouse = make_warehouse(retry_attempts=3, on_merged=always)
    warehouse.ensure_table(PEOPLE)

    with pytest.raises(WarehouseUnavailableError, match="failed after 3 attempt"):
        warehouse.load(request_for(PEOPLE, [person(1)]))

    assert next(attempts) == 3
    failing = False
    assert table_rows(warehouse, "people") == []
    assert list(warehouse.history()) == []


def test_a_dropped_connection_is_reopened_on_next_use(
    make_warehouse: MakeWarehouse,
    admin: psycopg.Connection[Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # the driver's own debug logging included
    warehouse = make_warehouse()
    warehouse.ensure_table(PEOPLE)
    warehouse.load(request_for(PEOPLE, [person(1)]))
    waits: list[float] = []
    warehouse._retry = replace(warehouse._retry, sleep=waits.append)

    killed = admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND application_name = 'datalakep'"
    ).fetchall()
    assert killed == [(True,)]

    assert [e.status for e in warehouse.history()] == [LoadStatus.LOADED]
    assert len(waits) == 1  # one failed attempt on the dead session, then a new one
    receipt = warehouse.load(request_for(PEOPLE, [person(2)], version="v2"))
    assert receipt.status is LoadStatus.LOADED
    assert [r["id"] for r in table_rows(warehouse, "people")] == [1, 2]
    assert "attempt 1 failed" in caplog.text
    assert PASSWORD not in caplog.text


def test_an_unreachable_server_is_unavailable_and_the_password_never_shows(
    caplog: pytest.LogCaptureFixture, database: str
) -> None:
    closed_port = Credentials("127.0.0.1", _free_port(), database, "postgres", PASSWORD)
    nowhere = RedshiftWarehouse(
        closed_port, options={"ssl": False, "retry_attempts": 2, "retry_base_delay_s": 0}
    )
    caplog.set_level(logging.DEBUG)

    with pytest.raises(WarehouseUnavailableError) as caught:
        nowhere.history()

    assert "failed after 2 attempt(s)" in str(caught.value)
    for text in (str(caught.value), repr(nowhere), caplog.text, repr(caught.value.details)):
        assert PASSWORD not in text


# ---------------------------------------------------------------- names

HOSTILE = 'x"; DROP TABLE t;--'


def test_reserved_mixed_case_and_hostile_names_are_created_and_loaded(
    make_warehouse: MakeWarehouse, admin: psycopg.Connection[Any]
) -> None:
    warehouse = make_warehouse()
    victim = TableContract("t", (col("id", "integer", nullable=False),), ("id",))
    warehouse.ensure_table(victim)
    warehouse.load(request_for(victim, [{"id": 1}]))
    names = ["select", "user", "order", "Mixed Case", HOSTILE, "50% off", "é" * 31]
    key = col("select", "integer", nullable=False)
    texts = tuple(col(n, "varchar(10)") for n in names[1:])
    hostile = TableContract(HOSTILE, (key, *texts), ("select",))
    row = {"select": 1, "user": "u", "order": "o", "Mixed Case": "MiXeD", HOSTILE: "h",
           "50% off": "%s", "é" * 31: "é"}  # fmt: skip

    warehouse.ensure_table(hostile)
    warehouse.load(request_for(hostile, [row]))
    warehouse.load(request_for(hostile, [{**row, HOSTILE: "again"}], version="v2"))
    warehouse.ensure_table(hostile)  # the catalog, read back, matches the contract

    assert own(table_rows(warehouse, HOSTILE), hostile) == [{**row, HOSTILE: "again"}]
    created = admin.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s", (HOSTILE,)
    ).fetchall()
    assert {c for (c,) in created} >= set(names)
    assert own(table_rows(warehouse, "t"), victim) == [{"id": 1}]


def test_a_ledger_of_an_earlier_release_is_migrated_without_if_not_exists(
    make_warehouse: MakeWarehouse, admin: psycopg.Connection[Any]
) -> None:
    admin.execute(OLD_LEDGER)
    warehouse = make_warehouse()
    longest = "s3://" + "b" * 63 + "/" + "k" * 1024

    warehouse.ensure_table(PEOPLE)
    report = "s3://in/rejects/people.0123456789abcdef.rejects.xlsx"
    receipt = warehouse.load(replace(request_for(PEOPLE, [person(1)]), rejects_report=report))
    long_uri = warehouse.load(
        replace(request_for(PEOPLE, [person(1)]), source_uri=longest, source_version="v0")
    )

    assert (receipt.status, long_uri.status) == (LoadStatus.LOADED, LoadStatus.LOADED)
    assert {e.source_uri for e in warehouse.history()} == {URI, longest}
    # The report column came with the same migration as the ordering columns.
    assert {e.source_uri: e.rejects_report for e in warehouse.history()} == {
        URI: report,
        longest: None,
    }
