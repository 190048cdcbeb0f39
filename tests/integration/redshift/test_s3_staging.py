"""Large loads: Parquet staged in S3 (moto in server mode), COPY, and cleanup.

PostgreSQL cannot COPY from S3, so the COPY statement is replaced by a stand-in
that reads the staged object back over HTTP from moto and inserts its rows into
the staging table; the statement itself is checked in tests/unit/test_redshift_sql.py.
Everything around it (upload, the transaction, merge, ledger, deletion) is real.
"""

from __future__ import annotations

import io
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from redshift_connector.error import ProgrammingError

from domain.arrow_types import arrow_schema
from domain.contracts import Column, TableContract
from domain.errors import ConfigurationError, TerminalError
from domain.ledger import LoadStatus
from domain.types import ColumnType
from infrastructure.aws.clients import aws_client
from infrastructure.warehouse.redshift_options import Staging
from infrastructure.warehouse.redshift_warehouse import RedshiftEngine, RedshiftWarehouse
from infrastructure.warehouse.s3_staging import ParquetStager
from infrastructure.warehouse.sql import redshift as redshift_sql
from tests.integration.redshift.conftest import MakeWarehouse
from tests.support.redshift import request_for
from tests.support.warehouse_rows import table_rows

pytestmark = pytest.mark.integration

BUCKET = "datalakep-staging-test"
PREFIX = "runs/staging/"
ROLE = "arn:aws:iam::123456789012:role/datalakep-copy"

TYPED = TableContract(
    "typed",
    (
        Column("k", ColumnType.parse("integer"), nullable=False),
        Column("amount", ColumnType.parse("decimal(12,4)")),
        Column("day", ColumnType.parse("date")),
        Column("at", ColumnType.parse("timestamp")),
        Column("label", ColumnType.parse("varchar(20)")),
    ),
    ("k",),
)


def typed_rows(n: int) -> list[dict[str, Any]]:
    return [
        {
            "k": i,
            "amount": None if i % 3 == 0 else Decimal(f"{i}.0125"),
            "day": date(2026, 1, 1 + i % 28),
            "at": datetime(2026, 1, 1, 12, 0, 0, i),
            "label": f"é {i}",
        }
        for i in range(1, n + 1)
    ]


@pytest.fixture
def s3(aws: str) -> Any:
    client = aws_client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


def staged_keys(s3: Any) -> list[str]:
    listed = s3.list_objects_v2(Bucket=BUCKET)
    return [o["Key"] for o in listed.get("Contents", [])]


def read_back(s3: Any, uri: str) -> pa.Table:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return pq.read_table(io.BytesIO(body))


# ---------------------------------------------------------------- the stager


def test_rows_are_staged_as_parquet_under_the_prefix_and_deleted_after(s3: Any) -> None:
    table = pa.Table.from_pylist(typed_rows(50), schema=arrow_schema(TYPED))
    stager = ParquetStager(Staging(BUCKET, PREFIX, ROLE))  # the shared client, via moto

    with stager.staged(table) as uri:
        [key] = staged_keys(s3)
        assert uri == f"s3://{BUCKET}/{key}"
        assert key.startswith(PREFIX)
        assert key.endswith(".parquet")
        assert read_back(s3, uri).equals(table)

    assert staged_keys(s3) == []


def test_the_object_is_deleted_when_the_work_inside_fails(s3: Any) -> None:
    table = pa.Table.from_pylist(typed_rows(3), schema=arrow_schema(TYPED))
    stager = ParquetStager(Staging(BUCKET, PREFIX, ROLE), s3)

    with pytest.raises(RuntimeError, match="copy failed"), stager.staged(table):
        assert len(staged_keys(s3)) == 1
        raise RuntimeError("copy failed")

    assert staged_keys(s3) == []


# ---------------------------------------------------------------- through the warehouse

CopyLog = list[tuple[str, str]]


