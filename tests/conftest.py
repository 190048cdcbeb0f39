"""Fixtures shared by every test layer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from domain.contracts import Catalog, catalog_from_mapping
from domain.routing import Router, rules_from_config
from tests.support.postgres import PostgresServer, start_postgres, stop_postgres

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config" / "datalakep.yaml"
TITANIC = ROOT.parent / "shared" / "data" / "titanic"


@pytest.fixture(scope="session")
def config() -> dict[str, object]:
    loaded = yaml.safe_load(CONFIG.read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="session")
def catalog(config: dict[str, object]) -> Catalog:
    return catalog_from_mapping(config["tables"], config.get("defaults"))  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def router(config: dict[str, object], catalog: Catalog) -> Router:
    return Router(catalog, rules_from_config(config.get("routing")))  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def titanic() -> Path:
    """The real Kaggle files. Missing data is a broken checkout: fail, never skip."""
    for name in ("train.csv", "test.csv", "gender_submission.csv"):
        assert (TITANIC / name).is_file(), f"{TITANIC / name} is missing"
    return TITANIC


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole run; it fails (not skips) when it cannot start."""
    server = start_postgres()
    try:
        yield server
    finally:
        stop_postgres(server)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh moto server, with the standard AWS environment pointing at it."""
    from infrastructure.aws.clients import aws_client
    from tests.support.moto_server import moto_server

    with moto_server() as endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        aws_client.cache_clear()
        try:
            yield endpoint
        finally:
            aws_client.cache_clear()
