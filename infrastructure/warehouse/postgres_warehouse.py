"""The Warehouse port on PostgreSQL, through psycopg 3 and COPY."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.csv as pacsv

from domain.contracts import LoadMode, TableContract
from domain.errors import ConfigurationError, TerminalError, WarehouseUnavailableError
from infrastructure.warehouse import drift
from infrastructure.warehouse.arrow_columns import repeated_text
from infrastructure.warehouse.credentials import (
    Credentials,
    CredentialSource,
    connect_rotating,
)
from infrastructure.warehouse.postgres_options import PostgresOptions
from infrastructure.warehouse.sql import ddl, dialect, merge
from infrastructure.warehouse.sql import ledger as ledger_sql
from infrastructure.warehouse.sql.dialect import POSTGRES, Params
from infrastructure.warehouse.sql_warehouse import OnMerged, SqlWarehouse

# The driver is imported by the first session, not with this module: psycopg's
# import (0.2 s here) then runs while the parser child reads the first sheet (see
# duckdb_warehouse.py).
if TYPE_CHECKING:
    import psycopg

    Connection = psycopg.Connection[tuple[Any, ...]]
    Cursor = psycopg.Cursor[tuple[Any, ...]]

# Rows per CSV chunk sent to COPY: big enough to amortise the writes, small enough that a
# million-row load never holds its whole CSV text in memory.
COPY_BATCH_ROWS = 50_000
# Temp tables are never auto-analysed; above this the merge's join plan needs statistics.
ANALYZE_MIN_ROWS = 10_000

# What a server that answered says when the settings, not the moment, are wrong.
_REFUSALS = (
    "no pg_hba.conf entry",
    "does not exist",
    "permission denied",
    "password is required",
    "invalid sslmode",
)


def _wrong_password(exc: BaseException) -> bool:
    """The server refused the credentials (invalid_password, invalid_authorization)."""
    import psycopg

    if not isinstance(exc, psycopg.OperationalError):
        return False
    if exc.sqlstate in ("28P01", "28000"):
        return True
    # Refused during the handshake, psycopg has no SQLSTATE, only the server's text.
    return "authentication failed" in str(exc)


class PostgresSession:
    def __init__(self, con: Connection, cur: Cursor) -> None:
        self.con = con
        self.cur = cur

    def execute(self, statement: str, params: Params = ()) -> None:
        _execute(self.cur, statement, params or None)

    def fetch(self, statement: str, params: Params = ()) -> list[tuple[Any, ...]]:
        return _execute(self.cur, statement, params or None).fetchall()

    def transaction(self) -> AbstractContextManager[Any]:
        return self.con.transaction()


class PostgresEngine:
    """One PostgreSQL database, in its current schema, on one connection.

    The connection opens on first use and again when the server dropped it. Loads of
    one source into one table take an advisory lock, merges into one table a table
    lock; reads carry on meanwhile.
    """

    dialect = POSTGRES

    def __init__(self, credentials: CredentialSource, options: PostgresOptions) -> None:
        self._source = credentials
        self._credentials = credentials.first
        # Every password this engine was given: none of them may reach a message.
        self._passwords: set[str] = set()
        if credentials.first.password:
            self._passwords.add(credentials.first.password)
        self._options = options
        self._con: Connection | None = None
        # Per table: whether the server fills _loaded_at when COPY leaves it out.
        self._stamps_loaded_at: dict[str, bool] = {}

    @property
    def where(self) -> str:
        c = self._credentials
        return f"PostgreSQL {c.host}:{c.port}/{c.database}"

    @contextmanager
    def session(self, table: str | None) -> Iterator[PostgresSession]:
        import psycopg.errors

        try:
            try:
                con = self._connection()
                with con.cursor() as cur:
                    yield PostgresSession(con, cur)
            finally:
                if self._con is not None and (self._con.closed or self._con.broken):
                    self.close()
        except psycopg.errors.ProgramLimitExceeded as exc:
            raise self._refused(table, exc, "warehouse_error") from exc
        except psycopg.OperationalError as exc:
            # Also the home of SerializationFailure and DeadlockDetected.
            raise WarehouseUnavailableError(
                self._scrub(exc), host=self._credentials.host, port=self._credentials.port
            ) from exc
        except (psycopg.IntegrityError, psycopg.DataError) as exc:
            raise self._refused(table, exc, "constraint_violation") from exc
        except psycopg.Error as exc:
            # Anything else (a missing table, no privilege...) fails again on retry.
            raise self._refused(table, exc, "warehouse_error") from exc

    def catalog(self, s: PostgresSession, table: str) -> list[drift.ColumnShape]:
        rows = s.fetch(ddl.table_columns_sql(POSTGRES), (table,))
        return [drift.strict_shape_from_catalog(r, POSTGRES) for r in rows]

    def create_table_sql(self, contract: TableContract) -> str:
        return ddl.create_table_sql(contract, POSTGRES)

    def lock_ddl(self, s: PostgresSession, table: str) -> None:
        # Two processes creating one table at once can collide in the catalog even
        # with IF NOT EXISTS.
        s.execute(ddl.advisory_xact_lock_sql(POSTGRES), (ddl.ddl_lock_key(table),))

    def lock_load(self, s: PostgresSession, source_uri: str, table: str) -> None:
        s.execute(
            ddl.advisory_xact_lock_sql(POSTGRES), (ledger_sql.load_lock_key(source_uri, table),)
        )

    def table_ready(self, s: PostgresSession, contract: TableContract) -> None:
        stamped = s.fetch(ddl.stamps_loaded_at_sql(POSTGRES), (contract.name,))
        self._stamps_loaded_at[contract.name] = bool(stamped and stamped[0][0])

    def prepared(self, rows: pa.Table) -> AbstractContextManager[pa.Table]:
        return nullcontext(rows)

    def write_rows(
        self,
        s: PostgresSession,
        contract: TableContract,
        prepared: pa.Table,
        lineage: merge.Lineage,
    ) -> None:
        cur = s.cur
        if self._write_straight(cur, contract):
            if contract.load_mode is LoadMode.REPLACE:
                _execute(cur, ddl.delete_all_sql(contract.name, POSTGRES))
            stamped = self._stamps_loaded_at.get(contract.name, False)
            _copy_csv(cur, contract.name, prepared, lineage, server_stamps_loaded_at=stamped)
        else:
            self._stage_and_merge(cur, contract, prepared, lineage)

    def close(self) -> None:
        con, self._con = self._con, None
        if con is not None:
            con.close()

    # ------------------------------------------------------------ writing

    def _write_straight(self, cur: Cursor, contract: TableContract) -> bool:
        """Whether this load may COPY straight into the table; if so, the table is locked.

        Straight is one pass instead of three (COPY to staging, ANALYZE, INSERT ...
        SELECT): about half the time of a first load. An upsert needs the lock
        before it trusts "empty": another load could fill the table in between.
        """
        if merge.needs_staging(contract, _has_rows(cur, contract.name)):
            return False
        _execute(cur, ddl.lock_table_sql(contract.name, POSTGRES))
        return not merge.needs_staging(contract, _has_rows(cur, contract.name))

    def _stage_and_merge(
        self, cur: Cursor, contract: TableContract, rows: pa.Table, lineage: merge.Lineage
    ) -> None:
        staging = f"_datalakep_staging_{uuid.uuid4().hex}"
        _execute(cur, ddl.staging_table_sql(contract, staging, POSTGRES))
        _copy_csv(cur, staging, rows)
        if rows.num_rows >= ANALYZE_MIN_ROWS:
            _execute(cur, ddl.analyze_sql(staging, POSTGRES))
        # Taken late (unless _write_straight already holds it), so that other
        # loads of this table wait only for the merge, not for our COPY.
        _execute(cur, ddl.lock_table_sql(contract.name, POSTGRES))
        for statement, params in merge.merge_statements(contract, staging, lineage, POSTGRES):
            _execute(cur, statement, params)

    # ------------------------------------------------------------ connection

    def _connection(self) -> Connection:
        if self._con is not None and (self._con.closed or self._con.broken):
            self.close()
        if self._con is None:
            self._con = self._connect()
        return self._con

    def _connect(self) -> Connection:
        return connect_rotating(self._source, self._connect_as, _wrong_password, self._describe)

    def _connect_as(self, c: Credentials) -> Connection:
        import psycopg

        self._credentials = c
        if c.password:
            self._passwords.add(c.password)
        opts = self._options
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
            if _wrong_password(exc):
                raise
            text = self._scrub(exc)
            if any(refusal in text for refusal in _REFUSALS):
                raise ConfigurationError(
                    f"{self.where} as user {c.user!r} refused the connection: {text}",
                    host=c.host,
                    port=c.port,
                ) from exc
            raise  # unreachable or restarting: a new attempt may succeed

    def _describe(self, exc: BaseException, c: Credentials) -> str:
        return self._scrub(exc)

    def _refused(self, table: str | None, exc: psycopg.Error, code: str) -> TerminalError:
        of = f" table {table}:" if table else ""
        return TerminalError(
            f"{self.where}:{of} refused: {self._scrub(exc)}",
            code=code,
            table=table,
            sqlstate=exc.sqlstate,
        )

    def _scrub(self, exc: BaseException) -> str:
        """The error's text, never with a password in it."""
        text = str(exc).strip()
        for password in self._passwords:
            text = text.replace(password, "***")
        return text


