"""DuckDB runs small loads and ledger queries on one thread, big merges on all of them.

Waking DuckDB's worker threads for a few hundred rows cost a warm small-file load
more CPU than it saved, so the connection stays at one thread; a merge of
PARALLEL_FROM_ROWS rows or more gets the cores, and gives them back when its
session ends, whether the load committed or failed.

A load of CHECKPOINT_FROM_BYTES or more is written once, into the database file, by
a checkpoint at its commit; a smaller one, before or after it, is an append to the WAL.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from application.ports import LoadRequest
from domain.arrow_types import arrow_schema
from domain.contracts import Column, TableContract
from domain.errors import TerminalError
from domain.ledger import LoadStatus
from domain.types import ColumnType
from infrastructure.warehouse.duckdb_warehouse import (
    CHECKPOINT_FROM_BYTES,
    PARALLEL_FROM_ROWS,
    DuckDbWarehouse,
)

pytestmark = pytest.mark.integration

ITEMS = TableContract(
    name="items",
    columns=(Column("id", ColumnType.parse("integer"), nullable=False),),
    primary_key=("id",),
)


def request_of(ids: list[int], version: str) -> LoadRequest:
    rows = pa.table({"id": pa.array(ids, pa.int32())}, schema=arrow_schema(ITEMS))
    return LoadRequest(
        contract=ITEMS,
        rows=rows,
        source_uri=f"s3://in/{version}.xlsx",
        source_version=version,
        load_id=f"load-{version}",
        sheets=("Sheet1",),
        rows_read=len(ids),
        rows_rejected=0,
        started_at=datetime(2026, 1, 1),
    )


def threads(warehouse: DuckDbWarehouse) -> int:
    return int(warehouse.fetch("threads", "SELECT current_setting('threads')")[0][0])


def test_only_a_big_merge_runs_on_every_thread_and_gives_them_back(
    tmp_path: Path,
) -> None:
    during_merge: list[int] = []
    warehouse = DuckDbWarehouse(
        str(tmp_path / "w.duckdb"), on_merged=lambda _: during_merge.append(threads(warehouse))
    )
    warehouse.ensure_table(ITEMS)
    cores = int(duckdb.connect().execute("SELECT current_setting('threads')").fetchall()[0][0])
    big = list(range(PARALLEL_FROM_ROWS))

    small = warehouse.load(request_of([1, 2, 3], "small"))
    after_small = threads(warehouse)
    loaded = warehouse.load(request_of(big, "big"))
    after_big = threads(warehouse)
    with pytest.raises(TerminalError):  # the same key twice in one load
        warehouse.load(request_of([*big, 0], "duplicated"))
    after_failure = threads(warehouse)

    assert (small.status, loaded.status) == (LoadStatus.LOADED, LoadStatus.LOADED)
    assert warehouse.fetch("count", "SELECT count(*) FROM items") == [(PARALLEL_FROM_ROWS,)]
    assert during_merge == [1, cores]
    assert (after_small, after_big, after_failure) == (1, 1, 1)
    warehouse.close()


def test_a_big_load_is_checkpointed_at_its_commit_and_a_small_one_is_logged(
    tmp_path: Path,
) -> None:
    warehouse = DuckDbWarehouse(str(tmp_path / "w.duckdb"))
    wal = tmp_path / "w.duckdb.wal"
    warehouse.ensure_table(ITEMS)

    def logged() -> int:
        return wal.stat().st_size if wal.exists() else 0

    big = CHECKPOINT_FROM_BYTES // 4  # int32 ids: a table of CHECKPOINT_FROM_BYTES

    warehouse.load(request_of([1, 2, 3], "small"))
    before = logged()
    warehouse.load(request_of(list(range(10, 10 + big)), "big"))
    after_big = logged()
    warehouse.load(request_of([4, 5], "small-after"))
    after_small = logged()

    assert before > 0  # the small load waits in the WAL for a checkpoint
    assert after_big == 0  # the big one's commit checkpointed both
    assert after_small > 0  # and the threshold went back for the next load
    assert warehouse.fetch("count", "SELECT count(*) FROM items") == [(big + 5,)]
    warehouse.close()
