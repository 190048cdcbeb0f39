"""Redshift adapter settings, error classification, and building it from a URL."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest
from redshift_connector.error import InterfaceError, OperationalError, ProgrammingError

from domain.errors import ConfigurationError
from infrastructure.warehouse import redshift_errors as errors
from infrastructure.warehouse.credentials import Credentials
from infrastructure.warehouse.factory import warehouse_from_url
from infrastructure.warehouse.redshift_options import RedshiftOptions, Staging
from infrastructure.warehouse.redshift_warehouse import RedshiftEngine, RedshiftWarehouse
from infrastructure.warehouse.retry import RetryPolicy

pytestmark = pytest.mark.unit

ROLE = "arn:aws:iam::123456789012:role/copy"
CREDS = Credentials("cluster.example.com", 5439, "dev", "loader", "pw-secret-123")


def test_defaults_are_the_safe_ones() -> None:
    o = RedshiftOptions.from_mapping(None)

    assert (o.ssl, o.sslmode, o.iam, o.table_options) == (True, "verify-full", False, True)
    assert (o.copy_threshold_rows, o.staging, o.retry.attempts) == (100_000, None, 4)
    kwargs = o.connect_kwargs(CREDS)
    assert kwargs["ssl"] is True
    assert kwargs["sslmode"] == "verify-full"
    assert kwargs["password"] == "pw-secret-123"
    assert "iam" not in kwargs
    assert "timeout" not in kwargs


def test_iam_settings_reach_the_driver_only_with_iam_on() -> None:
    section = {
        "cluster_identifier": "c1", "db_user": "loader", "region": "eu-west-1",
        "is_serverless": "false", "db_groups": "etl,readers",
    }  # fmt: skip

    off = RedshiftOptions.from_mapping(section).connect_kwargs(CREDS)
    on = RedshiftOptions.from_mapping({**section, "iam": "true"}).connect_kwargs(
        Credentials("h", 5439, "dev", "loader")
    )

    assert "cluster_identifier" not in off
    assert on["iam"] is True
    assert on["cluster_identifier"] == "c1"
    assert on["region"] == "eu-west-1"
    assert on["is_serverless"] is False
    assert on["db_groups"] == ["etl", "readers"]
    assert "password" not in on


def test_url_strings_and_the_rest_of_the_config_section_are_accepted() -> None:
    o = RedshiftOptions.from_mapping(
        {"url": "redshift://x", "password": "SecretsManager", "secret_name": "s",
         "ssl": "false", "timeout": "30", "copy_threshold_rows": "5", "connect_timeout": 3}
    )  # fmt: skip

    assert (o.ssl, o.timeout, o.copy_threshold_rows) == (False, 30, 5)


@pytest.mark.parametrize(
    ("section", "complaint"),
    [
        ({"sslmode": "disable"}, "sslmode"),
        ({"ssl": "maybe"}, "true or false"),
        ({"copy_threshold_rows": 0}, "copy_threshold_rows"),
        ({"retry_attempts": 0}, "retry_attempts"),
        ({"retry_base_delay_s": -1}, "retry_base_delay_s"),
        ({"staging": {"bucket": "b-ucket"}}, "bucket and an iam_role"),
        ({"staging": {"bucket": "Bad_Bucket", "iam_role": ROLE}}, "bucket name"),
        ({"staging": {"bucket": "bucket", "iam_role": "admin"}}, "IAM role ARN"),
        ({"staging": {"bucket": "bucket", "iam_role": ROLE, "prefix": "a\\b"}}, "backslash"),
        ({"staging": {"bucket": "bucket", "iam_role": ROLE, "acl": "x"}}, "unknown staging"),
    ],
)
def test_bad_settings_are_configuration_errors(section: dict[str, object], complaint: str) -> None:
    with pytest.raises(ConfigurationError, match=complaint):
        RedshiftOptions.from_mapping(section)


def test_staging_takes_the_default_prefix() -> None:
    o = RedshiftOptions.from_mapping({"staging": {"bucket": "my-bucket", "iam_role": ROLE}})

    assert o.staging == Staging("my-bucket", "datalakep-staging/", ROLE)


def test_backoff_is_exponential_with_full_jitter_and_capped() -> None:
    policy = RetryPolicy(attempts=6, base_delay_s=0.5, max_delay_s=3.0, rng=random.Random(7))

    for retry, ceiling in enumerate([0.5, 1.0, 2.0, 3.0, 3.0]):
        delays = [policy.delay(retry) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # the whole range is used


def fault(**fields: str) -> ProgrammingError:
    return ProgrammingError({"S": "ERROR", **fields})


@pytest.mark.parametrize(
    "exc",
    [
        fault(C="40001", M="could not serialize access"),
        fault(C="XX000", M="1023", D="Serializable isolation violation on table - 1"),
        fault(C="XX000", M="Serializable isolation violation on table"),
    ],
)
def test_serialization_failures_are_recognised(exc: Exception) -> None:
    assert errors.is_serialization_failure(exc)
    assert not errors.is_dropped_connection(exc)


@pytest.mark.parametrize(
    "exc",
    [
        InterfaceError("BrokenPipe: server socket closed"),
        OperationalError("connection time out"),
        BrokenPipeError(32, "Broken pipe"),
        fault(S="FATAL", C="57P01", M="terminating connection due to administrator command"),
        fault(C="08006", M="connection failure"),
    ],
)
def test_dropped_connections_are_recognised(exc: Exception) -> None:
    assert errors.is_dropped_connection(exc)


def test_other_server_errors_are_neither() -> None:
    exc = fault(C="22001", M="value too long for type character varying(5)")

    assert not errors.is_serialization_failure(exc)
    assert not errors.is_dropped_connection(exc)
    assert errors.describe(exc) == "value too long for type character varying(5) [SQLSTATE 22001]"
    login = InterfaceError({"S": "FATAL", "C": "28000", "M": "no"})
    assert errors.is_authentication_failure(login)
    assert not errors.is_dropped_connection(login)


def test_a_redshift_url_builds_the_adapter_without_connecting() -> None:
    warehouse = warehouse_from_url(
        "redshift://loader:pw-secret-123@cluster.example.invalid:5439/dev?ssl=false",
        ledger_table="My Ledger",
        options={"copy_threshold_rows": 10},
    )

    assert isinstance(warehouse, RedshiftWarehouse)
    assert isinstance(warehouse._engine, RedshiftEngine)
    assert warehouse._engine._con is None  # nothing is opened until the first call
    assert warehouse._engine._credentials == Credentials(
        "cluster.example.invalid", 5439, "dev", "loader", "pw-secret-123"
    )
    assert "pw-secret-123" not in repr(warehouse) + repr(warehouse._engine._credentials)
    assert warehouse.where == "redshift://loader@cluster.example.invalid:5439/dev"
    warehouse.close()


def test_the_default_port_is_5439() -> None:
    warehouse = warehouse_from_url("redshift://loader@cluster.example.invalid/dev")

    assert isinstance(warehouse, RedshiftWarehouse)
    assert isinstance(warehouse._engine, RedshiftEngine)
    assert warehouse._engine._credentials.port == 5439


def test_importing_the_adapter_leaves_the_driver_and_boto3_unloaded() -> None:
    """A Lambda that never touches Redshift pays nothing for it at cold start."""
    code = (
        "import sys; import infrastructure.warehouse.redshift_warehouse as m; "
        "m.RedshiftWarehouse(m.Credentials('h', 5439, 'd', 'u')); "
        "print(sorted({'redshift_connector', 'boto3', 'pyarrow.parquet'} & set(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout

    assert out.strip() == "[]"
