"""The Warehouse port, written once for every SQL engine.

A load is the same sequence everywhere: check the columns, open a transaction, take
the engine's lock for the load, look for an earlier load of the version, then write
either a ``skipped`` ledger row or the rows and a ``loaded`` ledger row. Writing that
sequence once means a rule about loads (exactly once, version order) is one change.
What differs between engines is behind :class:`Engine`: connecting and translating
errors, the lock, and how rows reach the table.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import Any, Generic, Protocol, TypeVar

import pyarrow as pa

from application.ports import LoadReceipt, LoadRequest
from domain.clock import utc_now
from domain.contracts import TableContract
from domain.errors import TerminalError, WarehouseUnavailableError
from domain.keys import repeated_key
from domain.ledger import LedgerEntry, LedgerFilter, LoadStatus, decide_load
from infrastructure.warehouse import drift
from infrastructure.warehouse.retry import RetryPolicy
from infrastructure.warehouse.sql import ledger as ledger_sql
from infrastructure.warehouse.sql import merge
from infrastructure.warehouse.sql.dialect import Dialect, Params

log = logging.getLogger(__name__)
T = TypeVar("T")
P = TypeVar("P")  # what an engine prepares from the rows before the load's transaction
S = TypeVar("S", bound="Session")
OnMerged = Callable[[LoadRequest], None]


class Session(Protocol):
    """One live connection, as the load sequence needs it."""

    def execute(self, statement: str, params: Params = ()) -> None: ...

    def fetch(self, statement: str, params: Params = ()) -> list[tuple[Any, ...]]: ...

    def transaction(self) -> AbstractContextManager[None]:
        """Commit on a clean exit, roll back on any exception."""
        ...


def check_keys(
    s: Session, contract: TableContract, staging: str, dialect: Dialect, where: str
) -> None:
    """Refuse the staged rows (terminal) where they would break ``contract``'s key
    against the table, for an engine whose warehouse does not enforce it
    (merge.key_checks); a key repeated within the rows is refused before (load)."""
    for problem, query in merge.key_checks(contract, staging, dialect):
        found = s.fetch(query)
        if found:
            key = dict(zip(contract.primary_key, found[0], strict=True))
            raise key_refusal(contract, where, problem, key)


def key_refusal(
    contract: TableContract, where: str, problem: str, key: dict[str, object]
) -> TerminalError:
    return TerminalError(
        f"table {contract.name} in {where}: {problem} (primary key {key}); nothing was loaded",
        code="constraint_violation",
        table=contract.name,
    )


class Engine(Protocol[S, P]):
    """What one database engine does its own way."""

    dialect: Dialect

    @property
    def where(self) -> str:
        """The database, for messages: never a password."""
        ...

    def session(self, table: str | None) -> AbstractContextManager[S]:
        """A live connection, opened or reopened as needed.

        Driver errors leave it as the service's: WarehouseUnavailableError when a new
        attempt may succeed (then the connection is reset), TerminalError otherwise.
        """
        ...

    def catalog(self, s: S, table: str) -> list[drift.ColumnShape]: ...

    def create_table_sql(self, contract: TableContract) -> str: ...

    def lock_ddl(self, s: S, table: str) -> None:
        """Serialise creating and checking one table across processes."""
        ...

    def lock_load(self, s: S, source_uri: str, table: str) -> None:
        """Serialise, to COMMIT, the loads of one source into one table."""
        ...

    def table_ready(self, s: S, contract: TableContract) -> None:
        """Learn what the engine needs about a table that exists and matches."""
        ...

    def prepared(self, rows: pa.Table) -> AbstractContextManager[P]:
        """The rows made ready before the transaction (an upload holds no lock)."""
        ...

    def write_rows(
        self, s: S, contract: TableContract, prepared: P, lineage: merge.Lineage
    ) -> None:
        """Put the rows into the contract's table by its load mode, inside the transaction."""
        ...

    def close(self) -> None: ...


