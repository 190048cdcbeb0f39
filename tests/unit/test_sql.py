"""The statement builder shared by the DuckDB, PostgreSQL and Redshift warehouses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlglot

from domain.clock import utc_now
from domain.contracts import Column, LoadMode, TableContract
from domain.errors import ConfigurationError, SchemaDriftError
from domain.ledger import LedgerEntry, LoadStatus
from domain.types import ColumnType
from infrastructure.warehouse import drift
from infrastructure.warehouse.sql import ddl, merge
from infrastructure.warehouse.sql import ledger as ledger_sql
from infrastructure.warehouse.sql.dialect import DUCKDB, POSTGRES, REDSHIFT, quote_ident

pytestmark = pytest.mark.unit


def col(name: str, type_: str, nullable: bool = True) -> Column:
    return Column(name, ColumnType.parse(type_), nullable=nullable)


PEOPLE = TableContract(
    "people",
    (col("id", "int", nullable=False), col("Name", "varchar(50)"), col("code", "char(2)")),
    ("id",),
)
LINEAGE = merge.Lineage("load-1", datetime(2026, 1, 1))

# ---------------------------------------------------------------- quote_ident


@pytest.mark.parametrize(
    ("name", "quoted"),
    [
        ("people", '"people"'),
        ("select", '"select"'),
        ("Mixed Case", '"Mixed Case"'),  # never lower-cased
        ('say "hi"', '"say ""hi"""'),
        ('x"; DROP TABLE t;--', '"x""; DROP TABLE t;--"'),
        ('"', '""""'),
        ("é" * 63 + "a", '"' + "é" * 63 + 'a"'),  # 127 UTF-8 bytes
    ],
)
def test_quote_ident_always_quotes_and_doubles_embedded_quotes(name: str, quoted: str) -> None:
    assert quote_ident(name) == quoted


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "empty"),
        ("a\x00b", "NUL"),
        ("é" * 64, "128 UTF-8 bytes"),  # 64 characters, but 128 bytes
        ("a" * 128, "128 UTF-8 bytes"),
        ("\udc80", "not valid Unicode"),
    ],
)
def test_quote_ident_refuses_invalid_names(name: str, reason: str) -> None:
    with pytest.raises(ConfigurationError, match=reason):
        quote_ident(name)


def test_postgres_refuses_names_it_would_truncate() -> None:
    long_name = TableContract("t" * 64, PEOPLE.columns, ("id",))
    assert ddl.create_table_sql(long_name, REDSHIFT)
    with pytest.raises(ConfigurationError, match="postgres allows 63"):
        ddl.create_table_sql(long_name, POSTGRES)


# ---------------------------------------------------------------- DDL


def test_create_table_has_the_contract_columns_the_lineage_and_the_key() -> None:
    assert ddl.create_table_sql(PEOPLE, REDSHIFT) == (
        'CREATE TABLE IF NOT EXISTS "people" (\n'
        '    "id" INTEGER NOT NULL,\n'
        '    "Name" VARCHAR(50),\n'
        '    "code" CHAR(2),\n'
        '    "_load_id" VARCHAR(36) NOT NULL,\n'
        '    "_loaded_at" TIMESTAMP NOT NULL,\n'
        '    PRIMARY KEY ("id")\n'
        ")"
    )


def test_duckdb_tables_leave_the_key_to_the_load_s_own_checks() -> None:
    # DuckDB's index behind a declared key made its loads and upserts several times
    # slower; the load refuses what the key would (test_warehouse_behaviour).
    created = ddl.create_table_sql(PEOPLE, DUCKDB)

    assert "PRIMARY KEY" not in created
    assert '"id" INTEGER NOT NULL' in created
    assert 'PRIMARY KEY ("id")' in ddl.create_table_sql(PEOPLE, POSTGRES)


def test_postgres_tables_stamp_loaded_at_themselves() -> None:
    # A bulk load may then leave _loaded_at out of its CSV.
    assert (
        "\"_loaded_at\" TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')"
        in ddl.create_table_sql(PEOPLE, POSTGRES)
    )
    assert "DEFAULT" not in ledger_sql.create_ledger_sql(POSTGRES)


def test_a_contract_column_named_like_a_lineage_column_is_refused() -> None:
    clash = TableContract("t", (col("_LOAD_ID", "integer"),), load_mode=LoadMode.APPEND)
    with pytest.raises(ConfigurationError, match="_LOAD_ID clashes"):
        ddl.create_table_sql(clash, DUCKDB)


def test_ledger_table_columns() -> None:
    ddl = ledger_sql.create_ledger_sql(REDSHIFT, "audit ledger")
    assert ddl.startswith('CREATE TABLE IF NOT EXISTS "audit ledger" (')
    for line in [
        '"load_id" VARCHAR(36) NOT NULL',
        '"table_name" VARCHAR(127),',
        '"sheets" VARCHAR(65535) NOT NULL',
        '"rows_loaded" BIGINT NOT NULL',
        '"finished_at" TIMESTAMP NOT NULL',
        '"error" VARCHAR(65535),',
        '"source_uri" VARCHAR(4096) NOT NULL',  # any legal S3 URI
        '"source_sequencer" VARCHAR(64),',
        '"source_modified_at" TIMESTAMP,',
        '"rejects_report" VARCHAR(1024)\n',
    ]:
        assert line in ddl
    assert "PRIMARY KEY" not in ddl


