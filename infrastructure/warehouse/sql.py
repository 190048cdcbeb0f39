"""Every SQL statement the warehouse adapters run, for DuckDB, PostgreSQL and Redshift.

Identifiers are quoted here and nowhere else, so a name from a contract can never
change a statement's meaning. The statements are written once in the SQL the three
engines share; what differs between them is data in :class:`Dialect`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from application.ports import LoadRequest
from domain.contracts import Column, LoadMode, TableContract
from domain.errors import ConfigurationError, SchemaDriftError
from domain.ledger import LedgerEntry, LedgerFilter, LoadStatus
from domain.types import MAX_VARCHAR_BYTES, ColumnType, TypeKind

# Redshift's limit, the strictest after PostgreSQL's (which Dialect carries).
MAX_IDENTIFIER_BYTES = 127
DEFAULT_LEDGER_TABLE = "datalakep_load_ledger"

Params = tuple[Any, ...]
Statement = tuple[str, Params]


@dataclass(frozen=True)
class Dialect:
    name: str
    placeholder: str  # the driver's paramstyle marker
    max_identifier_bytes: int  # PostgreSQL truncates longer names silently
    case_sensitive_identifiers: bool  # DuckDB and Redshift match quoted names in any case
    reports_text_length: bool  # DuckDB keeps no varchar/char length in its catalog
    char_reported_as_varchar: bool  # DuckDB stores CHAR(n) as VARCHAR
    # The server stamps _loaded_at itself when a bulk load leaves it out: parsing a
    # timestamp per row out of COPY's CSV costs PostgreSQL ~0.45 s per million rows.
    loaded_at_default: str | None = None


DUCKDB = Dialect("duckdb", "?", MAX_IDENTIFIER_BYTES, False, False, True)
POSTGRES = Dialect(
    "postgres", "%s", 63, True, True, False, loaded_at_default="(now() AT TIME ZONE 'UTC')"
)
REDSHIFT = Dialect("redshift", "%s", MAX_IDENTIFIER_BYTES, False, True, False)


def quote_ident(name: str) -> str:
    """``name`` as a double-quoted identifier, exactly as written (never case-folded)."""
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"invalid SQL identifier {name!r}: empty", identifier=name)
    if "\x00" in name:
        raise ConfigurationError(f"invalid SQL identifier {name!r}: contains NUL", identifier=name)
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        raise ConfigurationError(
            f"invalid SQL identifier {name!r}: not valid Unicode", identifier=name
        ) from None
    if size > MAX_IDENTIFIER_BYTES:
        raise ConfigurationError(
            f"invalid SQL identifier {name!r}: {size} UTF-8 bytes, at most "
            f"{MAX_IDENTIFIER_BYTES} allowed",
            identifier=name,
        )
    return '"' + name.replace('"', '""') + '"'


def _quote(name: str, dialect: Dialect) -> str:
    quoted = quote_ident(name)
    size = len(name.encode("utf-8"))
    if size > dialect.max_identifier_bytes:
        raise ConfigurationError(
            f"invalid SQL identifier {name!r}: {size} UTF-8 bytes, {dialect.name} allows "
            f"{dialect.max_identifier_bytes}",
            identifier=name,
        )
    return quoted


def _varchar(length: int) -> ColumnType:
    return ColumnType(TypeKind.VARCHAR, length=length)


_TIMESTAMP = ColumnType(TypeKind.TIMESTAMP)
_BIGINT = ColumnType(TypeKind.BIGINT)

LOAD_ID, LOADED_AT = "_load_id", "_loaded_at"
# Each row carries the load that wrote it and when; the source object, its version
# and the sheets are one join away, in the ledger row of that load_id. A per-row
# source URI would repeat ~100 bytes a row and cost a third of a bulk load's time.
LINEAGE_COLUMNS: tuple[Column, ...] = (
    Column(LOAD_ID, _varchar(36), nullable=False),
    Column(LOADED_AT, _TIMESTAMP, nullable=False),
)

LEDGER_COLUMNS: tuple[Column, ...] = (
    Column("load_id", _varchar(36), nullable=False),
    Column("source_uri", _varchar(1024), nullable=False),
    Column("source_version", _varchar(256), nullable=False),
    Column("table_name", _varchar(MAX_IDENTIFIER_BYTES), nullable=True),
    Column("sheets", _varchar(MAX_VARCHAR_BYTES), nullable=False),  # a JSON array
    Column("status", _varchar(16), nullable=False),
    Column("rows_read", _BIGINT, nullable=False),
    Column("rows_loaded", _BIGINT, nullable=False),
    Column("rows_rejected", _BIGINT, nullable=False),
    Column("started_at", _TIMESTAMP, nullable=False),
    Column("finished_at", _TIMESTAMP, nullable=False),
    Column("error", _varchar(MAX_VARCHAR_BYTES), nullable=True),
    Column("rejects_report", _varchar(1024), nullable=True),
)
# Columns added to the ledger after its first release, nullable so that rows
# written before them stay valid. A ledger without them gains them when the
# service opens it: see ledger_migration_sql.
ADDED_LEDGER_COLUMNS = ("rejects_report",)


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


# ---------------------------------------------------------------- DDL


def _create_sql(
    table: str,
    columns: Sequence[Column],
    key: Sequence[str],
    d: Dialect,
    defaults: dict[str, str] | None = None,
) -> str:
    given = defaults or {}
    lines = [
        f"{_quote(c.name, d)} {c.type.sql}{'' if c.nullable else ' NOT NULL'}"
        + (f" DEFAULT {given[c.name]}" if c.name in given else "")
        for c in columns
    ]
    if key:
        # Redshift does not enforce it; the ledger and the merge are what keep keys unique.
        lines.append(f"PRIMARY KEY ({', '.join(_quote(k, d) for k in key)})")
    body = ",\n    ".join(lines)
    return f"CREATE TABLE IF NOT EXISTS {_quote(table, d)} (\n    {body}\n)"


def create_table_sql(contract: TableContract, dialect: Dialect) -> str:
    defaults = {LOADED_AT: dialect.loaded_at_default} if dialect.loaded_at_default else None
    return _create_sql(
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


def create_ledger_sql(dialect: Dialect, ledger_table: str = DEFAULT_LEDGER_TABLE) -> str:
    return _create_sql(ledger_table, LEDGER_COLUMNS, (), dialect)


def ledger_migration_sql(
    found: Iterable[ColumnShape], dialect: Dialect, ledger_table: str = DEFAULT_LEDGER_TABLE
) -> tuple[str, ...]:
    """ALTER statements adding the ledger columns that ``found`` (the catalog) lacks.

    Only ADDED_LEDGER_COLUMNS are ever added; anything else missing is drift.
    PostgreSQL and DuckDB say IF NOT EXISTS, so two processes migrating at once
    both succeed; Redshift has no such clause for columns, which is why the
    catalog is read first, and a concurrent duplicate fails there and is re-checked.
    """
    have = {c.name.casefold() for c in found}
    guard = "" if dialect.name == "redshift" else "IF NOT EXISTS "
    table = _quote(ledger_table, dialect)
    return tuple(
        f"ALTER TABLE {table} ADD COLUMN {guard}{_quote(c.name, dialect)} {c.type.sql}"
        for c in LEDGER_COLUMNS
        if c.name in ADDED_LEDGER_COLUMNS and c.name.casefold() not in have
    )


# ---------------------------------------------------------------- drift


@dataclass(frozen=True)
class ColumnShape:
    """A column as a catalog can describe it; None where the catalog does not say."""

    name: str
    family: str  # a TypeKind value, or the catalog's own name for anything else
    text: str  # for messages
    nullable: bool
    length: int | None = None
    precision: int | None = None
    scale: int | None = None

    @classmethod
    def of(cls, column: Column) -> ColumnShape:
        t = column.type
        return cls(
            column.name, t.kind.value, t.sql, column.nullable, t.length, t.precision, t.scale
        )


def expected_columns(contract: TableContract) -> tuple[ColumnShape, ...]:
    return tuple(ColumnShape.of(c) for c in table_columns(contract))


def expected_ledger_columns() -> tuple[ColumnShape, ...]:
    return tuple(ColumnShape.of(c) for c in LEDGER_COLUMNS)


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


_FAMILIES = {
    "character varying": TypeKind.VARCHAR,
    "varchar": TypeKind.VARCHAR,
    "character": TypeKind.CHAR,
    "char": TypeKind.CHAR,
    "bpchar": TypeKind.CHAR,
    "numeric": TypeKind.DECIMAL,
    "decimal": TypeKind.DECIMAL,
    "double precision": TypeKind.DOUBLE,
    "double": TypeKind.DOUBLE,
    "float8": TypeKind.DOUBLE,
    "smallint": TypeKind.SMALLINT,
    "int2": TypeKind.SMALLINT,
    "integer": TypeKind.INTEGER,
    "int": TypeKind.INTEGER,
    "int4": TypeKind.INTEGER,
    "bigint": TypeKind.BIGINT,
    "int8": TypeKind.BIGINT,
    "boolean": TypeKind.BOOLEAN,
    "bool": TypeKind.BOOLEAN,
    "date": TypeKind.DATE,
    "timestamp": TypeKind.TIMESTAMP,
    "timestamp without time zone": TypeKind.TIMESTAMP,
}


def shape_from_catalog(row: Sequence[Any], dialect: Dialect) -> ColumnShape:
    name, data_type, is_nullable, char_length, precision, scale = row
    raw = str(data_type)
    base = re.sub(r"\(.*\)", "", raw).strip().lower()
    kind = _FAMILIES.get(base)
    family = kind.value if kind is not None else base
    length = int(char_length) if char_length is not None and dialect.reports_text_length else None
    text = raw + (f"({length})" if length is not None and "(" not in raw else "")
    decimal = kind is TypeKind.DECIMAL
    return ColumnShape(
        name=str(name),
        family=family,
        text=text,
        nullable=str(is_nullable).upper() == "YES",
        length=length if kind in (TypeKind.VARCHAR, TypeKind.CHAR) else None,
        precision=int(precision) if decimal and precision is not None else None,
        scale=int(scale) if decimal and scale is not None else None,
    )


def _type_differs(expected: ColumnShape, found: ColumnShape, dialect: Dialect | None) -> bool:
    family_ok = expected.family == found.family or (
        dialect is not None
        and dialect.char_reported_as_varchar
        and expected.family == TypeKind.CHAR.value
        and found.family == TypeKind.VARCHAR.value
    )
    if not family_ok:
        return True
    # Only what the catalog reported is compared: a None there means "not known".
    return any(
        f is not None and f != e
        for e, f in (
            (expected.length, found.length),
            (expected.precision, found.precision),
            (expected.scale, found.scale),
        )
    )


def _nullness(shape: ColumnShape) -> str:
    return "NULL" if shape.nullable else "NOT NULL"


def drift_differences(
    expected: Iterable[ColumnShape], found: Iterable[ColumnShape], dialect: Dialect | None = None
) -> list[str]:
    """How ``found`` differs from ``expected``, one line per column; empty when it fits.

    Column order is not compared: every insert names its columns. ``dialect`` None
    compares two fully known descriptions exactly (two contracts, say).
    """
    fold = dialect is not None and not dialect.case_sensitive_identifiers

    def key(name: str) -> str:
        return name.casefold() if fold else name

    wanted = {key(c.name): c for c in expected}
    present = {key(c.name): c for c in found}
    problems = [f"column {c.name}: missing in table" for k, c in wanted.items() if k not in present]
    problems += [
        f"column {c.name}: unexpected in table" for k, c in present.items() if k not in wanted
    ]
    for k, e in wanted.items():
        f = present.get(k)
        if f is None:
            continue
        if _type_differs(e, f, dialect):
            problems.append(f"column {e.name}: type differs: expected {e.text} found {f.text}")
        if e.nullable != f.nullable:
            problems.append(
                f"column {e.name}: nullability differs: expected {_nullness(e)} "
                f"found {_nullness(f)}"
            )
    return problems


def check_drift(
    table: str,
    expected: Iterable[ColumnShape],
    found: Iterable[ColumnShape],
    dialect: Dialect | None = None,
) -> None:
    problems = drift_differences(expected, found, dialect)
    if problems:
        raise SchemaDriftError(
            f"table {table} differs from its contract (it is never altered): "
            + "; ".join(problems),
            table=table,
            differences=problems,
        )


# ---------------------------------------------------------------- merge


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
    target, source = _quote(contract.name, d), _quote(staging, d)
    own = ", ".join(_quote(c.name, d) for c in contract.columns)
    lineage_cols = ", ".join(_quote(c.name, d) for c in LINEAGE_COLUMNS)
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
        f"{target}.{_quote(k, d)} = {source}.{_quote(k, d)}" for k in contract.primary_key
    )
    return ((f"DELETE FROM {target} USING {source} WHERE {match}", ()), insert)


def select_rows_sql(
    table: str, columns: Sequence[str], order_by: Sequence[str], dialect: Dialect
) -> str:
    d = dialect
    listed = ", ".join(_quote(c, d) for c in columns)
    order = ", ".join(f"{_quote(c, d)} NULLS FIRST" for c in order_by)
    return f"SELECT {listed} FROM {_quote(table, d)}" + (f" ORDER BY {order}" if order else "")


# ---------------------------------------------------------------- ledger


def _ledger_list(d: Dialect) -> str:
    return ", ".join(_quote(c.name, d) for c in LEDGER_COLUMNS)


def ledger_insert_sql(dialect: Dialect, ledger_table: str = DEFAULT_LEDGER_TABLE) -> str:
    marks = ", ".join(dialect.placeholder for _ in LEDGER_COLUMNS)
    return f"INSERT INTO {_quote(ledger_table, dialect)} ({_ledger_list(dialect)}) VALUES ({marks})"


def already_loaded_sql(dialect: Dialect, ledger_table: str = DEFAULT_LEDGER_TABLE) -> str:
    """The id of the load that holds (source_uri, source_version, table), if any."""
    p = dialect.placeholder
    return (
        f"SELECT load_id FROM {_quote(ledger_table, dialect)} WHERE source_uri = {p} "
        f"AND source_version = {p} AND table_name = {p} AND status = '{LoadStatus.LOADED.value}' "
        "ORDER BY finished_at DESC, load_id LIMIT 1"
    )


def loaded_tables_sql(dialect: Dialect, ledger_table: str = DEFAULT_LEDGER_TABLE) -> str:
    """Parameters: source_uri, source_version."""
    p = dialect.placeholder
    return (
        f"SELECT DISTINCT table_name FROM {_quote(ledger_table, dialect)} "
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
    table = _quote(ledger_table, dialect)
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
    sql = f"SELECT {_ledger_list(dialect)} FROM {_quote(ledger_table, dialect)}"
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


def utc_naive(moment: datetime) -> datetime:
    """How timestamps are stored: naive, in UTC (an aware value is converted)."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def utc_now() -> datetime:
    return utc_naive(datetime.now(UTC))


