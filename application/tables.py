"""Use cases around the warehouse's tables and ledger (no file involved)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from application.ports import Warehouse
from domain.contracts import Catalog
from domain.errors import ConfigurationError, SchemaDriftError
from domain.ledger import LedgerEntry, LedgerFilter


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
    where: LedgerFilter = field(default_factory=LedgerFilter)


class ShowHistory:
    def __init__(self, warehouse: Warehouse) -> None:
        self._warehouse = warehouse

    def execute(self, query: HistoryQuery) -> Sequence[LedgerEntry]:
        return self._warehouse.history(query.limit, query.where)


_DURATION = re.compile(r"(\d+)\s*([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, now: datetime) -> datetime:
    """``--since``: a duration back from ``now`` (``90m``, ``2h``, ``7d``, ``1d12h``) or an
    ISO 8601 timestamp (UTC unless it names its offset); naive UTC as the ledger stores.

    Raises ConfigurationError naming the value otherwise.
    """
    compact = text.strip().lower()
    if compact and _DURATION.sub("", compact).strip() == "":
        seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in _DURATION.findall(compact))
        return now - timedelta(seconds=seconds)
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigurationError(
            f"--since {text!r}: give a duration such as 90m, 2h or 7d, "
            "or a timestamp such as 2026-12-01T08:00"
        ) from None
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)
