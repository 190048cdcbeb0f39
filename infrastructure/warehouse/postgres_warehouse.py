"""The Warehouse port on PostgreSQL, through psycopg 3 and COPY."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import psycopg
import psycopg.errors
import pyarrow as pa
import pyarrow.csv as pacsv

from application.ports import LoadReceipt, LoadRequest
from domain.contracts import LoadMode, TableContract
from domain.errors import ConfigurationError, TerminalError, WarehouseUnavailableError
from domain.ledger import LedgerEntry, LedgerFilter, LoadStatus
from infrastructure.warehouse import sql
from infrastructure.warehouse.arrow_columns import repeated_text
from infrastructure.warehouse.credentials import Credentials
from infrastructure.warehouse.sql import POSTGRES, Params

T = TypeVar("T")
Connection = psycopg.Connection[tuple[Any, ...]]
Cursor = psycopg.Cursor[tuple[Any, ...]]

# Rows per CSV chunk sent to COPY: big enough to amortise the writes, small enough that a
# million-row load never holds its whole CSV text in memory.
COPY_BATCH_ROWS = 50_000
# Temp tables are never auto-analysed; above this the merge's join plan needs statistics.
ANALYZE_MIN_ROWS = 10_000

_SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# What a server that answered says when the settings, not the moment, are wrong.
_REFUSALS = (
    "password authentication failed",
    "authentication failed",
    "no pg_hba.conf entry",
    "does not exist",
    "permission denied",
    "password is required",
    "invalid sslmode",
)


@dataclass(frozen=True)
class PostgresOptions:
    sslmode: str = "prefer"
    connect_timeout: int = 10
    application_name: str = "datalakep"
    retry_attempts: int = 4
    retry_base_delay_s: float = 0.2
    retry_max_delay_s: float = 5.0

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any] | None) -> PostgresOptions:
        """The known keys of ``options`` (the YAML ``warehouse`` section); others are ignored."""
        given = dict(options or {})
        default = cls()
        try:
            made = cls(
                sslmode=str(given.get("sslmode", default.sslmode)),
                connect_timeout=int(given.get("connect_timeout", default.connect_timeout)),
                application_name=str(given.get("application_name", default.application_name)),
                retry_attempts=int(given.get("retry_attempts", default.retry_attempts)),
                retry_base_delay_s=float(
                    given.get("retry_base_delay_s", default.retry_base_delay_s)
                ),
                retry_max_delay_s=float(given.get("retry_max_delay_s", default.retry_max_delay_s)),
            )
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"warehouse options: {exc}") from None
        if made.sslmode not in _SSL_MODES:
            raise ConfigurationError(
                f"warehouse.sslmode {made.sslmode!r}: expected one of {', '.join(_SSL_MODES)}"
            )
        if made.retry_attempts < 1 or made.connect_timeout < 1:
            raise ConfigurationError("warehouse.retry_attempts and connect_timeout must be >= 1")
        if made.retry_base_delay_s < 0 or made.retry_max_delay_s < 0:
            raise ConfigurationError("warehouse retry delays must be >= 0")
        return made


class PostgresWarehouse:
    """Tables and the load ledger in one PostgreSQL database, in its current schema.

    One connection, opened on first use and reopened when the server drops it. Every
    call is retried as a whole, with bounded exponential backoff and jitter, when the
    connection is lost or the server reports a serialization failure or deadlock; after
    the last attempt it raises WarehouseUnavailableError (transient). Calls on one
    instance are serialised; instances (and processes) coordinate through the server:
    loads of one file version take an advisory lock, so two at once end as one load
    and one skip, and merges into one table take turns.

    Test hook: ``_after_merge`` runs inside the load transaction after the rows are
    merged and before the ledger row is written.
    """

    def __init__(
        self,
        credentials: Credentials,
        *,
        ledger_table: str = sql.DEFAULT_LEDGER_TABLE,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        sql.ledger_insert_sql(POSTGRES, ledger_table)  # a bad name fails here, not on first use
        self._credentials = credentials
        self._options = PostgresOptions.from_mapping(options)
        self._ledger = ledger_table
        self._con: Connection | None = None
        self._ledger_ready = False
        self._contracts: dict[str, TableContract] = {}
        # Per table: whether the server fills _loaded_at when COPY leaves it out.
        self._stamps_loaded_at: dict[str, bool] = {}
        self._lock = threading.RLock()
        c = credentials
        self._where = f"PostgreSQL {c.host}:{c.port}/{c.database}"

    # ------------------------------------------------------------ port

    def ensure_table(self, contract: TableContract) -> None:
        expected = sql.expected_columns(contract)
        create = sql.create_table_sql(contract, POSTGRES)

        def work(con: Connection) -> None:
            # Under a lock: two processes creating one table at once can collide in the
            # catalog even with IF NOT EXISTS.
            with con.transaction(), con.cursor() as cur:
                _execute(
                    cur, sql.advisory_xact_lock_sql(POSTGRES), (sql.ddl_lock_key(contract.name),)
                )
                found = self._catalog(cur, contract.name)
                if found:
                    sql.check_drift(contract.name, expected, found, POSTGRES)
                else:
                    _execute(cur, create)
                stamped = _execute(
                    cur, sql.stamps_loaded_at_sql(POSTGRES), (contract.name,)
                ).fetchone()
                self._stamps_loaded_at[contract.name] = bool(stamped and stamped[0])

        self._retrying("ensure_table", work, contract.name)
        self._contracts[contract.name] = contract

    def loaded_tables(self, source_uri: str, source_version: str) -> frozenset[str]:
        query = sql.loaded_tables_sql(POSTGRES, self._ledger)

        def work(con: Connection) -> list[tuple[Any, ...]]:
            with con.cursor() as cur:
                return _execute(cur, query, (source_uri, source_version)).fetchall()

        return frozenset(str(r[0]) for r in self._retrying("loaded_tables", work))

    def load(self, request: LoadRequest) -> LoadReceipt:
        contract = request.contract
        missing = [c for c in contract.column_names if c not in request.rows.column_names]
        if missing:
            raise ValueError(f"table {contract.name}: the rows lack columns {missing}")
        rows = request.rows.select(list(contract.column_names))
        return self._retrying(
            "load", lambda con: self._load_once(con, request, rows), contract.name
        )

    def record(self, entry: LedgerEntry) -> None:
        if LoadStatus(entry.status) is LoadStatus.LOADED:
            raise ValueError("a 'loaded' ledger row is written by load() alone")

        def work(con: Connection) -> None:
            with con.cursor() as cur:
                self._write_ledger(cur, entry)

        self._retrying("record", work, entry.table)

    def history(
        self, limit: int | None = None, where: LedgerFilter | None = None
    ) -> Sequence[LedgerEntry]:
        query, params = sql.history_statement(POSTGRES, self._ledger, limit, where)

        def work(con: Connection) -> list[tuple[Any, ...]]:
            with con.cursor() as cur:
                return _execute(cur, query, params).fetchall()

        return [sql.ledger_entry(r) for r in self._retrying("history", work)]

    def recorded_versions(self, source_uris: Collection[str]) -> frozenset[tuple[str, str]]:
        statements = list(sql.recorded_versions_statements(source_uris, POSTGRES, self._ledger))

        def work(con: Connection) -> set[tuple[str, str]]:
            found: set[tuple[str, str]] = set()
            with con.cursor() as cur:
                for query, params in statements:
                    found.update((str(u), str(v)) for u, v in _execute(cur, query, params))
            return found

        return frozenset(self._retrying("recorded_versions", work))

    def close(self) -> None:
        with self._lock:
            self._discard()

    # ------------------------------------------------------------ for tests

    def rows(self, table: str) -> list[dict[str, Any]]:
        """Every row of ``table``, lineage included, ordered by primary key.

        Without a known contract (no ensure_table on this instance) the order is by
        every column.
        """

        def work(con: Connection) -> list[dict[str, Any]]:
            with con.cursor() as cur:
                contract = self._contracts.get(table)
                if contract is not None:
                    columns = [c.name for c in sql.table_columns(contract)]
                    order = list(contract.primary_key or contract.column_names)
                else:
                    columns = [c.name for c in self._catalog(cur, table)]
                    order = columns
                if not columns:
                    return []  # no such table: as empty as the in-memory fake's
                query = sql.select_rows_sql(table, columns, order, POSTGRES)
                return [dict(zip(columns, r, strict=True)) for r in _execute(cur, query)]

        return self._retrying("rows", work, table)

    def _after_merge(self) -> None:
        """Failure-injection point for tests; see the class docstring."""

    # ------------------------------------------------------------ internals

    def _load_once(self, con: Connection, request: LoadRequest, rows: pa.Table) -> LoadReceipt:
        contract, now = request.contract, sql.utc_now()
        key = sql.load_lock_key(request.source_uri, request.source_version, contract.name)
        with con.transaction(), con.cursor() as cur:
            # Held to COMMIT: a second load of this version waits here, then sees the ledger row.
            _execute(cur, sql.advisory_xact_lock_sql(POSTGRES), (key,))
            earlier = _execute(
                cur,
                sql.already_loaded_sql(POSTGRES, self._ledger),
                (request.source_uri, request.source_version, contract.name),
            ).fetchone()
            if earlier is not None and str(earlier[0]) == request.load_id:
                # Our own COMMIT went through before the connection dropped: not a skip.
                return LoadReceipt(LoadStatus.LOADED, request.load_id, rows.num_rows)
            if earlier is not None:
                self._write_ledger(cur, sql.entry_for(request, LoadStatus.SKIPPED, 0, now))
                return LoadReceipt(LoadStatus.SKIPPED, str(earlier[0]), 0)
            lineage = sql.Lineage(request.load_id, now)
            if self._write_straight(cur, contract):
                if contract.load_mode is LoadMode.REPLACE:
                    _execute(cur, sql.delete_all_sql(contract.name, POSTGRES))
                stamped = self._stamps_loaded_at.get(contract.name, False)
                _copy_csv(cur, contract.name, rows, lineage, server_stamps_loaded_at=stamped)
            else:
                self._stage_and_merge(cur, contract, rows, lineage)
            self._after_merge()
            count = rows.num_rows
            self._write_ledger(cur, sql.entry_for(request, LoadStatus.LOADED, count, now))
        return LoadReceipt(LoadStatus.LOADED, request.load_id, count)

    def _write_straight(self, cur: Cursor, contract: TableContract) -> bool:
        """Whether this load may COPY straight into the table; if so, the table is locked.

        Straight is one pass instead of three (COPY to staging, ANALYZE, INSERT ...
        SELECT): about half the time of a first load. An upsert needs the lock
        before it trusts "empty": another load could fill the table in between.
        """
        if sql.needs_staging(contract, _has_rows(cur, contract.name)):
            return False
        _execute(cur, sql.lock_table_sql(contract.name, POSTGRES))
        return not sql.needs_staging(contract, _has_rows(cur, contract.name))

    def _stage_and_merge(
        self, cur: Cursor, contract: TableContract, rows: pa.Table, lineage: sql.Lineage
    ) -> None:
        staging = f"_datalakep_staging_{uuid.uuid4().hex}"
        _execute(cur, sql.staging_table_sql(contract, staging, POSTGRES))
        _copy_csv(cur, staging, rows)
        if rows.num_rows >= ANALYZE_MIN_ROWS:
            _execute(cur, sql.analyze_sql(staging, POSTGRES))
        # Taken late (unless _write_straight already holds it), so that other
        # loads of this table wait only for the merge, not for our COPY.
        _execute(cur, sql.lock_table_sql(contract.name, POSTGRES))
        for statement, params in sql.merge_statements(contract, staging, lineage, POSTGRES):
            _execute(cur, statement, params)

    def _retrying(self, what: str, work: Callable[[Connection], T], table: str | None = None) -> T:
        """``work`` in a fresh attempt per transient failure; see the class docstring."""
        opts = self._options
        for attempt in range(1, opts.retry_attempts + 1):
            try:
                with self._lock:
                    try:
                        return work(self._connection())
                    finally:
                        if self._con is not None and (self._con.closed or self._con.broken):
                            self._discard()
            except psycopg.errors.ProgramLimitExceeded as exc:
                raise self._refused(what, table, exc, "warehouse_error") from exc
            except psycopg.OperationalError as exc:
                # Also the home of SerializationFailure and DeadlockDetected.
                if attempt == opts.retry_attempts:
                    raise WarehouseUnavailableError(
                        f"{self._where}: {what}{_of(table)} failed after {attempt} "
                        f"attempt(s): {self._scrub(exc)}",
                        host=self._credentials.host,
                        port=self._credentials.port,
                        attempts=attempt,
                    ) from exc
            except (psycopg.IntegrityError, psycopg.DataError) as exc:
                raise self._refused(what, table, exc, "constraint_violation") from exc
            except psycopg.Error as exc:
                # Anything else (a missing table, no privilege...) fails again on retry.
                raise self._refused(what, table, exc, "warehouse_error") from exc
            delay = min(opts.retry_max_delay_s, opts.retry_base_delay_s * 2 ** (attempt - 1))
            # Jitter, so that workers that failed together do not retry together.
            time.sleep(delay * random.uniform(0.5, 1.0))
        raise AssertionError("unreachable: retry_attempts >= 1")

    def _refused(
        self, what: str, table: str | None, exc: psycopg.Error, code: str
    ) -> TerminalError:
        return TerminalError(
            f"{self._where}: {what}{_of(table)} refused: {self._scrub(exc)}",
            code=code,
            table=table,
            sqlstate=exc.sqlstate,
        )

    def _connection(self) -> Connection:
        if self._con is not None and (self._con.closed or self._con.broken):
            self._discard()
        if self._con is None:
            self._con = self._connect()
        if not self._ledger_ready:
            self._prepare_ledger(self._con)
            self._ledger_ready = True
        return self._con

    def _connect(self) -> Connection:
        c, opts = self._credentials, self._options
        try:
            return psycopg.connect(
                host=c.host,
                port=c.port,
                dbname=c.database,
                user=c.user,
                password=c.password,
                sslmode=opts.sslmode,
                connect_timeout=opts.connect_timeout,
                application_name=opts.application_name,
                # COPY sends pyarrow's UTF-8 bytes as they are.
                client_encoding="UTF8",
                autocommit=True,
            )
        except psycopg.OperationalError as exc:
            text = self._scrub(exc)
            if any(refusal in text for refusal in _REFUSALS):
                raise ConfigurationError(
                    f"{self._where} as user {c.user!r} refused the connection: {text}",
                    host=c.host,
                    port=c.port,
                ) from exc
            raise  # unreachable or restarting: the retry loop decides

    def _prepare_ledger(self, con: Connection) -> None:
        with con.transaction(), con.cursor() as cur:
            _execute(cur, sql.advisory_xact_lock_sql(POSTGRES), (sql.ddl_lock_key(self._ledger),))
            found = self._catalog(cur, self._ledger)
            migrations = sql.ledger_migration_sql(found, POSTGRES, self._ledger) if found else ()
            for statement in migrations:
                _execute(cur, statement)
            if migrations:
                found = self._catalog(cur, self._ledger)
            if found:
                sql.check_drift(self._ledger, sql.expected_ledger_columns(), found, POSTGRES)
            else:
                _execute(cur, sql.create_ledger_sql(POSTGRES, self._ledger))

    def _discard(self) -> None:
        con, self._con = self._con, None
        if con is not None:
            con.close()

    def _catalog(self, cur: Cursor, table: str) -> list[sql.ColumnShape]:
        rows = _execute(cur, sql.table_columns_sql(POSTGRES), (table,)).fetchall()
        return [sql.strict_shape_from_catalog(r, POSTGRES) for r in rows]

    def _write_ledger(self, cur: Cursor, entry: LedgerEntry) -> None:
        _execute(cur, sql.ledger_insert_sql(POSTGRES, self._ledger), sql.ledger_params(entry))

    def _scrub(self, exc: BaseException) -> str:
        """The error's text, never with the password in it."""
        text = str(exc).strip()
        password = self._credentials.password
        return text.replace(password, "***") if password else text


