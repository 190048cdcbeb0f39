"""Statements that make, describe and lock tables, for every engine.

A table holds its contract's columns followed by the lineage columns; the catalog
query reads back what :mod:`infrastructure.warehouse.drift` compares.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from domain.contracts import Column, TableContract
from domain.errors import ConfigurationError
from domain.types import ColumnType, TypeKind
from infrastructure.warehouse.sql.dialect import Dialect, quote


def varchar(length: int) -> ColumnType:
    return ColumnType(TypeKind.VARCHAR, length=length)


TIMESTAMP = ColumnType(TypeKind.TIMESTAMP)

BIGINT = ColumnType(TypeKind.BIGINT)

LOAD_ID, LOADED_AT = "_load_id", "_loaded_at"

# Each row carries the load that wrote it and when; the source object, its version
# and the sheets are one join away, in the ledger row of that load_id. A per-row
# source URI would repeat ~100 bytes a row and cost a third of a bulk load's time.
LINEAGE_COLUMNS: tuple[Column, ...] = (
    Column(LOAD_ID, varchar(36), nullable=False),
    Column(LOADED_AT, TIMESTAMP, nullable=False),
)


def table_columns(contract: TableContract) -> tuple[Column, ...]:
    """The contract's columns followed by the lineage columns, as the table holds them."""
    lineage = {c.name.casefold() for c in LINEAGE_COLUMNS}
    for column in contract.columns:
        if column.name.casefold() in lineage:
            raise ConfigurationError(
                f"table {contract.name}: column {column.name} clashes with a lineage column",
                table=contract.name,
                column=column.name,
            )
    return contract.columns + LINEAGE_COLUMNS


def create_sql(
    table: str,
    columns: Sequence[Column],
    key: Sequence[str],
    d: Dialect,
    defaults: dict[str, str] | None = None,
) -> str:
    given = defaults or {}
    lines = [
        f"{quote(c.name, d)} {c.type.sql}{'' if c.nullable else ' NOT NULL'}"
        + (f" DEFAULT {given[c.name]}" if c.name in given else "")
        for c in columns
    ]
    if key and d.declares_primary_key:
        # PostgreSQL enforces it; Redshift only declares it, and the load refuses
        # there (and in DuckDB, which is not given it) what it would: a key repeated
        # in the rows (sql_warehouse.py), one already in the table (merge.key_checks).
        lines.append(f"PRIMARY KEY ({', '.join(quote(k, d) for k in key)})")
    body = ",\n    ".join(lines)
    return f"CREATE TABLE IF NOT EXISTS {quote(table, d)} (\n    {body}\n)"


def create_table_sql(contract: TableContract, dialect: Dialect) -> str:
    defaults = {LOADED_AT: dialect.loaded_at_default} if dialect.loaded_at_default else None
    return create_sql(
        contract.name, table_columns(contract), contract.primary_key, dialect, defaults
    )


def stamps_loaded_at_sql(dialect: Dialect) -> str:
    """Whether the table's _loaded_at has a default; parameter: the table name.

    A table created before that default existed, or by hand, has none: loads
    into it must send the timestamp themselves.
    """
    p = dialect.placeholder
    return (
        "SELECT column_default IS NOT NULL FROM information_schema.columns "
        "WHERE table_catalog = current_database() AND table_schema = current_schema() "
        f"AND table_name = {p} AND column_name = '{LOADED_AT}'"
    )


def table_columns_sql(dialect: Dialect) -> str:
    """The catalog's description of one table; parameter: the table name.

    Rows: (column_name, data_type, is_nullable, character_maximum_length,
    numeric_precision, numeric_scale), to be read with :func:`shape_from_catalog`.
    """
    p = dialect.placeholder
    match = f"table_name = {p}"
    if not dialect.case_sensitive_identifiers:
        match = f"lower(table_name) = lower({p})"
    return (
        "SELECT column_name, data_type, is_nullable, character_maximum_length, "
        "numeric_precision, numeric_scale FROM information_schema.columns "
        "WHERE table_catalog = current_database() AND table_schema = current_schema() "
        f"AND {match} ORDER BY ordinal_position"
    )


def staging_table_sql(contract: TableContract, staging: str, dialect: Dialect) -> str:
    """A session-private copy of the contract's columns, gone when the transaction ends.

    No NOT NULL or key here: the INSERT into the real table enforces them, with its name
    in the error.
    """
    cols = ", ".join(f"{quote(c.name, dialect)} {c.type.sql}" for c in contract.columns)
    return f"CREATE TEMP TABLE {quote(staging, dialect)} ({cols}) ON COMMIT DROP"


def select_rows_sql(
    table: str, columns: Sequence[str], order_by: Sequence[str], dialect: Dialect
) -> str:
    d = dialect
    listed = ", ".join(quote(c, d) for c in columns)
    order = ", ".join(f"{quote(c, d)} NULLS FIRST" for c in order_by)
    return f"SELECT {listed} FROM {quote(table, d)}" + (f" ORDER BY {order}" if order else "")


def has_rows_sql(table: str, dialect: Dialect) -> str:
    return f"SELECT EXISTS (SELECT 1 FROM {quote(table, dialect)})"


def delete_all_sql(table: str, dialect: Dialect) -> str:
    # DELETE, not TRUNCATE: Redshift's TRUNCATE commits the transaction it runs in.
    return f"DELETE FROM {quote(table, dialect)}"


def analyze_sql(table: str, dialect: Dialect) -> str:
    return f"ANALYZE {quote(table, dialect)}"


def lock_table_sql(table: str, dialect: Dialect) -> str:
    """Serialise writers of one table while readers carry on.

    Two merges of overlapping keys in parallel would each miss the other's new rows in
    their DELETE and then collide on the key in their INSERT.
    """
    return f"LOCK TABLE {quote(table, dialect)} IN SHARE ROW EXCLUSIVE MODE"


def advisory_xact_lock_sql(dialect: Dialect) -> str:
    """Parameter: a key from :func:`ledger.load_lock_key` or :func:`ddl_lock_key`."""
    return f"SELECT pg_advisory_xact_lock(hashtextextended({dialect.placeholder}, 0))"


def ddl_lock_key(table: str) -> str:
    return json.dumps(["ddl", table], ensure_ascii=False)