def test_a_ledger_of_an_earlier_release_gains_columns_and_width_never_loses_any() -> None:
    old = {c.name: c.type.length for c in ledger_sql.LEDGER_COLUMNS[:12]}
    old["source_uri"] = 1024

    assert ledger_sql.ledger_migration_sql(old, REDSHIFT, "l") == [
        'ALTER TABLE "l" ALTER COLUMN "source_uri" TYPE VARCHAR(4096)',
        'ALTER TABLE "l" ADD COLUMN "source_sequencer" VARCHAR(64)',
        'ALTER TABLE "l" ADD COLUMN "source_modified_at" TIMESTAMP',
        'ALTER TABLE "l" ADD COLUMN "rejects_report" VARCHAR(1024)',
    ]
    assert ledger_sql.ledger_migration_sql(old, POSTGRES, "l")[1] == (
        'ALTER TABLE "l" ADD COLUMN IF NOT EXISTS "source_sequencer" VARCHAR(64)'
    )
    current = {c.name: c.type.length for c in ledger_sql.LEDGER_COLUMNS}
    assert ledger_sql.ledger_migration_sql({**current, "source_uri": 9999}, DUCKDB) == []


# ---------------------------------------------------------------- merge


def test_upsert_deletes_matching_keys_then_inserts_by_column_list() -> None:
    two_keys = TableContract(
        "t", (col("a", "int", False), col("b", "int", False), col("v", "int")), ("a", "b")
    )
    (delete, no_params), (insert, params) = merge.merge_statements(
        two_keys, "stg", LINEAGE, POSTGRES
    )

    assert delete == 'DELETE FROM "t" USING "stg" WHERE "t"."a" = "stg"."a" AND "t"."b" = "stg"."b"'
    assert no_params == ()
    assert insert == (
        'INSERT INTO "t" ("a", "b", "v", "_load_id", "_loaded_at") '
        'SELECT "a", "b", "v", CAST(%s AS VARCHAR(36)), CAST(%s AS TIMESTAMP) FROM "stg"'
    )
    assert params == ("load-1", datetime(2026, 1, 1))


def test_append_only_inserts_and_replace_deletes_everything_first() -> None:
    append = TableContract("t", PEOPLE.columns, load_mode=LoadMode.APPEND)
    replace = TableContract("t", PEOPLE.columns, load_mode=LoadMode.REPLACE)

    [(insert, _)] = merge.merge_statements(append, "stg", LINEAGE, DUCKDB)
    (delete, _), (insert_after, _) = merge.merge_statements(replace, "stg", LINEAGE, DUCKDB)

    assert insert.startswith('INSERT INTO "t" (')
    assert "?" in insert
    assert delete == 'DELETE FROM "t"'
    assert insert_after == insert


def test_every_statement_parses_in_its_dialect() -> None:
    for d in (DUCKDB, POSTGRES, REDSHIFT):
        statements = [
            ddl.create_table_sql(PEOPLE, d),
            ledger_sql.create_ledger_sql(d),
            ledger_sql.ledger_insert_sql(d),
            ledger_sql.committed_loads_sql(d),
            *ledger_sql.ledger_migration_sql({}, d),
            ledger_sql.loaded_tables_sql(d),
            ledger_sql.history_sql(d, limit=5),
            ddl.table_columns_sql(d),
            ddl.select_rows_sql("people", ["id", "Name"], ["id"], d),
            *(s for s, _ in merge.merge_statements(PEOPLE, "stg", LINEAGE, d)),
        ]
        for statement in statements:
            assert sqlglot.parse_one(statement, read=d.name) is not None


# ---------------------------------------------------------------- ledger


def test_history_orders_newest_first_and_checks_the_limit() -> None:
    assert ledger_sql.history_sql(DUCKDB).endswith("ORDER BY finished_at DESC, load_id")
    assert ledger_sql.history_sql(DUCKDB, limit=10).endswith(
        "ORDER BY finished_at DESC, load_id LIMIT 10"
    )
    for bad in (-1, 1.5, True, "10"):
        with pytest.raises(ValueError, match="history limit"):
            ledger_sql.history_sql(DUCKDB, limit=bad)  # type: ignore[arg-type]


def test_committed_loads_are_the_loaded_rows_of_every_version_of_the_source_and_table() -> None:
    query = ledger_sql.committed_loads_sql(POSTGRES, "ledger")
    assert 'FROM "ledger" WHERE source_uri = %s AND table_name = %s' in query
    assert "status = 'loaded'" in query
    assert "source_version =" not in query


