"""Use cases around the warehouse's tables and ledger (no file involved)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from application.ports import Warehouse
from domain.contracts import Catalog
from domain.errors import SchemaDriftError
from domain.ledger import LedgerEntry


@dataclass(frozen=True)
class InitTables:
    tables: tuple[str, ...] = ()  # empty: every table of the catalog


@dataclass(frozen=True)
class TableState:
    table: str
    ready: bool
    error: str | None = None


@dataclass(frozen=True)
class InitTablesResult:
    tables: tuple[TableState, ...]

    @property
    def ok(self) -> bool:
        return all(t.ready for t in self.tables)


class InitializeTables:
    """Create missing tables ahead of the first file, and report drift early."""

    def __init__(self, catalog: Catalog, warehouse: Warehouse) -> None:
        self._catalog = catalog
        self._warehouse = warehouse

    def execute(self, command: InitTables) -> InitTablesResult:
        names = command.tables or tuple(c.name for c in self._catalog)
        states = []
        for name in names:
            try:
                self._warehouse.ensure_table(self._catalog.get(name))
            except SchemaDriftError as error:
                states.append(TableState(name, False, str(error)))
            else:
                states.append(TableState(name, True))
        return InitTablesResult(tuple(states))


@dataclass(frozen=True)
class HistoryQuery:
    limit: int | None = None


class ShowHistory:
    def __init__(self, warehouse: Warehouse) -> None:
        self._warehouse = warehouse

    def execute(self, query: HistoryQuery) -> Sequence[LedgerEntry]:
        return self._warehouse.history(query.limit)