def _fit(text: str | None, limit: int = MAX_VARCHAR_BYTES) -> str | None:
    # Redshift counts VARCHAR lengths in bytes; cut on a character boundary.
    if text is None:
        return None
    return text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")


def normalise_entry(entry: LedgerEntry) -> LedgerEntry:
    """The entry as the ledger stores it and gives it back."""
    return replace(
        entry,
        status=LoadStatus(entry.status),
        sheets=tuple(entry.sheets),
        started_at=utc_naive(entry.started_at),
        finished_at=utc_naive(entry.finished_at),
        error=_fit(entry.error),
    )


def entry_for(
    request: LoadRequest, status: LoadStatus, rows_loaded: int, finished_at: datetime
) -> LedgerEntry:
    """The ledger row a load() writes: ``loaded``, or ``skipped`` with no rows."""
    return normalise_entry(
        LedgerEntry(
            load_id=request.load_id,
            source_uri=request.source_uri,
            source_version=request.source_version,
            table=request.contract.name,
            sheets=request.sheets,
            status=status,
            rows_read=request.rows_read,
            rows_loaded=rows_loaded,
            rows_rejected=request.rows_rejected,
            started_at=request.started_at,
            finished_at=finished_at,
            rejects_report=request.rejects_report,
        )
    )


def ledger_params(entry: LedgerEntry) -> Params:
    """Values for :func:`ledger_insert_sql`, in ``LEDGER_COLUMNS`` order."""
    e = normalise_entry(entry)
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
        rejects_report=None if report is None else str(report),
    )


