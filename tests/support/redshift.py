"""RedshiftWarehouse on the test PostgreSQL server, through the loopback proxy."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from itertools import count
from typing import Any

import pyarrow as pa

from application.ports import LoadRequest
from domain.arrow_types import arrow_schema
from domain.contracts import TableContract
from infrastructure.warehouse.credentials import Credentials
from infrastructure.warehouse.redshift_warehouse import RedshiftWarehouse
from infrastructure.warehouse.sql_warehouse import OnMerged
from tests.support.postgres import PostgresServer, fresh_database
from tests.support.redshift_proxy import RedshiftProxy, redshift_proxy

# Plain text through the proxy; PostgreSQL has no DISTSTYLE/SORTKEY; retries
# without waiting, so the tests stay fast.
PROXY_OPTIONS: Mapping[str, Any] = {
    "ssl": False,
    "table_options": False,
    "retry_base_delay_s": 0,
    "retry_max_delay_s": 0,
}


URI = "s3://in/people.xlsx"
_ids = count(1)


def request_for(
    contract: TableContract, rows: Sequence[Mapping[str, Any]], version: str = "v1"
) -> LoadRequest:
    """A load of ``rows`` from version ``version`` of :data:`URI`, with a new load id."""
    return LoadRequest(
        contract=contract,
        rows=pa.Table.from_pylist([dict(r) for r in rows], schema=arrow_schema(contract)),
        source_uri=URI,
        source_version=version,
        load_id=f"load-{next(_ids):04d}",
        sheets=("Sheet1",),
        rows_read=len(rows),
        rows_rejected=0,
        started_at=datetime(2026, 1, 1),
    )


def proxied_credentials(proxy: RedshiftProxy, database: str, password: str = "x") -> Credentials:
    # Trust authentication: PostgreSQL ignores the password, so tests can use one
    # to prove it never leaks.
    return Credentials(proxy.host, proxy.port, database, "postgres", password)


@contextmanager
def redshift_through_proxy(
    server: PostgresServer, on_merged: OnMerged | None = None
) -> Iterator[RedshiftWarehouse]:
    """A RedshiftWarehouse on a fresh database, through its own proxy; all gone on exit."""
    with fresh_database(server, "redshift") as url, redshift_proxy(server.host, server.port) as p:
        database = url.rsplit("/", 1)[1]
        warehouse = RedshiftWarehouse(
            proxied_credentials(p, database), options=PROXY_OPTIONS, on_merged=on_merged
        )
        try:
            yield warehouse
        finally:
            warehouse.close()
