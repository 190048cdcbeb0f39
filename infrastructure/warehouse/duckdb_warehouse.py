"""The Warehouse port on a DuckDB file: the local and test stand-in for Redshift."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from domain.contracts import TableContract
from domain.errors import ConfigurationError, TerminalError, WarehouseUnavailableError
from infrastructure.warehouse import drift
from infrastructure.warehouse.retry import RetryPolicy
from infrastructure.warehouse.sql import ddl, merge
from infrastructure.warehouse.sql import ledger as ledger_sql
from infrastructure.warehouse.sql.dialect import DUCKDB, Params
from infrastructure.warehouse.sql_warehouse import (
    OnMerged,
    SqlWarehouse,
    check_keys,
    explicit_transaction,
)

# The driver is imported by the first session, not with this module. The container
# builds the adapter before the parser child is forked, and the first session comes
# after: the ledger question the pipeline asks while the child parses the first
# sheet. duckdb's import (75-100 ms, a tenth of a 100,000-row ingest) then runs on
# the core the child leaves free instead of before the child starts, and the child
# is forked without DuckDB's libraries mapped.
if TYPE_CHECKING:
    import duckdb

# From this many rows a merge gets DuckDB's worker threads; below it, and for every
# ledger query, one thread. Waking the workers for a few hundred rows cost more CPU
# than it saved: 3 ms of the 36 ms a warm 891-row upsert costs its process (30 calls,
# three alternating runs). A table of millions of rows then takes an upsert of a
# small file on one thread: its scan costs the same CPU, on one core.
PARALLEL_FROM_ROWS = 100_000
# A load of this many bytes (its Arrow table) is checkpointed at its commit. DuckDB
# then writes the rows once, into the database file (auto_checkpoint_skip_wal_
# threshold), not into the WAL and again at the checkpoint the close makes: under
# its default 16 MiB threshold a 100,000-row load did both, and its commit and
# close took 0.30 s against 0.22 s (medians of four alternating CLI runs). Smaller
# loads stay WAL appends under the default: with the threshold lowered for every
# load, a warm Lambda's 891-row upserts checkpointed every fifth call, 15% slower
# at the median.
CHECKPOINT_FROM_BYTES = 1 << 20


class DuckDbSession:
    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def execute(self, statement: str, params: Params = ()) -> None:
        self.con.execute(statement, list(params))

    def fetch(self, statement: str, params: Params = ()) -> list[tuple[Any, ...]]:
        return self.con.execute(statement, list(params)).fetchall()

    def transaction(self) -> AbstractContextManager[None]:
        return explicit_transaction(self.con.execute, "BEGIN TRANSACTION")


class DuckDbEngine:
    """One DuckDB database (``path``, or ":memory:").

    DuckDB lets a single process open a database file for writing: while another
    process holds it, every call raises WarehouseUnavailableError (transient). One
    writer means no lock is needed for a load.
    """

    dialect = DUCKDB

    def __init__(self, path: str) -> None:
        self._path = path
        self._con: duckdb.DuckDBPyConnection | None = None
        # Arrow tables registered for a load; released once its transaction has ended.
        self._registered: list[str] = []
        # DuckDB's own thread count (the cores), used for merges of PARALLEL_FROM_ROWS up.
        self._threads = 1
        # Settings a load changed for its own commit, each undone when its session ends.
        self._undo: list[str] = []

    @property
    def where(self) -> str:
        return f"DuckDB database {self._path}"

    @property
    def path(self) -> str:
        return self._path

    @contextmanager
    def session(self, table: str | None) -> Iterator[DuckDbSession]:
        import duckdb

        with _translated(self._path, table):
            con = self._connection()
            try:
                yield DuckDbSession(con)
            finally:
                while self._registered:
                    with suppress(duckdb.Error):
                        con.unregister(self._registered.pop())
                while self._undo:
                    with suppress(duckdb.Error):
                        con.execute(self._undo.pop())

    def catalog(self, s: DuckDbSession, table: str) -> list[drift.ColumnShape]:
        rows = s.fetch(ddl.table_columns_sql(DUCKDB), (table,))
        return [drift.shape_from_catalog(r, DUCKDB) for r in rows]

    def create_table_sql(self, contract: TableContract) -> str:
        return ddl.create_table_sql(contract, DUCKDB)

    def lock_ddl(self, s: DuckDbSession, table: str) -> None:
        return None  # one writer

    def lock_load(self, s: DuckDbSession, source_uri: str, table: str) -> None:
        return None  # one writer

    def table_ready(self, s: DuckDbSession, contract: TableContract) -> None:
        return None

    def prepared(self, rows: pa.Table) -> AbstractContextManager[pa.Table]:
        return nullcontext(rows)

    def write_rows(
        self, s: DuckDbSession, contract: TableContract, prepared: pa.Table, lineage: merge.Lineage
    ) -> None:
        # The Arrow table is read in place: no copy of the rows is made.
        staging = f"_datalakep_staging_{uuid.uuid4().hex}"
        s.con.register(staging, prepared)
        self._registered.append(staging)
        if prepared.num_rows >= PARALLEL_FROM_ROWS and self._threads > 1:
            self._for_this_load(s, f"SET threads = {self._threads}", "SET threads = 1")
        if prepared.nbytes >= CHECKPOINT_FROM_BYTES:
            self._for_this_load(s, "SET checkpoint_threshold = '0b'", "RESET checkpoint_threshold")
        check_keys(s, contract, staging, DUCKDB, self.where)
        for statement, params in merge.merge_statements(contract, staging, lineage, DUCKDB):
            s.execute(statement, params)

    def _for_this_load(self, s: DuckDbSession, setting: str, undo: str) -> None:
        """``setting`` for the rest of this session, ``undo`` run when it ends."""
        self._undo.append(undo)
        s.execute(setting)

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            if not self._path.startswith(":memory:"):
                Path(self._path).parent.mkdir(parents=True, exist_ok=True)
            con = _connect(self._path)
            found = con.execute("SELECT current_setting('threads')").fetchone()
            self._threads = int(found[0]) if found else 1
            con.execute("SET threads = 1")
            self._con = con
        return self._con


class DatabaseHeldError(WarehouseUnavailableError):
    """Another process has the DuckDB file open: DuckDB allows one writer."""

    code = "duckdb_held"


class DuckDbWarehouse(SqlWarehouse[DuckDbSession, pa.Table]):
    """Tables and the load ledger in one DuckDB database (``path``, or ":memory:")."""

    def __init__(
        self,
        path: str,
        ledger_table: str = ledger_sql.DEFAULT_LEDGER_TABLE,
        *,
        on_merged: OnMerged | None = None,
    ) -> None:
        # One attempt: a file held by another process stays held for its lifetime.
        self._database = DuckDbEngine(path)
        super().__init__(
            self._database,
            ledger_table=ledger_table,
            retry=RetryPolicy(attempts=1),
            on_merged=on_merged,
        )

    def claim_writer(self) -> None:
        """Open the database now and keep it open: this process is its one writer.

        A long-running writer (the worker) takes it at start, so that a second one
        learns at once that it cannot write, instead of failing each message.
        Raises ConfigurationError while another process holds the file.
        """
        try:
            with self._database.session(None):
                pass
        except DatabaseHeldError as exc:
            raise ConfigurationError(
                f"{self.where} is open in another process: DuckDB allows one writer, so "
                "one worker per DuckDB file. PostgreSQL or Redshift serve several workers.",
                path=self._database.path,
            ) from exc


def _connect(path: str) -> duckdb.DuckDBPyConnection:
    import duckdb

    try:
        return duckdb.connect(path)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise DatabaseHeldError(
                f"DuckDB database {path} is locked by another process: {exc}", path=path
            ) from exc
        raise ConfigurationError(
            f"DuckDB database {path} cannot be opened: {exc}", path=path
        ) from exc


@contextmanager
def _translated(path: str, table: str | None) -> Iterator[None]:
    """DuckDB's errors as the service's: transient when a retry can succeed."""
    import duckdb

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
