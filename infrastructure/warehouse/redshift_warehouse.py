"""The Warehouse port on Amazon Redshift, through redshift_connector."""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from typing import Any, TypeVar

import pyarrow as pa

from application.ports import LoadReceipt, LoadRequest
from domain.contracts import TableContract
from domain.errors import ConfigurationError, TerminalError, WarehouseUnavailableError
from domain.ledger import LedgerEntry, LedgerFilter, LoadStatus
from infrastructure.warehouse import redshift_errors as errors
from infrastructure.warehouse import redshift_sql, sql
from infrastructure.warehouse.credentials import Credentials
from infrastructure.warehouse.redshift_options import RedshiftOptions
from infrastructure.warehouse.s3_staging import ParquetStager
from infrastructure.warehouse.sql import REDSHIFT

log = logging.getLogger(__name__)
T = TypeVar("T")
Cursor = Any  # redshift_connector.Cursor, imported lazily


class RedshiftWarehouse:
    """Tables and the load ledger in one Redshift database.

    The connection is opened on first use and kept (a warm Lambda reuses it),
    and opened again when it has dropped. Reads run in autocommit; a load is one
    explicit transaction that starts by locking the ledger table, so two loads of
    one file version run one after the other and the second one skips.

    Rows reach a session temp table by multi-row INSERTs, or, from
    ``copy_threshold_rows`` on and with ``staging`` configured, by COPY from a
    Parquet object in S3; then :func:`sql.merge_statements` moves them.

    A serialisation conflict or a dropped connection reruns the whole operation,
    with exponential backoff and full jitter, up to ``retry_attempts`` times, then
    raises WarehouseUnavailableError. Other server errors are TerminalError.

    Test hook: ``_after_merge`` runs inside the load transaction after the merge
    and before the ledger row, as in DuckDbWarehouse.
    """

    def __init__(
        self,
        credentials: Credentials,
        *,
        ledger_table: str = sql.DEFAULT_LEDGER_TABLE,
        options: Mapping[str, Any] | None = None,
        s3: Any | None = None,
    ) -> None:
        sql.quote_ident(ledger_table)  # a bad name fails here, not on first use
        self._credentials = credentials
        self._ledger = ledger_table
        self._options = RedshiftOptions.from_mapping(options)
        staging = self._options.staging
        self._stager = None if staging is None else ParquetStager(staging, s3)
        self._con: Any | None = None
        self._contracts: dict[str, TableContract] = {}
        self._lock = threading.RLock()
        self._sleep: Callable[[float], None] = time.sleep
        self._random = random.Random()

    def __repr__(self) -> str:
        return f"RedshiftWarehouse({self.where})"

    @property
    def where(self) -> str:
        """The database for messages and logs: never the password."""
        c = self._credentials
        return f"redshift://{c.user}@{c.host}:{c.port}/{c.database}"

    # ------------------------------------------------------------ port

    def ensure_table(self, contract: TableContract) -> None:
        ddl = redshift_sql.create_table_sql(contract, self._options.table_options)
        expected = sql.expected_columns(contract)
        self._run(lambda cur: self._create_or_check(cur, contract.name, ddl, expected))
        self._contracts[contract.name] = contract

    def loaded_tables(self, source_uri: str, source_version: str) -> frozenset[str]:
        query = sql.loaded_tables_sql(REDSHIFT, self._ledger)
        rows = self._run(lambda cur: _fetchall(cur, query, (source_uri, source_version)))
        return frozenset(str(r[0]) for r in rows)

    def load(self, request: LoadRequest) -> LoadReceipt:
        contract = request.contract
        missing = [c for c in contract.column_names if c not in request.rows.column_names]
        if missing:
            raise ValueError(f"table {contract.name}: the rows lack columns {missing}")
        # Contract order: COPY maps Parquet columns to the staging table's by position.
        rows = request.rows.select(list(contract.column_names))
        # Staged once, before the transaction: the upload holds no lock, and every
        # retry COPYs the same object.
        with self._staged(rows) as uri:
            return self._run(lambda cur: self._load_once(cur, request, rows, uri), contract.name)

    def record(self, entry: LedgerEntry) -> None:
        if LoadStatus(entry.status) is LoadStatus.LOADED:
            raise ValueError("a 'loaded' ledger row is written by load() alone")
        self._run(lambda cur: self._write_ledger(cur, entry), entry.table)

    def history(
        self, limit: int | None = None, where: LedgerFilter | None = None
    ) -> Sequence[LedgerEntry]:
        query, params = sql.history_statement(REDSHIFT, self._ledger, limit, where)
        rows = self._run(lambda cur: _fetchall(cur, query, params))
        return [sql.ledger_entry(r) for r in rows]

    def recorded_versions(self, source_uris: Collection[str]) -> frozenset[tuple[str, str]]:
        statements = list(sql.recorded_versions_statements(source_uris, REDSHIFT, self._ledger))

        def read(cur: Cursor) -> set[tuple[str, str]]:
            found: set[tuple[str, str]] = set()
            for query, params in statements:
                found.update((str(u), str(v)) for u, v in _fetchall(cur, query, params))
            return found

        return frozenset(self._run(read))

    def close(self) -> None:
        with self._lock:
            self._discard()

    # ------------------------------------------------------------ for tests

    def rows(self, table: str) -> list[dict[str, Any]]:
        """Every row of ``table``, lineage included, ordered by primary key."""

        def read(cur: Cursor) -> list[dict[str, Any]]:
            contract = self._contracts.get(table)
            if contract is not None:
                columns = [c.name for c in sql.table_columns(contract)]
                order = list(contract.primary_key or contract.column_names)
            else:
                columns = [c.name for c in self._catalog(cur, table)]
                order = columns
            if not columns:
                return []
            found = _fetchall(cur, sql.select_rows_sql(table, columns, order, REDSHIFT))
            return [dict(zip(columns, r, strict=True)) for r in found]

        return self._run(read, table)

    def _after_merge(self) -> None:
        """Failure-injection point for tests; see the class docstring."""

    # ------------------------------------------------------------ attempts

    def _run(self, work: Callable[[Cursor], T], table: str | None = None) -> T:
        """``work`` on a live connection, rerun while the failure is worth a retry."""
        policy = self._options.retry
        with self._lock:
            for attempt in range(policy.attempts):
                try:
                    return work(self._connection().cursor())
                except Exception as exc:
                    if not errors.is_driver_error(exc):
                        raise
                    retry = self._after_failure(exc)
                    if not retry:
                        raise self._terminal(exc, table) from exc
                    if attempt + 1 == policy.attempts:
                        raise WarehouseUnavailableError(
                            f"{self._about(table)}: gave up after {policy.attempts} attempts: "
                            f"{errors.describe(exc)}",
                            table=table,
                            warehouse=self.where,
                        ) from exc
                    delay = policy.delay(attempt, self._random)
                    log.warning(
                        "%s: attempt %d failed (%s); retrying in %.2fs",
                        self._about(table),
                        attempt + 1,
                        errors.describe(exc),
                        delay,
                    )
                    self._sleep(delay)
        raise AssertionError("unreachable: retry_attempts is at least 1")

    def _after_failure(self, exc: Exception) -> bool:
        """Leave a usable (or no) connection behind; say whether to retry."""
        if errors.is_dropped_connection(exc):
            self._discard()
            return True
        if self._con is not None:
            try:
                self._con.rollback()
            except Exception:  # noqa: BLE001 - whatever broke it, start afresh next time
                self._discard()
        return errors.is_serialization_failure(exc)

    def _terminal(self, exc: Exception, table: str | None) -> TerminalError:
        if errors.is_authentication_failure(exc):
            return ConfigurationError(
                f"{self.where}: authentication failed: {errors.describe(exc)}",
                warehouse=self.where,
            )
        return TerminalError(
            f"{self._about(table)} refused the operation: {errors.describe(exc)}",
            code="constraint_violation",
            table=table,
            warehouse=self.where,
            sqlstate=errors.sqlstate(exc) or None,
        )

    def _about(self, table: str | None) -> str:
        return f"table {table} in {self.where}" if table else self.where

    # ------------------------------------------------------------ connection

    def _connection(self) -> Any:
        if self._con is None:
            import redshift_connector  # here, not at import: it slows a Lambda cold start

            con = redshift_connector.connect(**self._options.connect_kwargs(self._credentials))
            try:
                # Transactions are begun explicitly; without this the driver would
                # open one on the first SELECT and keep it (and its locks) while idle.
                con.autocommit = True
                cur = con.cursor()
                self._migrate_ledger(cur)
                self._create_or_check(
                    cur,
                    self._ledger,
                    sql.create_ledger_sql(REDSHIFT, self._ledger),
                    sql.expected_ledger_columns(),
                )
            except BaseException:
                with suppress(Exception):
                    con.close()
                raise
            self._con = con
        return self._con

    def _discard(self) -> None:
        con, self._con = self._con, None
        if con is not None:
            with suppress(Exception):
                con.close()

    # ------------------------------------------------------------ statements

    def _create_or_check(
        self, cur: Cursor, table: str, ddl: str, expected: Sequence[sql.ColumnShape]
    ) -> None:
        found = self._catalog(cur, table)
        if not found:
            try:
                cur.execute(ddl)
                return
            except Exception as exc:
                # Another worker may have created it between the two statements.
                found = self._catalog(cur, table) if not errors.is_dropped_connection(exc) else []
                if not found:
                    raise
        sql.check_drift(table, expected, found, REDSHIFT)

    def _migrate_ledger(self, cur: Cursor) -> None:
        """Add the ledger's newer columns; the catalog says which, as Redshift has no
        ADD COLUMN IF NOT EXISTS. A process that lost the race finds them there."""
        found = self._catalog(cur, self._ledger)
        for statement in sql.ledger_migration_sql(found, REDSHIFT, self._ledger) if found else ():
            try:
                cur.execute(statement)
            except Exception as exc:
                if errors.is_dropped_connection(exc) or sql.ledger_migration_sql(
                    self._catalog(cur, self._ledger), REDSHIFT, self._ledger
                ):
                    raise

    def _catalog(self, cur: Cursor, table: str) -> list[sql.ColumnShape]:
        # information_schema.columns covers local tables on Redshift (and runs on
        # PostgreSQL, as the tests need); external (Spectrum) tables would need
        # SVV_COLUMNS, but the service only creates local ones.
        rows = _fetchall(cur, sql.table_columns_sql(REDSHIFT), (table,))
        return [sql.shape_from_catalog(r, REDSHIFT) for r in rows]

    def _load_once(
        self, cur: Cursor, request: LoadRequest, rows: pa.Table, uri: str | None
    ) -> LoadReceipt:
        contract, now = request.contract, sql.utc_now()
        staging = f"datalakep_staging_{uuid.uuid4().hex}"
        with _transaction(cur):
            cur.execute(redshift_sql.lock_sql(self._ledger))
            earlier = _fetchall(
                cur,
                sql.already_loaded_sql(REDSHIFT, self._ledger),
                (request.source_uri, request.source_version, contract.name),
            )
            if earlier:
                self._write_ledger(cur, sql.entry_for(request, LoadStatus.SKIPPED, 0, now))
                return LoadReceipt(LoadStatus.SKIPPED, str(earlier[0][0]), 0)
            cur.execute(redshift_sql.staging_table_sql(contract, staging))
            if uri is None:
                self._insert_rows(cur, staging, rows)
            else:
                self._copy_into(cur, staging, uri)
            self._check_keys(cur, contract, staging)
            lineage = sql.Lineage(request.load_id, now)
            for statement, params in sql.merge_statements(contract, staging, lineage, REDSHIFT):
                cur.execute(statement, params or None)
            self._after_merge()
            cur.execute(redshift_sql.drop_table_sql(staging))
            count = rows.num_rows
            self._write_ledger(cur, sql.entry_for(request, LoadStatus.LOADED, count, now))
        return LoadReceipt(LoadStatus.LOADED, request.load_id, count)

    def _staged(self, rows: pa.Table) -> AbstractContextManager[str | None]:
        if rows.num_rows < self._options.copy_threshold_rows:
            return nullcontext()
        if self._stager is None:
            log.warning(
                "%s: %d rows loaded by INSERT; configure staging to load this many by COPY",
                self.where,
                rows.num_rows,
            )
            return nullcontext()
        return self._stager.staged(rows)

    def _insert_rows(self, cur: Cursor, staging: str, rows: pa.Table) -> None:
        names = rows.column_names
        per = redshift_sql.batch_rows(len(names))
        for start in range(0, rows.num_rows, per):
            chunk = rows.slice(start, per)
            columns = [chunk.column(i).to_pylist() for i in range(chunk.num_columns)]
            values = [value for row in zip(*columns, strict=True) for value in row]
            cur.execute(redshift_sql.insert_values_sql(staging, names, chunk.num_rows), values)

    def _copy_into(self, cur: Cursor, staging: str, uri: str) -> None:
        assert self._options.staging is not None
        cur.execute(redshift_sql.copy_parquet_sql(staging, uri, self._options.staging.iam_role))

    def _check_keys(self, cur: Cursor, contract: TableContract, staging: str) -> None:
        for problem, query in redshift_sql.key_checks_sql(contract, staging):
            found = _fetchall(cur, query)
            if found:
                key = dict(zip(contract.primary_key, found[0], strict=True))
                raise TerminalError(
                    f"table {contract.name} in {self.where}: {problem} "
                    f"(primary key {key}); nothing was loaded",
                    code="constraint_violation",
                    table=contract.name,
                )

    def _write_ledger(self, cur: Cursor, entry: LedgerEntry) -> None:
        cur.execute(sql.ledger_insert_sql(REDSHIFT, self._ledger), sql.ledger_params(entry))


def _fetchall(cur: Cursor, query: str, params: Sequence[Any] | None = None) -> list[Any]:
    cur.execute(query, params)
    return list(cur.fetchall() or ())


@contextmanager
def _transaction(cur: Cursor) -> Iterator[None]:
    cur.execute("BEGIN")
    try:
        yield
    except BaseException:
        # A failed rollback (a dropped connection, say) must not hide the cause.
        with suppress(Exception):
            cur.execute("ROLLBACK")
        raise
    cur.execute("COMMIT")
