"""Moving staged rows into a contract's table, by its load mode."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from domain.contracts import LoadMode, TableContract
from infrastructure.warehouse.sql.ddl import LINEAGE_COLUMNS
from infrastructure.warehouse.sql.dialect import Dialect, Statement, quote


@dataclass(frozen=True)
class Lineage:
    load_id: str
    loaded_at: datetime  # UTC, naive


def merge_statements(
    contract: TableContract, staging: str, lineage: Lineage, dialect: Dialect
) -> tuple[Statement, ...]:
    """Move every row of the ``staging`` relation into the contract's table.

    Run them inside one transaction. DELETE rather than TRUNCATE for REPLACE, as
    Redshift's TRUNCATE commits the transaction it runs in.
    """
    d, p = dialect, dialect.placeholder
    target, source = quote(contract.name, d), quote(staging, d)
    own = ", ".join(quote(c.name, d) for c in contract.columns)
    lineage_cols = ", ".join(quote(c.name, d) for c in LINEAGE_COLUMNS)
    # Casts so that engines binding parameters as text still type these right.
    values = ", ".join(f"CAST({p} AS {c.type.sql})" for c in LINEAGE_COLUMNS)
    insert = (
        f"INSERT INTO {target} ({own}, {lineage_cols}) SELECT {own}, {values} FROM {source}",
        (lineage.load_id, lineage.loaded_at),
    )
    mode = contract.load_mode
    if mode is LoadMode.APPEND:
        return (insert,)
    if mode is LoadMode.REPLACE:
        return ((f"DELETE FROM {target}", ()), insert)
    match = " AND ".join(
        f"{target}.{quote(k, d)} = {source}.{quote(k, d)}" for k in contract.primary_key
    )
    return ((f"DELETE FROM {target} USING {source} WHERE {match}", ()), insert)


def needs_staging(contract: TableContract, target_has_rows: bool) -> bool:
    """Whether a load must stage its rows and merge, or may write straight to the table.

    Staging exists to find the rows an upsert replaces. APPEND replaces nothing,
    REPLACE empties the table first, and an UPSERT into an empty table replaces
    nothing either: all three write once, straight into the table.
    """
    return contract.load_mode is LoadMode.UPSERT and target_has_rows


def copy_csv_sql(table: str, columns: Sequence[str], dialect: Dialect) -> str:
    """COPY of headerless CSV: an unquoted empty field is NULL, a quoted one ("") is ''."""
    listed = ", ".join(quote(c, dialect) for c in columns)
    return f"COPY {quote(table, dialect)} ({listed}) FROM STDIN (FORMAT csv)"


def key_checks(contract: TableContract, staging: str, d: Dialect) -> tuple[tuple[str, str], ...]:
    """Queries returning a row when the staged rows would break the primary key
    against what the table holds.

    For a warehouse that does not enforce the key: Redshift declares it and never
    checks it, and DuckDB is not given it (ddl.py). In append mode, where nothing
    is deleted first, that is a key already in the table. A key repeated within the
    rows themselves needs no query: the warehouse refuses it in Arrow before it
    stages anything (sql_warehouse.py). Each item is (what it finds, query).
    """
    key = contract.primary_key
    if not key or contract.load_mode is not LoadMode.APPEND:
        return ()
    target, source = quote(contract.name, d), quote(staging, d)
    match = " AND ".join(f"t.{quote(k, d)} = s.{quote(k, d)}" for k in key)
    selected = ", ".join(f"s.{quote(k, d)}" for k in key)
    return (
        (
            "a key is already in the table",
            f"SELECT {selected} FROM {target} AS t JOIN {source} AS s ON {match} LIMIT 1",
        ),
    )
