"""The Warehouse port on Amazon Redshift, through redshift_connector."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from domain.contracts import TableContract
from domain.errors import ConfigurationError, TerminalError, WarehouseUnavailableError
from infrastructure.warehouse import drift
from infrastructure.warehouse import redshift_errors as errors
from infrastructure.warehouse.credentials import (
    Credentials,
    CredentialSource,
    connect_rotating,
)
from infrastructure.warehouse.redshift_options import RedshiftOptions
from infrastructure.warehouse.s3_staging import ParquetStager
from infrastructure.warehouse.sql import ddl, merge
from infrastructure.warehouse.sql import ledger as ledger_sql
from infrastructure.warehouse.sql import redshift as redshift_sql
from infrastructure.warehouse.sql.dialect import REDSHIFT, Params
from infrastructure.warehouse.sql_warehouse import (
    OnMerged,
    SqlWarehouse,
    check_keys,
    explicit_transaction,
)

log = logging.getLogger(__name__)
Cursor = Any  # redshift_connector.Cursor, imported lazily


@dataclass(frozen=True)
class RedshiftRows:
    """The rows of a load, and where they were staged in S3 for COPY (None: INSERTs)."""

    rows: pa.Table
    uri: str | None


class RedshiftSession:
    def __init__(self, cur: Cursor) -> None:
        self.cur = cur

    def execute(self, statement: str, params: Params = ()) -> None:
        self.cur.execute(statement, params or None)

    def fetch(self, statement: str, params: Params = ()) -> list[tuple[Any, ...]]:
        self.cur.execute(statement, params or None)
        return [tuple(r) for r in self.cur.fetchall() or ()]

    def transaction(self) -> AbstractContextManager[None]:
        return explicit_transaction(self.cur.execute)


class RedshiftEngine:
    """One Redshift database.

    The connection is opened on first use and kept (a warm Lambda reuses it), and
    opened again when it has dropped. Reads run in autocommit. Redshift has no
    advisory locks: a load locks the ledger table, so loads run one after another.

    Rows reach a session temp table by multi-row INSERTs, or, from
    ``copy_threshold_rows`` on and with ``staging`` configured, by COPY from a
    Parquet object in S3; then :func:`merge.merge_statements` moves them.
    """

    dialect = REDSHIFT

    def __init__(
        self, credentials: CredentialSource, options: RedshiftOptions, ledger_table: str, s3: Any
    ) -> None:
        self._source = credentials
        self._credentials = credentials.first
        self._options = options
        self._ledger = ledger_table
        staging = options.staging
        self._stager = None if staging is None else ParquetStager(staging, s3)
        self._con: Any | None = None

    @property
    def where(self) -> str:
        c = self._credentials
        return f"redshift://{c.user}@{c.host}:{c.port}/{c.database}"

    @contextmanager
    def session(self, table: str | None) -> Iterator[RedshiftSession]:
        try:
            yield RedshiftSession(self._connection().cursor())
        except Exception as exc:
            if not errors.is_driver_error(exc):
                raise
            if self._after_failure(exc):
                raise WarehouseUnavailableError(
                    errors.describe(exc), table=table, warehouse=self.where
                ) from exc
            raise self._terminal(exc, table) from exc

    def catalog(self, s: RedshiftSession, table: str) -> list[drift.ColumnShape]:
        # information_schema.columns covers local tables on Redshift (and runs on
        # PostgreSQL, as the tests need); external (Spectrum) tables would need
        # SVV_COLUMNS, but the service only creates local ones.
        rows = s.fetch(ddl.table_columns_sql(REDSHIFT), (table,))
        return [drift.shape_from_catalog(r, REDSHIFT) for r in rows]

    def create_table_sql(self, contract: TableContract) -> str:
        return redshift_sql.create_table_sql(contract, self._options.table_options)

    def lock_ddl(self, s: RedshiftSession, table: str) -> None:
        # CREATE TABLE IF NOT EXISTS; a collision is a serialisation failure, retried.
        return None

    def lock_load(self, s: RedshiftSession, source_uri: str, table: str) -> None:
        s.execute(redshift_sql.lock_sql(self._ledger))

    def table_ready(self, s: RedshiftSession, contract: TableContract) -> None:
        return None

    def prepared(self, rows: pa.Table) -> AbstractContextManager[RedshiftRows]:
        # Staged once, before the transaction: the upload holds no lock, and every
        # retry COPYs the same object.
        if rows.num_rows < self._options.copy_threshold_rows:
            return nullcontext(RedshiftRows(rows, None))
        if self._stager is None:
            log.warning(
                "%s: %d rows loaded by INSERT; configure staging to load this many by COPY",
                self.where,
                rows.num_rows,
            )
            return nullcontext(RedshiftRows(rows, None))
        return self._staged(rows)

    def write_rows(
        self,
        s: RedshiftSession,
        contract: TableContract,
        prepared: RedshiftRows,
        lineage: merge.Lineage,
    ) -> None:
        cur = s.cur
        staging = f"datalakep_staging_{uuid.uuid4().hex}"
        cur.execute(redshift_sql.staging_table_sql(contract, staging))
        if prepared.uri is None:
            self._insert_rows(cur, staging, prepared.rows)
        else:
            self._copy_into(cur, staging, prepared.uri)
        check_keys(s, contract, staging, REDSHIFT, self.where)
        for statement, params in merge.merge_statements(contract, staging, lineage, REDSHIFT):
            cur.execute(statement, params or None)
        cur.execute(redshift_sql.drop_table_sql(staging))

    def close(self) -> None:
        con, self._con = self._con, None
        if con is not None:
            with suppress(Exception):
                con.close()

    # ------------------------------------------------------------ failures

    def _after_failure(self, exc: Exception) -> bool:
        """Leave a usable (or no) connection behind; say whether to retry."""
        if errors.is_dropped_connection(exc):
            self.close()
            return True
        if self._con is not None:
            try:
                self._con.rollback()
            except Exception:  # noqa: BLE001 - whatever broke it, start afresh next time
                self.close()
        return errors.is_serialization_failure(exc)

    def _terminal(self, exc: Exception, table: str | None) -> TerminalError:
        if errors.is_authentication_failure(exc):
            return ConfigurationError(
                f"{self.where}: authentication failed: {errors.describe(exc)}",
                warehouse=self.where,
            )
        about = f"table {table} in {self.where}" if table else self.where
        return TerminalError(
            f"{about} refused the operation: {errors.describe(exc)}",
            code="constraint_violation",
            table=table,
            warehouse=self.where,
            sqlstate=errors.sqlstate(exc) or None,
        )

    # ------------------------------------------------------------ connection

    def _connection(self) -> Any:
        if self._con is None:
            import redshift_connector  # here, not at import: it slows a Lambda cold start

            def connect(c: Credentials) -> Any:
                self._credentials = c
                return redshift_connector.connect(**self._options.connect_kwargs(c))

            con = connect_rotating(
                self._source,
                connect,
                errors.is_authentication_failure,
                lambda exc, c: errors.describe(exc),
            )
            # Transactions are begun explicitly; without this the driver would
            # open one on the first SELECT and keep it (and its locks) while idle.
            con.autocommit = True
            self._con = con
        return self._con

    # ------------------------------------------------------------ rows

    @contextmanager
    def _staged(self, rows: pa.Table) -> Iterator[RedshiftRows]:
        assert self._stager is not None
        with self._stager.staged(rows) as uri:
            yield RedshiftRows(rows, uri)

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


class RedshiftWarehouse(SqlWarehouse[RedshiftSession, RedshiftRows]):
    """Tables and the load ledger in one Redshift database."""

    def __init__(
        self,
        credentials: Credentials | CredentialSource,
        *,
        ledger_table: str = ledger_sql.DEFAULT_LEDGER_TABLE,
        options: Mapping[str, Any] | None = None,
        s3: Any | None = None,
        on_merged: OnMerged | None = None,
    ) -> None:
        opts = RedshiftOptions.from_mapping(options)
        super().__init__(
            RedshiftEngine(CredentialSource.given(credentials), opts, ledger_table, s3),
            ledger_table=ledger_table,
            retry=opts.retry,
            on_merged=on_merged,
        )