class PostgresWarehouse(SqlWarehouse[PostgresSession, pa.Table]):
    """Tables and the load ledger in one PostgreSQL database, in its current schema."""

    def __init__(
        self,
        credentials: Credentials | CredentialSource,
        *,
        ledger_table: str = ledger_sql.DEFAULT_LEDGER_TABLE,
        options: Mapping[str, Any] | None = None,
        on_merged: OnMerged | None = None,
    ) -> None:
        opts = PostgresOptions.from_mapping(options)
        super().__init__(
            PostgresEngine(CredentialSource.given(credentials), opts),
            ledger_table=ledger_table,
            retry=opts.retry,
            on_merged=on_merged,
        )


def _execute(cur: Cursor, statement: str, params: Params | None = None) -> Cursor:
    if params is None:
        return cur.execute(statement)
    return cur.execute(dialect.escape_percent(statement), params)


def _has_rows(cur: Cursor, table: str) -> bool:
    found = _execute(cur, ddl.has_rows_sql(table, POSTGRES)).fetchone()
    return bool(found and found[0])


def _copy_csv(
    cur: Cursor,
    table: str,
    rows: pa.Table,
    lineage: merge.Lineage | None = None,
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
        columns += [ddl.LOAD_ID] + ([] if server_stamps_loaded_at else [ddl.LOADED_AT])
    statement = merge.copy_csv_sql(table, columns, POSTGRES)
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

    def __init__(self, lineage: merge.Lineage, *, with_time: bool) -> None:
        self._lineage = lineage
        self._with_time = with_time
        self._made: dict[int, tuple[pa.Array, ...]] = {}

    def of_length(self, length: int) -> tuple[pa.Array, ...]:
        made = self._made.get(length)
        if made is None:
            made = (repeated_text(self._lineage.load_id, length),)
            if self._with_time:
                stamp = pa.scalar(self._lineage.loaded_at, pa.timestamp("us"))
                made += (pa.repeat(stamp, length),)
            self._made[length] = made
        return made
