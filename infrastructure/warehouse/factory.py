"""Choose and build the Warehouse adapter for a URL, importing only its driver."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from application.ports import SecretProvider, Warehouse
from domain.errors import ConfigurationError
from infrastructure.warehouse.sql.ledger import DEFAULT_LEDGER_TABLE
from infrastructure.warehouse.urls import parse_warehouse_url


def warehouse_from_url(
    url: str,
    *,
    ledger_table: str = DEFAULT_LEDGER_TABLE,
    options: Mapping[str, Any] | None = None,
    secrets: SecretProvider | None = None,
) -> Warehouse:
    """``options`` is the config's ``warehouse`` section; the URL's query parameters win."""
    parsed = parse_warehouse_url(url)
    if parsed.scheme == "duckdb":
        from infrastructure.warehouse.duckdb_warehouse import DuckDbWarehouse

        path = parsed.path if parsed.path == ":memory:" else str(Path(parsed.path))
        return DuckDbWarehouse(path, ledger_table=ledger_table)
    merged = {**(options or {}), **parsed.params}
    if parsed.scheme == "postgresql":
        from infrastructure.warehouse.credentials import CredentialSource
        from infrastructure.warehouse.postgres_warehouse import PostgresWarehouse

        credentials = CredentialSource.configured(parsed, merged, secrets, 5432)
        return PostgresWarehouse(credentials, ledger_table=ledger_table, options=merged)
    if parsed.scheme == "redshift":
        from infrastructure.warehouse.credentials import CredentialSource
        from infrastructure.warehouse.redshift_warehouse import RedshiftWarehouse

        credentials = CredentialSource.configured(parsed, merged, secrets, 5439)
        return RedshiftWarehouse(credentials, ledger_table=ledger_table, options=merged)
    raise ConfigurationError(
        f"warehouse {parsed.redacted()}: no adapter for the {parsed.scheme} scheme",
        url=parsed.redacted(),
    )
