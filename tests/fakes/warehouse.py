"""An in-memory Warehouse with the same semantics as the SQL adapters.

Tables are dicts from primary key to row (lineage included); the ledger is a list.
A load works on copies and swaps them in at the end, so a failure anywhere leaves
nothing behind, as a rolled-back transaction would.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Sequence
from typing import Any

from application.ports import LoadReceipt, LoadRequest
from domain.clock import utc_now
from domain.contracts import LoadMode, TableContract
from domain.errors import TerminalError
from domain.ledger import CommittedLoad, LedgerEntry, LedgerFilter, LoadStatus, decide_load
from infrastructure.warehouse import drift
from infrastructure.warehouse.sql import ddl
from infrastructure.warehouse.sql import ledger as ledger_sql

Key = tuple[Any, ...]
Row = dict[str, Any]


class InMemoryWarehouse:
    def __init__(self) -> None:
        self.tables: dict[str, dict[Key, Row]] = {}
        self.ledger: list[LedgerEntry] = []
        # Raised once by the next load(), after the merge, before anything is kept.
        self.fail_next_load: Exception | None = None
        self.closed = False
        self._contracts: dict[str, TableContract] = {}
        self._serial = itertools.count()  # the key of a row in a table without one

    # ------------------------------------------------------------ port

    def ensure_table(self, contract: TableContract) -> None:
        expected = drift.expected_columns(contract)
        existing = self._contracts.get(contract.name)
        if existing is None:
            self._contracts[contract.name] = contract
            self.tables[contract.name] = {}
            return
        drift.check_drift(contract.name, expected, drift.expected_columns(existing))

    def loaded_tables(self, source_uri: str, source_version: str) -> frozenset[str]:
        return frozenset(
            e.table
            for e in self.ledger
            if e.table is not None
            and e.status is LoadStatus.LOADED
            and (e.source_uri, e.source_version) == (source_uri, source_version)
        )

    def load(self, request: LoadRequest) -> LoadReceipt:
        contract = request.contract
        name = contract.name
        if name not in self._contracts:
            raise LookupError(f"table {name} does not exist: call ensure_table first")
        committed = [
            CommittedLoad(e.load_id, e.source_version, e.source_order)
            for e in self.ledger
            if e.status is LoadStatus.LOADED
            and (e.source_uri, e.table) == (request.source_uri, name)
        ]
        verdict = decide_load(
            request.load_id, request.source_version, request.source_order, committed
        )
        if verdict is not None and verdict.status is LoadStatus.LOADED:
            return LoadReceipt(LoadStatus.LOADED, request.load_id, request.rows.num_rows)
        if verdict is not None:
            self.ledger.append(request.ledger_entry(verdict.status, 0, utc_now()))
            return LoadReceipt(verdict.status, verdict.load_id, 0)
        now = utc_now()
        lineage: Row = {
            ddl.LOAD_ID: request.load_id,
            ddl.LOADED_AT: now,
        }
        staged = [
            {**row, **lineage}
            for row in request.rows.select(list(contract.column_names)).to_pylist()
        ]
        merged = self._merge(contract, staged)
        failure, self.fail_next_load = self.fail_next_load, None
        if failure is not None:
            raise failure
        self.tables[name] = merged
        self.ledger.append(request.ledger_entry(LoadStatus.LOADED, len(staged), now))
        return LoadReceipt(LoadStatus.LOADED, request.load_id, len(staged))

    def record(self, entry: LedgerEntry) -> None:
        if LoadStatus(entry.status) is LoadStatus.LOADED:
            raise ValueError("a 'loaded' ledger row is written by load() alone")
        self.ledger.append(entry.normalised())

    def history(
        self, limit: int | None = None, where: LedgerFilter | None = None
    ) -> Sequence[LedgerEntry]:
        ledger_sql.check_limit(limit)
        wanted = where or LedgerFilter()
        by_id = sorted((e for e in self.ledger if wanted.matches(e)), key=lambda e: e.load_id)
        newest = sorted(by_id, key=lambda e: e.finished_at, reverse=True)
        return newest if limit is None else newest[:limit]

    def recorded_versions(self, source_uris: Collection[str]) -> frozenset[tuple[str, str]]:
        wanted = set(source_uris)
        return frozenset(
            (e.source_uri, e.source_version) for e in self.ledger if e.source_uri in wanted
        )

    def close(self) -> None:
        self.closed = True

    # ------------------------------------------------------------ for tests

    def rows(self, table: str) -> list[Row]:
        """Every row of ``table``, lineage included, ordered by primary key."""
        contract = self._contracts.get(table)
        if contract is None:
            return []
        order = contract.primary_key or contract.column_names
        # None sorts first, as the SQL adapters' ORDER BY ... NULLS FIRST.
        return sorted(
            (dict(r) for r in self.tables[table].values()),
            key=lambda r: tuple((r[c] is not None, r[c]) for c in order),
        )

    # ------------------------------------------------------------ internals

    def _merge(self, contract: TableContract, staged: list[Row]) -> dict[Key, Row]:
        keys = contract.primary_key
        mode = contract.load_mode
        merged = {} if mode is LoadMode.REPLACE else dict(self.tables[contract.name])
        if mode is LoadMode.UPSERT:
            for row in staged:
                merged.pop(tuple(row[k] for k in keys), None)
        for row in staged:
            key = tuple(row[k] for k in keys) if keys else (next(self._serial),)
            if key in merged:
                raise TerminalError(
                    f"table {contract.name}: duplicate primary key {key!r}",
                    code="constraint_violation",
                    table=contract.name,
                )
            merged[key] = row
        return merged