# ================================================================ PostgreSQL additions
# Used by postgres_warehouse only; nothing above depends on them.

# Catalog lengths and precisions this dialect leaves out mean "unbounded", and an unbounded
# column is never what a contract declares; 0 is a length or precision no contract can have.
_UNBOUNDED = 0


def strict_shape_from_catalog(row: Sequence[Any], dialect: Dialect) -> ColumnShape:
    """As :func:`shape_from_catalog`, for a catalog that reports every length it has.

    There a varchar without a length or a bare numeric is a difference from the contract,
    where :func:`shape_from_catalog` would read it as "not known" and let it pass.
    """
    shape = shape_from_catalog(row, dialect)
    if not dialect.reports_text_length:
        return shape
    if shape.family in (TypeKind.VARCHAR.value, TypeKind.CHAR.value) and shape.length is None:
        return replace(shape, length=_UNBOUNDED)
    if shape.family == TypeKind.DECIMAL.value:
        if shape.precision is None:
            return replace(shape, precision=_UNBOUNDED)
        # information_schema's data_type is a bare "numeric"; a message needs (p,s).
        return replace(shape, text=f"{shape.text}({shape.precision},{shape.scale})")
    return shape


def staging_table_sql(contract: TableContract, staging: str, dialect: Dialect) -> str:
    """A session-private copy of the contract's columns, gone when the transaction ends.

    No NOT NULL or key here: the INSERT into the real table enforces them, with its name
    in the error.
    """
    cols = ", ".join(f"{_quote(c.name, dialect)} {c.type.sql}" for c in contract.columns)
    return f"CREATE TEMP TABLE {_quote(staging, dialect)} ({cols}) ON COMMIT DROP"


