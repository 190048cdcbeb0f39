"""Each entrypoint's container builds and resolves its use cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from application.ingest import IngestPassengerFile
from application.tables import InitializeTables, InitTables, ShowHistory
from entrypoints.containers import cli_container
from infrastructure.memory.warehouse import InMemoryWarehouse

pytestmark = pytest.mark.e2e


def test_cli_container_builds_with_the_shipped_config(tmp_path: Path) -> None:
    container = cli_container(None, f"duckdb:///{tmp_path / 'x.duckdb'}")
    try:
        assert isinstance(container.ingest(), IngestPassengerFile)
        assert isinstance(container.init_tables(), InitializeTables)
        assert isinstance(container.history(), ShowHistory)
        assert len(container.catalog()) == 3
    finally:
        container.shutdown_resources()


def test_cli_container_providers_can_be_overridden_with_fakes(tmp_path: Path) -> None:
    container = cli_container(None, f"duckdb:///{tmp_path / 'x.duckdb'}")
    fake = InMemoryWarehouse()
    with container.warehouse.override(fake):
        container.init_tables().execute(InitTables())
    assert set(fake.tables) == {"train_data", "test_data", "gender_submission"}
    assert not (tmp_path / "x.duckdb").exists()
