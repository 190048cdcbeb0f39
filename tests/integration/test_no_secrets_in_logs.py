"""The suite-wide check that no registered secret reaches a log line (tests/conftest.py).

The checker itself is proved here: a test that logs a registered secret fails,
in its body or its teardown, and one that does not passes. Then a password
that does reach a live PostgreSQL, through the production adapter with the
driver's DEBUG logging on, is never logged.
"""

from __future__ import annotations

import logging
import secrets
from decimal import Decimal
from pathlib import Path

import pytest

from domain.contracts import contract_from_mapping
from infrastructure.warehouse.factory import warehouse_from_url
from tests.support.postgres import PostgresServer, fresh_database
from tests.support.redshift import request_for
from tests.support.secrets import LeakCapture, find_leaks, register_secret

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_find_leaks_names_the_line_in_plain_or_url_encoded_form() -> None:
    secret = "p@ss/word-1234"
    lines = [
        "connecting as loader",
        f"dsn=postgresql://loader:{secret}@db",
        "pw=p%40ss%2Fword-1234",
    ]

    leaks = find_leaks(lines, {secret})

    assert [leak.line for leak in leaks] == lines[1:]
    # The report names the line without repeating the secret in any spelling.
    assert all("ss/word" not in leak.describe() for leak in leaks)
    assert all("ss%2Fword" not in leak.describe() for leak in leaks)


def test_the_capture_sees_arguments_extras_and_tracebacks() -> None:
    secret = f"capture-{secrets.token_hex(6)}"
    capture = LeakCapture()
    # Not propagating: this test's own autouse check must not see the planted leaks.
    logger = logging.getLogger("tests.leak_capture_probe")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(capture)
    try:
        logger.info("connecting with %s", secret)
        logger.warning("refused", extra={"dsn": f"postgresql://u:{secret}@h/db"})
        try:
            raise RuntimeError(f"bad password {secret}")
        except RuntimeError:
            logger.exception("connection failed")
        logger.info("nothing to see")
    finally:
        logger.removeHandler(capture)

    leaks = find_leaks(capture.lines, {secret})

    assert len(leaks) == 3
    assert "nothing to see" not in " ".join(leak.line for leak in leaks)


INNER_TESTS = """
import logging

import pytest

from tests.support.secrets import register_secret

log = logging.getLogger("infrastructure.probe")


def test_logs_a_registered_secret():
    register_secret("inner-secret-0123")
    log.debug("connecting with password %s", "inner-secret-0123")


def test_logs_no_secret():
    register_secret("inner-secret-4567")
    log.debug("connecting as %s", "loader")


@pytest.fixture
def leaky_teardown():
    register_secret("inner-secret-89ab")
    yield
    log.warning("closing %s", "inner-secret-89ab")


def test_leaks_in_its_teardown(leaky_teardown):
    log.debug("working")
"""


def test_a_test_that_logs_a_registered_secret_fails(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makeconftest('pytest_plugins = ["tests.conftest"]')
    pytester.makepyfile(test_inner=INNER_TESTS)

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")

    result.assert_outcomes(passed=2, failed=1, errors=1)
    for expected in (
        "FAILED test_inner.py::test_logs_a_registered_secret - Failed: 1 registered*",
        "ERROR test_inner.py::test_leaks_in_its_teardown - Failed: 1 registered*",
        "E * 1 registered secret(s) appeared in log lines during the test:",
        "E * 1 registered secret(s) appeared in log lines in the test's setup or teardown:",
    ):
        result.stdout.fnmatch_lines([expected])


PEOPLE = contract_from_mapping(
    "people",
    {
        "primary_key": ["id"],
        "columns": [
            {"name": "id", "type": "integer", "nullable": False},
            {"name": "balance", "type": "decimal(10,2)"},
        ],
    },
)


def test_a_password_that_reaches_postgresql_is_never_logged(
    postgres: PostgresServer, no_secrets_in_logs: LeakCapture
) -> None:
    # The test server trusts local connections: the password is carried, sent
    # and logged (or not) by the production code all the same.
    password = f"pg-Pa55-{secrets.token_hex(6)}"
    register_secret(password)
    with fresh_database(postgres, "secretlog") as url:
        with_password = url.replace("postgresql://postgres@", f"postgresql://postgres:{password}@")
        warehouse = warehouse_from_url(with_password, options={"retry_attempts": 1})
        try:
            warehouse.ensure_table(PEOPLE)
            rows: list[dict[str, object]] = [
                {"id": 1, "balance": Decimal("1.50")},
                {"id": 2, "balance": None},
            ]
            receipt = warehouse.load(request_for(PEOPLE, rows))
            history = list(warehouse.history())
        finally:
            warehouse.close()

    assert receipt.rows_loaded == 2
    assert len(history) == 1
    # The adapter and the driver did log, at DEBUG, and none of it held the password.
    assert any(line.startswith(("psycopg", "infrastructure")) for line in no_secrets_in_logs.lines)