def test_a_ledger_entry_survives_params_and_back() -> None:
    entry = LedgerEntry(
        load_id="l",
        source_uri="s3://b/k",
        source_version="v",
        table=None,
        sheets=("A", 'B "é"'),
        status=LoadStatus.REJECTED,
        rows_read=3,
        rows_loaded=0,
        rows_rejected=3,
        started_at=datetime(2026, 1, 1, 13, tzinfo=timezone(timedelta(hours=1))),
        finished_at=datetime(2026, 1, 1, 12, 30),
        error="é" * 40000,
    )

    params = ledger_sql.ledger_params(entry)
    back = ledger_sql.ledger_entry(params)

    assert params[4] == '["A", "B \\"é\\""]'
    assert params[5] == "rejected"
    assert back.started_at == datetime(2026, 1, 1, 12)
    assert back.sheets == entry.sheets
    assert back.error is not None
    assert len(back.error.encode()) <= 65535
    assert back.error == "é" * 32767  # cut on a character boundary
    assert utc_now().tzinfo is None
    assert abs(utc_now() - datetime.now(UTC).replace(tzinfo=None)) < timedelta(minutes=1)


# ---------------------------------------------------------------- drift


def catalog(name: str, data_type: str, nullable: bool = True, *more: object) -> tuple[object, ...]:
    length, precision, scale = (*more, None, None, None)[:3]
    return (name, data_type, "YES" if nullable else "NO", length, precision, scale)


def test_duckdb_catalog_without_lengths_fits_the_contract() -> None:
    found = [
        drift.shape_from_catalog(row, DUCKDB)
        for row in [
            catalog("id", "INTEGER", False, None, 32, 0),
            catalog("name", "VARCHAR"),  # contract says Name: DuckDB matches any case
            catalog("code", "VARCHAR"),  # DuckDB stores CHAR(2) as VARCHAR
            catalog("_load_id", "VARCHAR", False),
            catalog("_loaded_at", "TIMESTAMP", False),
        ]
    ]
    assert drift.drift_differences(drift.expected_columns(PEOPLE), found, DUCKDB) == []


def test_postgres_catalog_compares_lengths_char_and_name_case() -> None:
    found = [
        drift.shape_from_catalog(row, POSTGRES)
        for row in [
            catalog("id", "integer", False, None, 32, 0),
            catalog("name", "character varying", True, 40),
            catalog("code", "character varying", True, 2),
            catalog("_load_id", "character varying", False, 36),
            catalog("_loaded_at", "timestamp without time zone", False),
        ]
    ]

    problems = drift.drift_differences(drift.expected_columns(PEOPLE), found, POSTGRES)

    assert problems == [
        "column Name: missing in table",
        "column name: unexpected in table",
        "column code: type differs: expected CHAR(2) found character varying(2)",
    ]


def test_decimal_precision_and_nullability_differences_are_named() -> None:
    contract = TableContract("t", (col("amount", "decimal(12,2)", False),), ("amount",))
    found = [
        drift.shape_from_catalog(catalog("amount", "numeric", True, None, 12, 4), REDSHIFT),
        *(drift.ColumnShape.of(c) for c in ddl.LINEAGE_COLUMNS),
    ]

    with pytest.raises(SchemaDriftError) as caught:
        drift.check_drift("t", drift.expected_columns(contract), found, REDSHIFT)

    assert str(caught.value) == (
        "table t differs from its contract (it is never altered): "
        "column amount: type differs: expected DECIMAL(12,2) found numeric; "
        "column amount: nullability differs: expected NOT NULL found NULL"
    )
    assert caught.value.details["table"] == "t"


def test_an_unknown_catalog_type_is_a_difference() -> None:
    found = drift.shape_from_catalog(catalog("at", "TIMESTAMP WITH TIME ZONE"), DUCKDB)
    expected = drift.ColumnShape.of(col("at", "timestamp"))
    assert drift.drift_differences([expected], [found], DUCKDB) == [
        "column at: type differs: expected TIMESTAMP found TIMESTAMP WITH TIME ZONE"
    ]


def test_a_ledger_of_the_previous_release_gains_only_the_rejects_report_column() -> None:
    current = {c.name: c.type.length for c in ledger_sql.LEDGER_COLUMNS}
    old = {k: v for k, v in current.items() if k != "rejects_report"}
    assert ledger_sql.ledger_migration_sql(current, REDSHIFT) == []
    # Redshift has no IF NOT EXISTS for columns; the catalog was read to decide.
    assert ledger_sql.ledger_migration_sql(old, REDSHIFT, "audit ledger") == [
        'ALTER TABLE "audit ledger" ADD COLUMN "rejects_report" VARCHAR(1024)',
    ]
    assert ledger_sql.ledger_migration_sql(old, DUCKDB) == [
        'ALTER TABLE "datalakep_load_ledger" ADD COLUMN IF NOT EXISTS "rejects_report" '
        "VARCHAR(1024)",
    ]
    # A NOT NULL column missing is not something a migration adds: drift reports it.
    assert ledger_sql.ledger_migration_sql(
        {k: v for k, v in old.items() if k != "rows_read"}, DUCKDB
    ) == ledger_sql.ledger_migration_sql(old, DUCKDB)
