"""Choose and build the Warehouse adapter for a URL, importing only its driver."""

from __future__ import annotations

from pathlib import Path

from application.ports import Warehouse
from domain.errors import ConfigurationError
from infrastructure.warehouse.urls import parse_warehouse_url


def warehouse_from_url(url: str, ledger_table: str = "datalakep_load_ledger") -> Warehouse:
    parsed = parse_warehouse_url(url)
    if parsed.scheme == "duckdb":
        from infrastructure.warehouse.duckdb_warehouse import DuckDbWarehouse

        path = parsed.path if parsed.path == ":memory:" else str(Path(parsed.path))
        return DuckDbWarehouse(path, ledger_table=ledger_table)
    raise ConfigurationError(
        f"warehouse {parsed.redacted()}: the {parsed.scheme} adapter is not available in "
        "this build; use duckdb:///path.duckdb",
        url=parsed.redacted(),
    )
