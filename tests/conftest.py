"""Fixtures shared by every test layer."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest
import yaml

from domain.contracts import Catalog, catalog_from_mapping
from domain.routing import Router, rules_from_config
from tests.support.postgres import PostgresServer, start_postgres, stop_postgres
from tests.support.secrets import (
    LeakCapture,
    add_harvester,
    leak_report,
    register_secret,
    register_secret_value,
    remove_harvester,
)

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


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """One moto server per test process: stopping one takes half a second, so each
    test empties this one (the ``aws`` fixture) instead of starting its own."""
    from tests.support.moto_server import moto_server

    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An empty moto server, with the standard AWS environment pointing at it.

    Its secret key, and every Secrets Manager value a test stores in it, are
    registered secrets: no log line may show them.
    """
    from tests.support.moto_server import reset

    # moto accepts any key; a distinctive one can be looked for in logs.
    secret_key = f"moto-secret-key-{secrets.token_hex(8)}"
    register_secret(secret_key)
    reset(moto_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret_key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    add_harvester(_stored_secret_values)
    try:
        yield moto_endpoint
    finally:
        # Read them while the server still holds them; the check comes later.
        for value in _stored_secret_values():
            register_secret_value(value)
        remove_harvester(_stored_secret_values)


def _stored_secret_values() -> list[str]:
    """Every version of every secret the moto server holds."""
    from infrastructure.aws.clients import aws_client

    client = aws_client("secretsmanager")
    values = []
    for page in client.get_paginator("list_secrets").paginate():
        for entry in page["SecretList"]:
            versions = client.list_secret_version_ids(SecretId=entry["ARN"])["Versions"]
            for version in versions:
                value = client.get_secret_value(
                    SecretId=entry["ARN"], VersionId=version["VersionId"]
                )
                values.append(
                    value.get("SecretString") or value["SecretBinary"].decode(errors="replace")
                )
    return values


# ------------------------------------------------------------ no secrets in logs

_LEAK_CAPTURE = pytest.StashKey[LeakCapture]()
# Our own code is checked at DEBUG, and so are the database drivers: production
# leaves their level to the root logger, which DATALAKEP_LOG_LEVEL may set to DEBUG.
_CHECKED_AT_DEBUG = (
    "domain", "application", "infrastructure", "entrypoints", "datalakep", "bench",
    "psycopg", "redshift_connector",
)  # fmt: skip
# botocore's DEBUG output holds response bodies, secret values included, so
# production keeps these at WARNING (infrastructure/aws/clients.py). Their level
# is left to production; only their records' way to the root logger is ensured.
_WIRE_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer")


@pytest.fixture(autouse=True)
def no_secrets_in_logs(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LeakCapture]:
    """Fail any test whose log records show a registered secret.

    Records are captured on the root logger, at the levels production sets,
    from setup to teardown; leaks during the test fail it (see
    pytest_runtest_call below), leaks in setup or teardown error it.
    """
    _register_driver_passwords(monkeypatch)
    capture = LeakCapture()
    restore: list[tuple[logging.Logger, int | None, bool]] = []
    for name in _CHECKED_AT_DEBUG:
        logger = logging.getLogger(name)
        restore.append((logger, logger.level, logger.propagate))
        logger.setLevel(logging.DEBUG)
        logger.propagate = True
    for name in _WIRE_LOGGERS:
        logger = logging.getLogger(name)
        restore.append((logger, None, logger.propagate))
        logger.propagate = True
    root = logging.getLogger()
    root.addHandler(capture)
    request.node.stash[_LEAK_CAPTURE] = capture
    try:
        yield capture
    finally:
        root.removeHandler(capture)
        for logger, level, propagate in restore:
            if level is not None:
                logger.setLevel(level)
            logger.propagate = propagate
    leaks = capture.new_leaks()
    if leaks:
        pytest.fail(leak_report(leaks, "in the test's setup or teardown"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    result = yield
    capture = item.stash.get(_LEAK_CAPTURE, None)
    leaks = [] if capture is None else capture.new_leaks()
    if leaks:
        pytest.fail(leak_report(leaks, "during the test"))
    return result


def _register_driver_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every password handed to a database driver is a registered secret.

    The test server trusts every local connection, so tests pass passwords
    that nothing checks; the production code still carries and may log them.
    """
    import psycopg
    import redshift_connector  # type: ignore[import-untyped, unused-ignore]
    from psycopg.conninfo import conninfo_to_dict

    pg_connect = psycopg.connect
    rs_connect = redshift_connector.connect

    def psycopg_connect(conninfo: str = "", **kwargs: Any) -> Any:
        register_secret(kwargs.get("password"))
        # An unparsable conninfo is psycopg's to refuse, below.
        with suppress(psycopg.ProgrammingError):
            register_secret(str(conninfo_to_dict(conninfo).get("password") or "") or None)
        return pg_connect(conninfo, **kwargs)

    def redshift_connect(*args: Any, **kwargs: Any) -> Any:
        register_secret(kwargs.get("password"))
        return rs_connect(*args, **kwargs)

    monkeypatch.setattr(psycopg, "connect", psycopg_connect)
    monkeypatch.setattr(redshift_connector, "connect", redshift_connect)