def copy_csv_sql(table: str, columns: Sequence[str], dialect: Dialect) -> str:
    """COPY of headerless CSV: an unquoted empty field is NULL, a quoted one ("") is ''."""
    listed = ", ".join(_quote(c, dialect) for c in columns)
    return f"COPY {_quote(table, dialect)} ({listed}) FROM STDIN (FORMAT csv)"


def has_rows_sql(table: str, dialect: Dialect) -> str:
    return f"SELECT EXISTS (SELECT 1 FROM {_quote(table, dialect)})"


def needs_staging(contract: TableContract, target_has_rows: bool) -> bool:
    """Whether a load must stage its rows and merge, or may write straight to the table.

    Staging exists to find the rows an upsert replaces. APPEND replaces nothing,
    REPLACE empties the table first, and an UPSERT into an empty table replaces
    nothing either: all three write once, straight into the table.
    """
    return contract.load_mode is LoadMode.UPSERT and target_has_rows


def delete_all_sql(table: str, dialect: Dialect) -> str:
    # DELETE, not TRUNCATE: Redshift's TRUNCATE commits the transaction it runs in.
    return f"DELETE FROM {_quote(table, dialect)}"


def analyze_sql(table: str, dialect: Dialect) -> str:
    return f"ANALYZE {_quote(table, dialect)}"


