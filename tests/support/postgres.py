"""The tests' PostgreSQL: the server from devtools (shared with the benchmark), and
what the warehouse factory would resolve from a URL."""

from __future__ import annotations

from typing import TYPE_CHECKING

from devtools.postgres import (
    PostgresServer,
    _free_port,
    create_database,
    fresh_database,
    start_postgres,
    stop_postgres,
)

if TYPE_CHECKING:
    from infrastructure.warehouse.credentials import Credentials

__all__ = [
    "PostgresServer",
    "_free_port",
    "create_database",
    "fresh_database",
    "start_postgres",
    "stop_postgres",
    "url_credentials",
]


def url_credentials(url: str) -> Credentials:
    """What the warehouse factory would resolve from ``url`` with no config or secrets."""
    from infrastructure.warehouse.credentials import resolve_credentials
    from infrastructure.warehouse.urls import parse_warehouse_url

    return resolve_credentials(parse_warehouse_url(url), None, None, 5432)
