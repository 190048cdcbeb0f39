"""The load ledger's table and every statement that reads or writes it."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from domain.clock import utc_naive
from domain.contracts import Column
from domain.identifiers import MAX_IDENTIFIER_BYTES
from domain.ledger import (
    SEQUENCER_WIDTH,
    CommittedLoad,
    LedgerEntry,
    LedgerFilter,
    LoadStatus,
    SourceOrder,
)
from domain.types import MAX_VARCHAR_BYTES
from infrastructure.warehouse.sql.ddl import BIGINT, TIMESTAMP, create_sql, varchar
from infrastructure.warehouse.sql.dialect import (
    Dialect,
    Params,
    Statement,
    quote,
)

DEFAULT_LEDGER_TABLE = "datalakep_load_ledger"
# Any legal S3 URI (s3:// + a 63-byte bucket + / + a 1,024-byte key is 1,093 bytes)
# and any local path (PATH_MAX), in UTF-8 bytes as Redshift counts them.
SOURCE_URI_BYTES = 4096

LEDGER_COLUMNS: tuple[Column, ...] = (
    Column("load_id", varchar(36), nullable=False),
    Column("source_uri", varchar(SOURCE_URI_BYTES), nullable=False),
    Column("source_version", varchar(256), nullable=False),
    Column("table_name", varchar(MAX_IDENTIFIER_BYTES), nullable=True),
    Column("sheets", varchar(MAX_VARCHAR_BYTES), nullable=False),  # a JSON array
    Column("status", varchar(16), nullable=False),
    Column("rows_read", BIGINT, nullable=False),
    Column("rows_loaded", BIGINT, nullable=False),
    Column("rows_rejected", BIGINT, nullable=False),
    Column("started_at", TIMESTAMP, nullable=False),
    Column("finished_at", TIMESTAMP, nullable=False),
    Column("error", varchar(MAX_VARCHAR_BYTES), nullable=True),
    # Added later: a ledger made before them gets them from ledger_migration_sql.
    Column("source_sequencer", varchar(SEQUENCER_WIDTH), nullable=True),
    Column("source_modified_at", TIMESTAMP, nullable=True),
    # Where the rejects report on the attempt's file is, when it rejected anything.
    Column("rejects_report", varchar(1024), nullable=True),
)


def ledger_migration_sql(
    found: Mapping[str, int | None], dialect: Dialect, ledger_table: str = DEFAULT_LEDGER_TABLE
) -> list[str]:
    """What brings a ledger made by an earlier release up to :data:`LEDGER_COLUMNS`.

    ``found`` maps each column the ledger has to its text length (None: not a
    text column, or not reported). Columns are only ever added (nullable, so old
    rows stay valid) or widened, never dropped or narrowed: every statement is
    safe to run twice and by two processes at once.
    """
    table = quote(ledger_table, dialect)
    statements = []
    for column in LEDGER_COLUMNS:
        name = quote(column.name, dialect)
        if column.name not in found:
            if not column.nullable:
                continue  # not something a migration can add: drift reports it
            exists = " IF NOT EXISTS" if dialect.add_column_if_not_exists else ""
            statements.append(f"ALTER TABLE {table} ADD COLUMN{exists} {name} {column.type.sql}")
            continue
        length, wanted = found[column.name], column.type.length
        if length is not None and wanted is not None and length < wanted:
            statements.append(f"ALTER TABLE {table} ALTER COLUMN {name} TYPE {column.type.sql}")
    return statements


def create_ledger_sql(dialect: Dialect, ledger_table: str = DEFAULT_LEDGER_TABLE) -> str:
    return create_sql(ledger_table, LEDGER_COLUMNS, (), dialect)


def _ledger_list(d: Dialect) -> str:
    return ", ".join(quote(c.name, d) for c in LEDGER_COLUMNS)


def ledger_insert_sql(dialect: Dialect, ledger_table: str = DEFAULT_LEDGER_TABLE) -> str:
    marks = ", ".join(dialect.placeholder for _ in LEDGER_COLUMNS)
    return f"INSERT INTO {quote(ledger_table, dialect)} ({_ledger_list(dialect)}) VALUES ({marks})"


def committed_loads_sql(dialect: Dialect, ledger_table: str = DEFAULT_LEDGER_TABLE) -> str:
    """Every committed load of one source into one table; parameters: source_uri, table.

    Rows: (load_id, source_version, source_sequencer, source_modified_at), oldest
    commit first. Run under the load's lock, it decides skip, stale or load.
    """
    p = dialect.placeholder
    return (
        "SELECT load_id, source_version, source_sequencer, source_modified_at "
        f"FROM {quote(ledger_table, dialect)} WHERE source_uri = {p} AND table_name = {p} "
        f"AND status = '{LoadStatus.LOADED.value}' ORDER BY finished_at, load_id"
    )


def committed_load(row: Sequence[Any]) -> CommittedLoad:
    """A row of :func:`committed_loads_sql`."""
    load_id, version, sequencer, modified_at = row
    return CommittedLoad(str(load_id), str(version), SourceOrder(sequencer, modified_at))


def loaded_tables_sql(dialect: Dialect, ledger_table: str = DEFAULT_LEDGER_TABLE) -> str:
    """Parameters: source_uri, source_version."""
    p = dialect.placeholder
    return (
        f"SELECT DISTINCT table_name FROM {quote(ledger_table, dialect)} "
        f"WHERE source_uri = {p} AND source_version = {p} "
        f"AND status = '{LoadStatus.LOADED.value}' AND table_name IS NOT NULL"
    )


# URIs per recorded_versions query: far below PostgreSQL's 65,535 bind parameters,
# and at most ~1 MB of URIs in Redshift's 16 MB statement limit.
RECORDED_VERSIONS_BATCH = 1000


def recorded_versions_statements(
    source_uris: Iterable[str],
    dialect: Dialect,
    ledger_table: str = DEFAULT_LEDGER_TABLE,
    batch: int = RECORDED_VERSIONS_BATCH,
) -> Iterator[Statement]:
    """Queries for every (source_uri, source_version) with a ledger row, of these URIs.

    One statement per ``batch`` distinct URIs; the union of their rows is the answer.
    """
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch!r}")
    uris = sorted(set(source_uris))
    table = quote(ledger_table, dialect)
    for start in range(0, len(uris), batch):
        chunk = tuple(uris[start : start + batch])
        marks = ", ".join(dialect.placeholder for _ in chunk)
        yield (
            f"SELECT DISTINCT source_uri, source_version FROM {table} "
            f"WHERE source_uri IN ({marks})",
            chunk,
        )


def history_sql(
    dialect: Dialect, ledger_table: str = DEFAULT_LEDGER_TABLE, limit: int | None = None
) -> str:
    """Every ledger row newest first (the query of :func:`history_statement` unfiltered)."""
    return history_statement(dialect, ledger_table, limit)[0]


def history_statement(
    dialect: Dialect,
    ledger_table: str = DEFAULT_LEDGER_TABLE,
    limit: int | None = None,
    where: LedgerFilter | None = None,
) -> Statement:
    """Ledger rows matching ``where``, newest first, readable with :func:`ledger_entry`."""
    p = dialect.placeholder
    conditions: list[str] = []
    params: list[Any] = []
    where = where or LedgerFilter()
    if where.source is not None:
        # '!' escapes: a backslash means different things in Redshift and PostgreSQL literals.
        conditions.append(f"source_uri LIKE {p} ESCAPE '!'")
        params.append(glob_to_like(where.source))
    for column, value in (
        ("status", None if where.status is None else LoadStatus(where.status).value),
        ("table_name", where.table),
        ("finished_at", None if where.since is None else utc_naive(where.since)),
        ("load_id", where.load_id),
    ):
        if value is not None:
            conditions.append(f"{column} {'>=' if column == 'finished_at' else '='} {p}")
            params.append(value)
    sql = f"SELECT {_ledger_list(dialect)} FROM {quote(ledger_table, dialect)}"
    if conditions:
        sql += " WHERE " + " AND ".join(conditions)
    sql += " ORDER BY finished_at DESC, load_id"
    if check_limit(limit) is not None:
        # Inlined, not bound: drivers disagree on parameters in LIMIT; it is a checked int.
        sql += f" LIMIT {limit}"
    return sql, tuple(params)


def glob_to_like(glob: str) -> str:
    """A LedgerFilter glob as a LIKE pattern with ``!`` as its escape character."""
    escaped = "".join(f"!{ch}" if ch in "!%_" else ch for ch in glob)
    return escaped.replace("*", "%").replace("?", "_")


def check_limit(limit: int | None) -> int | None:
    if limit is not None and (type(limit) is not int or limit < 0):
        raise ValueError(f"history limit must be a non-negative integer, got {limit!r}")
    return limit


def ledger_params(entry: LedgerEntry) -> Params:
    """Values for :func:`ledger_insert_sql`, in ``LEDGER_COLUMNS`` order."""
    e = entry.normalised()
    return (
        e.load_id,
        e.source_uri,
        e.source_version,
        e.table,
        json.dumps(list(e.sheets), ensure_ascii=False),
        e.status.value,
        e.rows_read,
        e.rows_loaded,
        e.rows_rejected,
        e.started_at,
        e.finished_at,
        e.error,
        e.source_order.sequencer,
        e.source_order.modified_at,
        e.rejects_report,
    )


def ledger_entry(row: Sequence[Any]) -> LedgerEntry:
    """A row of :func:`history_sql` as an entry."""
    (
        load_id,
        uri,
        version,
        table,
        sheets,
        status,
        read,
        loaded,
        rejected,
        started,
        finished,
        err,
        sequencer,
        modified_at,
        report,
    ) = row
    return LedgerEntry(
        load_id=str(load_id),
        source_uri=str(uri),
        source_version=str(version),
        table=None if table is None else str(table),
        sheets=tuple(str(s) for s in json.loads(sheets)),
        status=LoadStatus(status),
        rows_read=int(read),
        rows_loaded=int(loaded),
        rows_rejected=int(rejected),
        started_at=started,
        finished_at=finished,
        error=err,
        source_order=SourceOrder(sequencer, modified_at),
        rejects_report=None if report is None else str(report),
    )


def load_lock_key(source_uri: str, table: str) -> str:
    """Every version of one source into one table: version order is decided under it."""
    # JSON, not plain concatenation, so ("ab", "c") and ("a", "bc") stay apart.
    return json.dumps(["load", source_uri, table], ensure_ascii=False)
