"""The Warehouse port on a DuckDB file: the local and test stand-in for Redshift."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import duckdb

from application.ports import LoadReceipt, LoadRequest
from domain.contracts import TableContract
from domain.errors import ConfigurationError, TerminalError, WarehouseUnavailableError
from domain.ledger import LedgerEntry, LedgerFilter, LoadStatus
from infrastructure.warehouse import sql
from infrastructure.warehouse.sql import DUCKDB


class DuckDbWarehouse:
    """Tables and the load ledger in one DuckDB database (``path``, or ":memory:").

    Concurrency: DuckDB lets a single process open a database file for writing.
    While another process holds it, every call raises WarehouseUnavailableError
    (transient). Within this process, calls on one instance are serialised.

    Test hook: ``_after_merge`` runs inside the load transaction after the rows
    are merged and before the ledger row is written; a test monkeypatches it to
    raise and so proves a failed load leaves neither rows nor a ledger row.
    """

    def __init__(self, path: str, ledger_table: str = sql.DEFAULT_LEDGER_TABLE) -> None:
        sql.quote_ident(ledger_table)  # a bad name fails here, not on first use
        self._path = path
        self._ledger = ledger_table
        self._con: duckdb.DuckDBPyConnection | None = None
        self._contracts: dict[str, TableContract] = {}
        self._lock = threading.RLock()

    # ------------------------------------------------------------ port

    def ensure_table(self, contract: TableContract) -> None:
        expected = sql.expected_columns(contract)
        with self._session() as con:
            found = self._catalog(con, contract.name)
            if found:
                sql.check_drift(contract.name, expected, found, DUCKDB)
            else:
                con.execute(sql.create_table_sql(contract, DUCKDB))
        self._contracts[contract.name] = contract

    def loaded_tables(self, source_uri: str, source_version: str) -> frozenset[str]:
        with self._session() as con:
            query = sql.loaded_tables_sql(DUCKDB, self._ledger)
            rows = con.execute(query, [source_uri, source_version]).fetchall()
        return frozenset(str(r[0]) for r in rows)

    def load(self, request: LoadRequest) -> LoadReceipt:
        contract = request.contract
        missing = [c for c in contract.column_names if c not in request.rows.column_names]
        if missing:
            raise ValueError(f"table {contract.name}: the rows lack columns {missing}")
        staging = f"_datalakep_staging_{uuid.uuid4().hex}"
        with self._session(contract.name) as con:
            con.register(staging, request.rows)
            try:
                with _transaction(con):
                    return self._merge_or_skip(con, request, staging)
            finally:
                con.unregister(staging)

    def record(self, entry: LedgerEntry) -> None:
        if LoadStatus(entry.status) is LoadStatus.LOADED:
            raise ValueError("a 'loaded' ledger row is written by load() alone")
        with self._session(entry.table) as con:
            self._write_ledger(con, entry)

    def history(
        self, limit: int | None = None, where: LedgerFilter | None = None
    ) -> Sequence[LedgerEntry]:
        query, params = sql.history_statement(DUCKDB, self._ledger, limit, where)
        with self._session() as con:
            rows = con.execute(query, list(params)).fetchall()
        return [sql.ledger_entry(r) for r in rows]

    def recorded_versions(self, source_uris: Collection[str]) -> frozenset[tuple[str, str]]:
        statements = sql.recorded_versions_statements(source_uris, DUCKDB, self._ledger)
        found: set[tuple[str, str]] = set()
        with self._session() as con:
            for query, params in statements:
                rows = con.execute(query, list(params)).fetchall()
                found.update((str(u), str(v)) for u, v in rows)
        return frozenset(found)

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None

    # ------------------------------------------------------------ for tests

    def rows(self, table: str) -> list[dict[str, Any]]:
        """Every row of ``table``, lineage included, ordered by primary key.

        Without a known contract (no ensure_table on this instance) the order is by
        every column.
        """
        with self._session(table) as con:
            contract = self._contracts.get(table)
            if contract is not None:
                columns = [c.name for c in sql.table_columns(contract)]
                order = list(contract.primary_key or contract.column_names)
            else:
                columns = [c.name for c in self._catalog(con, table)]
                order = columns
            if not columns:
                return []  # no such table: as empty as the in-memory fake's
            cursor = con.execute(sql.select_rows_sql(table, columns, order, DUCKDB))
            return [dict(zip(columns, r, strict=True)) for r in cursor.fetchall()]

    def _after_merge(self) -> None:
        """Failure-injection point for tests; see the class docstring."""

    # ------------------------------------------------------------ internals

    @contextmanager
    def _session(self, table: str | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._lock, _translated(self._path, table):
            yield self._connection()

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            if not self._path.startswith(":memory:"):
                Path(self._path).parent.mkdir(parents=True, exist_ok=True)
            con = _connect(self._path)
            try:
                found = self._catalog(con, self._ledger)
                migrations = sql.ledger_migration_sql(found, DUCKDB, self._ledger) if found else ()
                for statement in migrations:
                    con.execute(statement)
                if migrations:
                    found = self._catalog(con, self._ledger)
                if found:
                    sql.check_drift(self._ledger, sql.expected_ledger_columns(), found, DUCKDB)
                else:
                    con.execute(sql.create_ledger_sql(DUCKDB, self._ledger))
            except BaseException:
                con.close()
                raise
            self._con = con
        return self._con

    def _merge_or_skip(
        self, con: duckdb.DuckDBPyConnection, request: LoadRequest, staging: str
    ) -> LoadReceipt:
        contract, now = request.contract, sql.utc_now()
        earlier = con.execute(
            sql.already_loaded_sql(DUCKDB, self._ledger),
            [request.source_uri, request.source_version, contract.name],
        ).fetchone()
        if earlier is not None:
            self._write_ledger(con, sql.entry_for(request, LoadStatus.SKIPPED, 0, now))
            return LoadReceipt(LoadStatus.SKIPPED, str(earlier[0]), 0)
        lineage = sql.Lineage(request.load_id, now)
        for statement, params in sql.merge_statements(contract, staging, lineage, DUCKDB):
            con.execute(statement, list(params))
        self._after_merge()
        count = request.rows.num_rows
        self._write_ledger(con, sql.entry_for(request, LoadStatus.LOADED, count, now))
        return LoadReceipt(LoadStatus.LOADED, request.load_id, count)

    def _catalog(self, con: duckdb.DuckDBPyConnection, table: str) -> list[sql.ColumnShape]:
        rows = con.execute(sql.table_columns_sql(DUCKDB), [table]).fetchall()
        return [sql.shape_from_catalog(r, DUCKDB) for r in rows]

    def _write_ledger(self, con: duckdb.DuckDBPyConnection, entry: LedgerEntry) -> None:
        con.execute(sql.ledger_insert_sql(DUCKDB, self._ledger), list(sql.ledger_params(entry)))


def _connect(path: str) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(path)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise WarehouseUnavailableError(
                f"DuckDB database {path} is locked by another process: {exc}", path=path
            ) from exc
        raise ConfigurationError(
            f"DuckDB database {path} cannot be opened: {exc}", path=path
        ) from exc


@contextmanager
def _transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    con.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        # A failed rollback must not hide the error that caused it.
        with suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


@contextmanager
def _translated(path: str, table: str | None) -> Iterator[None]:
    """DuckDB's errors as the service's: transient when a retry can succeed."""
    where = f"table {table} in " if table else ""
    try:
        yield
    except duckdb.IOException as exc:
        # Disk full or a vanished file mid-operation: the next attempt may succeed.
        raise WarehouseUnavailableError(
            f"{where}DuckDB database {path}: I/O error: {exc}", path=path
        ) from exc
    except duckdb.TransactionException as exc:
        if "conflict" not in str(exc).lower():
            raise
        raise WarehouseUnavailableError(
            f"{where}DuckDB database {path}: concurrent write conflict: {exc}", path=path
        ) from exc
    except (duckdb.ConstraintException, duckdb.ConversionException) as exc:
        raise TerminalError(
            f"{where}DuckDB database {path} refused the rows: {exc}",
            code="constraint_violation",
            path=path,
            table=table,
        ) from exc