def lock_table_sql(table: str, dialect: Dialect) -> str:
    """Serialise writers of one table while readers carry on.

    Two merges of overlapping keys in parallel would each miss the other's new rows in
    their DELETE and then collide on the key in their INSERT.
    """
    return f"LOCK TABLE {_quote(table, dialect)} IN SHARE ROW EXCLUSIVE MODE"


def advisory_xact_lock_sql(dialect: Dialect) -> str:
    """Parameter: a key from :func:`load_lock_key` or :func:`ddl_lock_key`."""
    return f"SELECT pg_advisory_xact_lock(hashtextextended({dialect.placeholder}, 0))"


def load_lock_key(source_uri: str, source_version: str, table: str) -> str:
    # JSON, not plain concatenation, so ("ab", "c") and ("a", "bc") stay apart.
    return json.dumps(["load", source_uri, source_version, table], ensure_ascii=False)


def ddl_lock_key(table: str) -> str:
    return json.dumps(["ddl", table], ensure_ascii=False)


_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")


def escape_percent(statement: str) -> str:
    """``statement`` for a driver with ``%s`` parameters: each ``%`` quoted in it doubled.

    A name such as ``100%`` is legal in a quoted identifier, but psycopg would read its
    ``%`` as the start of a placeholder. Run only statements that are given parameters
    through this; without parameters the driver sends the text untouched.
    """
    return _QUOTED.sub(lambda m: m.group(0).replace("%", "%%"), statement)
