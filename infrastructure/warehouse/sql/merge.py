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