class SqlWarehouse(Generic[S, P]):
    """The Warehouse port over an :class:`Engine`.

    Every call runs as a whole again, per ``retry``, when the engine says a new
    attempt may succeed (a dropped connection, a serialisation failure); after the
    last attempt it raises WarehouseUnavailableError (transient). Calls on one
    instance are serialised; instances and processes coordinate through the engine's
    lock for a load, so two loads of one version end as one load and one skip.

    ``ensure_table`` reads the catalog once per table and connection: a warm Lambda
    container loading small files paid 5-6 ms a file re-checking a table it had just
    checked. A table changed behind our back then fails the next load, which makes
    the following ``ensure_table`` check it again and name the drift.

    ``on_merged`` runs inside the load's transaction after the rows are merged and
    before the ledger row: what raises there rolls the whole load back.
    """

    def __init__(
        self,
        engine: Engine[S, P],
        *,
        ledger_table: str = ledger_sql.DEFAULT_LEDGER_TABLE,
        retry: RetryPolicy | None = None,
        on_merged: OnMerged | None = None,
    ) -> None:
        ledger_sql.ledger_insert_sql(engine.dialect, ledger_table)  # a bad name fails here
        self._engine = engine
        self._dialect = engine.dialect
        self._ledger = ledger_table
        self._retry = retry or RetryPolicy()
        self._on_merged = on_merged
        self._ledger_ready = False
        # (table, its DDL) found to match on this connection: checked once, not on every
        # file. Forgotten on reconnect, on close and when a load into the table fails,
        # so a table changed behind our back is checked again before the next load.
        self._tables_checked: set[tuple[str, str]] = set()
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.where})"

    @property
    def where(self) -> str:
        return self._engine.where

    @property
    def dialect(self) -> Dialect:
        return self._dialect

    # ------------------------------------------------------------ port

    def ensure_table(self, contract: TableContract) -> None:
        ddl = self._engine.create_table_sql(contract)
        checked = (contract.name, ddl)
        if checked in self._tables_checked:
            return
        expected = drift.expected_columns(contract)

        def work(s: S) -> None:
            with s.transaction():
                self._create_or_check(s, contract.name, ddl, expected)
                self._engine.table_ready(s, contract)

        self._run("ensure_table", work, contract.name)
        with self._lock:
            self._tables_checked.add(checked)

    def loaded_tables(self, source_uri: str, source_version: str) -> frozenset[str]:
        query = ledger_sql.loaded_tables_sql(self._dialect, self._ledger)
        rows = self.fetch("loaded_tables", query, (source_uri, source_version))
        return frozenset(str(r[0]) for r in rows)

    def load(self, request: LoadRequest) -> LoadReceipt:
        contract = request.contract
        missing = [c for c in contract.column_names if c not in request.rows.column_names]
        if missing:
            raise ValueError(f"table {contract.name}: the rows lack columns {missing}")
        # Contract order: a bulk load may map columns by position.
        rows = request.rows.select(list(contract.column_names))
        # Checked here, in Arrow, for every engine alike: PostgreSQL's key would refuse
        # it too, but DuckDB and Redshift enforce none, and a query on the staged rows
        # cost DuckDB a statement per load (2-4 ms of a warm 891-row call's 60) and
        # Redshift a round trip to the cluster.
        repeated = repeated_key(rows, contract.primary_key)
        if repeated is not None:
            raise key_refusal(
                contract, self.where, "a key occurs more than once in the rows", repeated
            )
        try:
            with self._engine.prepared(rows) as prepared:
                return self._run(
                    "load", lambda s: self._load_once(s, request, prepared), contract.name
                )
        except Exception:
            self._forget_table(contract.name)
            raise

    def record(self, entry: LedgerEntry) -> None:
        if LoadStatus(entry.status) is LoadStatus.LOADED:
            raise ValueError("a 'loaded' ledger row is written by load() alone")
        self._run("record", lambda s: self._write_ledger(s, entry), entry.table)

    def history(
        self, limit: int | None = None, where: LedgerFilter | None = None
    ) -> Sequence[LedgerEntry]:
        query, params = ledger_sql.history_statement(self._dialect, self._ledger, limit, where)
        return [ledger_sql.ledger_entry(r) for r in self.fetch("history", query, params)]

    def recorded_versions(self, source_uris: Collection[str]) -> frozenset[tuple[str, str]]:
        statements = list(
            ledger_sql.recorded_versions_statements(source_uris, self._dialect, self._ledger)
        )

        def work(s: S) -> set[tuple[str, str]]:
            found: set[tuple[str, str]] = set()
            for query, params in statements:
                found.update((str(u), str(v)) for u, v in s.fetch(query, params))
            return found

        return frozenset(self._run("recorded_versions", work))

    def close(self) -> None:
        with self._lock:
            self._engine.close()
            self._ledger_ready = False
            self._tables_checked.clear()

    # ------------------------------------------------------------ reading

    def fetch(
        self, what: str, query: str, params: Params = (), table: str | None = None
    ) -> list[tuple[Any, ...]]:
        """The rows of one read-only query, retried as every call is."""
        return self._run(what, lambda s: s.fetch(query, params), table)

    # ------------------------------------------------------------ the load

    def _load_once(self, s: S, request: LoadRequest, prepared: P) -> LoadReceipt:
        contract = request.contract
        with s.transaction():
            # Held to COMMIT: another load of this source into this table waits here,
            # then sees our ledger row. So the check below and the merge are one step.
            self._engine.lock_load(s, request.source_uri, contract.name)
            committed = [
                ledger_sql.committed_load(r)
                for r in s.fetch(
                    ledger_sql.committed_loads_sql(self._dialect, self._ledger),
                    (request.source_uri, contract.name),
                )
            ]
            verdict = decide_load(
                request.load_id, request.source_version, request.source_order, committed
            )
            if verdict is not None and verdict.status is LoadStatus.LOADED:
                return LoadReceipt(LoadStatus.LOADED, request.load_id, request.rows.num_rows)
            if verdict is not None:
                self._write_ledger(s, request.ledger_entry(verdict.status, 0, utc_now()))
                return LoadReceipt(verdict.status, verdict.load_id, 0)
            lineage = merge.Lineage(request.load_id, utc_now())
            self._engine.write_rows(s, contract, prepared, lineage)
            if self._on_merged is not None:
                self._on_merged(request)
            count = request.rows.num_rows
            # finished_at is the commit's time, as near as the transaction can tell it.
            self._write_ledger(s, request.ledger_entry(LoadStatus.LOADED, count, utc_now()))
        return LoadReceipt(LoadStatus.LOADED, request.load_id, count)

    # ------------------------------------------------------------ attempts

    def _run(self, what: str, work: Callable[[S], T], table: str | None = None) -> T:
        """``work`` on a live session, run again while a new attempt may succeed."""
        policy = self._retry
        for attempt in range(1, policy.attempts + 1):
            try:
                with self._lock, self._engine.session(table) as s:
                    if not self._ledger_ready:
                        self._prepare_ledger(s)
                        self._ledger_ready = True
                    return work(s)
            except WarehouseUnavailableError as exc:
                # The next session may be a new connection, even to another server.
                self._tables_checked.clear()
                if attempt == policy.attempts:
                    raise WarehouseUnavailableError(
                        f"{self.where}: {what}{_of(table)} failed after {attempt} "
                        f"attempt(s): {exc}",
                        **{**exc.details, "attempts": attempt},
                    ) from exc
                delay = policy.delay(attempt - 1)
                log.warning(
                    "%s: %s%s: attempt %d failed (%s); retrying in %.2fs",
                    self.where,
                    what,
                    _of(table),
                    attempt,
                    exc,
                    delay,
                )
                policy.sleep(delay)
        raise AssertionError("unreachable: a retry policy has at least one attempt")

    # ------------------------------------------------------------ ledger and DDL

    def _prepare_ledger(self, s: S) -> None:
        """Create the ledger, or bring one an earlier release made up to date, then check it.

        Migrations only add nullable columns and widen text columns, each statement
        safe to repeat, so they run in autocommit (Redshift alters a column's type
        only outside a transaction) and a process racing us is harmless.
        """
        table, dialect = self._ledger, self._dialect
        expected = drift.expected_ledger_columns()
        with s.transaction():
            self._engine.lock_ddl(s, table)
            found = self._engine.catalog(s, table)
            if not found:
                s.execute(ledger_sql.create_ledger_sql(dialect, table))
                return
        lengths = {c.name: c.length for c in found}
        migrations = ledger_sql.ledger_migration_sql(lengths, dialect, table)
        failure: Exception | None = None
        for statement in migrations:
            log.info("%s: migrating the ledger %s: %s", self.where, table, statement)
            try:
                s.execute(statement)
            except Exception as exc:  # noqa: BLE001 - the check below decides
                failure = exc  # another process may have run it first
        if migrations:
            found = self._engine.catalog(s, table)
        try:
            drift.check_drift(table, expected, found, dialect)
        except Exception as exc:
            raise exc from failure

    def _forget_table(self, table: str) -> None:
        with self._lock:
            self._tables_checked = {c for c in self._tables_checked if c[0] != table}

    def _create_or_check(
        self, s: S, table: str, ddl: str, expected: Sequence[drift.ColumnShape]
    ) -> None:
        self._engine.lock_ddl(s, table)
        found = self._engine.catalog(s, table)
        if found:
            drift.check_drift(table, expected, found, self._dialect)
        else:
            s.execute(ddl)

    def _write_ledger(self, s: S, entry: LedgerEntry) -> None:
        s.execute(
            ledger_sql.ledger_insert_sql(self._dialect, self._ledger),
            ledger_sql.ledger_params(entry),
        )


@contextmanager
def explicit_transaction(execute: Callable[[str], object], begin: str = "BEGIN") -> Iterator[None]:
    """BEGIN ... COMMIT around the block, ROLLBACK when it raises, for drivers in autocommit."""
    execute(begin)
    try:
        yield
    except BaseException:
        # A failed rollback (a dropped connection, say) must not hide the cause.
        with suppress(Exception):
            execute("ROLLBACK")
        raise
    execute("COMMIT")


def _of(table: str | None) -> str:
    return f" of table {table}" if table else ""
