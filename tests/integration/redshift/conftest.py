"""RedshiftWarehouse through the real driver, the proxy and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from infrastructure.warehouse.credentials import Credentials
from infrastructure.warehouse.redshift_warehouse import RedshiftWarehouse
from infrastructure.warehouse.sql_warehouse import OnMerged
from tests.support.postgres import PostgresServer, fresh_database
from tests.support.redshift import PROXY_OPTIONS, proxied_credentials
from tests.support.redshift_proxy import RedshiftProxy, redshift_proxy

MakeWarehouse = Callable[..., RedshiftWarehouse]
PASSWORD = "pw-never-shown-7f3a"


@pytest.fixture(scope="session")
def proxy(postgres: PostgresServer) -> Iterator[RedshiftProxy]:
    with redshift_proxy(postgres.host, postgres.port) as running:
        yield running


@pytest.fixture
def database(postgres: PostgresServer) -> Iterator[str]:
    """A fresh database per test: no test sees another's tables or ledger."""
    with fresh_database(postgres, "redshift") as url:
        yield url.rsplit("/", 1)[1]


@pytest.fixture
def credentials(proxy: RedshiftProxy, database: str) -> Credentials:
    return proxied_credentials(proxy, database, PASSWORD)


@pytest.fixture
def make_warehouse(credentials: Credentials) -> Iterator[MakeWarehouse]:
    made: list[RedshiftWarehouse] = []

    def make(
        s3: Any | None = None, on_merged: OnMerged | None = None, **options: Any
    ) -> RedshiftWarehouse:
        warehouse = RedshiftWarehouse(
            credentials, options={**PROXY_OPTIONS, **options}, s3=s3, on_merged=on_merged
        )
        made.append(warehouse)
        return warehouse

    yield make
    for warehouse in made:
        warehouse.close()


@pytest.fixture
def admin(postgres: PostgresServer, database: str) -> Iterator[psycopg.Connection[Any]]:
    """A direct PostgreSQL connection to the test's database, around the adapter."""
    dsn = f"postgresql://{postgres.user}@{postgres.host}:{postgres.port}/{database}"
    with psycopg.connect(dsn, autocommit=True) as con:
        yield con