def simulate_copy(
    warehouse: RedshiftWarehouse, monkeypatch: pytest.MonkeyPatch, s3: Any, fail: list[Exception]
) -> CopyLog:
    """Replace COPY by "read the object from S3, INSERT its rows"; raise ``fail`` first."""
    seen: CopyLog = []

    def copy(cur: Any, staging: str, uri: str) -> None:
        seen.append((uri, redshift_sql.copy_parquet_sql(staging, uri, ROLE)))
        assert uri.startswith(f"s3://{BUCKET}/{PREFIX}")
        if fail:
            raise fail.pop(0)
        engine = warehouse._engine
        assert isinstance(engine, RedshiftEngine)
        engine._insert_rows(cur, staging, read_back(s3, uri))

    monkeypatch.setattr(warehouse._engine, "_copy_into", copy)
    return seen


def staging_options(threshold: int = 10) -> dict[str, Any]:
    return {
        "copy_threshold_rows": threshold,
        "staging": {"bucket": BUCKET, "prefix": PREFIX, "iam_role": ROLE},
    }


def test_a_large_load_goes_through_s3_and_copy_and_leaves_nothing_staged(
    s3: Any, make_warehouse: MakeWarehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = make_warehouse(**staging_options())
    warehouse.ensure_table(TYPED)
    seen = simulate_copy(warehouse, monkeypatch, s3, [])
    rows = typed_rows(25)

    receipt = warehouse.load(request_for(TYPED, rows))

    assert receipt.status is LoadStatus.LOADED
    assert receipt.rows_loaded == 25
    [(uri, statement)] = seen
    assert f"FROM '{uri}' IAM_ROLE '{ROLE}' FORMAT AS PARQUET" in statement
    assert [{c: r[c] for c in TYPED.column_names} for r in table_rows(warehouse, "typed")] == rows
    assert staged_keys(s3) == []


def test_a_failed_copy_deletes_the_object_and_loads_nothing(
    s3: Any, make_warehouse: MakeWarehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = make_warehouse(**staging_options())
    warehouse.ensure_table(TYPED)
    spectrum = ProgrammingError(
        {"S": "ERROR", "C": "XX000", "M": "Spectrum Scan Error", "D": "S3 access denied"}
    )
    simulate_copy(warehouse, monkeypatch, s3, [spectrum])

    with pytest.raises(TerminalError, match="Spectrum Scan Error") as caught:
        warehouse.load(request_for(TYPED, typed_rows(12)))

    assert caught.value.code == "constraint_violation"
    assert staged_keys(s3) == []
    assert table_rows(warehouse, "typed") == []
    assert list(warehouse.history()) == []


def test_a_retried_copy_reuses_the_one_staged_object(
    s3: Any, make_warehouse: MakeWarehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = make_warehouse(**staging_options())
    warehouse.ensure_table(TYPED)
    conflict = ProgrammingError(
        {"S": "ERROR", "C": "XX000", "M": "1023", "D": "Serializable isolation violation"}
    )
    seen = simulate_copy(warehouse, monkeypatch, s3, [conflict])

    receipt = warehouse.load(request_for(TYPED, typed_rows(10)))

    assert receipt.status is LoadStatus.LOADED
    assert len(seen) == 2
    assert seen[0][0] == seen[1][0]
    assert len(table_rows(warehouse, "typed")) == 10
    assert staged_keys(s3) == []


def test_below_the_threshold_nothing_goes_to_s3(
    s3: Any, make_warehouse: MakeWarehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = make_warehouse(**staging_options(threshold=10))
    warehouse.ensure_table(TYPED)

    def never(*args: Any) -> None:
        raise AssertionError("staged a small load")

    monkeypatch.setattr(ParquetStager, "staged", never)

    assert warehouse.load(request_for(TYPED, typed_rows(9))).rows_loaded == 9


def test_a_missing_bucket_is_a_configuration_error_and_loads_nothing(
    s3: Any, make_warehouse: MakeWarehouse
) -> None:
    options = staging_options()
    options["staging"] = {**options["staging"], "bucket": "no-such-bucket"}
    warehouse = make_warehouse(**options)
    warehouse.ensure_table(TYPED)

    with pytest.raises(ConfigurationError, match="NoSuchBucket"):
        warehouse.load(request_for(TYPED, typed_rows(10)))

    assert table_rows(warehouse, "typed") == []
    assert list(warehouse.history()) == []
