"""Every row of a warehouse table, for assertions: the read the port does not offer."""

from __future__ import annotations

from typing import Any

from application.ports import Warehouse
from infrastructure.warehouse import drift
from infrastructure.warehouse.sql import ddl
from infrastructure.warehouse.sql_warehouse import SqlWarehouse
from tests.fakes.warehouse import InMemoryWarehouse


def table_rows(warehouse: Warehouse, table: str) -> list[dict[str, Any]]:
    """Every row of ``table``, lineage included, ordered by its columns in table order.

    A table that does not exist reads as empty, as the in-memory fake's does.
    """
    if isinstance(warehouse, InMemoryWarehouse):
        return warehouse.rows(table)
    assert isinstance(warehouse, SqlWarehouse), warehouse
    dialect = warehouse.dialect
    catalog = warehouse.fetch("rows", ddl.table_columns_sql(dialect), (table,), table)
    columns = [drift.shape_from_catalog(r, dialect).name for r in catalog]
    if not columns:
        return []
    found = warehouse.fetch("rows", ddl.select_rows_sql(table, columns, columns, dialect))
    return [dict(zip(columns, r, strict=True)) for r in found]


class FailNextMerge:
    """An ``on_merged`` hook: raises the armed error once, inside the load's transaction."""

    def __init__(self) -> None:
        self.error: BaseException | None = None

    def arm(self, error: BaseException) -> None:
        self.error = error

    def __call__(self, request: object) -> None:
        error, self.error = self.error, None
        if error is not None:
            raise error