def _execute(cur: Cursor, statement: str, params: Params | None = None) -> Cursor:
    if params is None:
        return cur.execute(statement)
    return cur.execute(sql.escape_percent(statement), params)


def _has_rows(cur: Cursor, table: str) -> bool:
    found = _execute(cur, sql.has_rows_sql(table, POSTGRES)).fetchone()
    return bool(found and found[0])


def _copy_csv(
    cur: Cursor,
    table: str,
    rows: pa.Table,
    lineage: sql.Lineage | None = None,
    *,
    server_stamps_loaded_at: bool = False,
) -> None:
    """COPY ``rows`` into ``table``, with the lineage columns appended when given.

    With ``server_stamps_loaded_at`` the column's default (the transaction's
    start, in UTC) fills ``_loaded_at`` and only ``_load_id`` is sent.
    """
    if rows.num_rows == 0:
        return
    columns = list(rows.column_names)
    constants = None
    if lineage is not None:
        constants = _LineageArrays(lineage, with_time=not server_stamps_loaded_at)
        columns += [sql.LOAD_ID] + ([] if server_stamps_loaded_at else [sql.LOADED_AT])
    statement = sql.copy_csv_sql(table, columns, POSTGRES)
    # pyarrow writes a null as an empty unquoted field and '' as "", which is exactly
    # how COPY's CSV format tells NULL from an empty string.
    options = pacsv.WriteOptions(include_header=False)
    with cur.copy(statement) as copy:
        for batch in rows.to_batches(max_chunksize=COPY_BATCH_ROWS):
            if constants is not None:
                batch = pa.RecordBatch.from_arrays(
                    [*batch.columns, *constants.of_length(batch.num_rows)], names=columns
                )
            sink = pa.BufferOutputStream()
            pacsv.write_csv(batch, sink, options)
            copy.write(memoryview(sink.getvalue()))


class _LineageArrays:
    """One load's lineage values as Arrow columns, built once per batch length."""

    def __init__(self, lineage: sql.Lineage, *, with_time: bool) -> None:
        self._lineage = lineage
        self._with_time = with_time
        self._made: dict[int, tuple[pa.Array, ...]] = {}

    def of_length(self, length: int) -> tuple[pa.Array, ...]:
        made = self._made.get(length)
        if made is None:
            made = (repeated_text(self._lineage.load_id, length),)
            if self._with_time:
                stamp = np.datetime64(self._lineage.loaded_at, "us")
                made += (pa.array(np.full(length, stamp)),)
            self._made[length] = made
        return made


def _of(table: str | None) -> str:
    return f" of table {table}" if table else ""
