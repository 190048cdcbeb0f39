from __future__ import annotations

import json
import logging

import pytest

from domain.errors import ConfigurationError, TerminalError
from infrastructure.aws.clients import aws_client
from infrastructure.aws.secrets import SecretsManagerSecretProvider
from infrastructure.warehouse.credentials import resolve_credentials
from infrastructure.warehouse.urls import parse_warehouse_url

pytestmark = pytest.mark.integration


def test_plain_and_json_secrets_fill_the_connection(
    aws: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = aws_client("secretsmanager")
    client.create_secret(Name="plain", SecretString="s3cr3t-plain")
    rds = {"username": "loader", "password": "s3cr3t-json", "host": "db.internal",
           "port": 5439, "dbname": "dev"}  # fmt: skip
    client.create_secret(Name="rds", SecretString=json.dumps(rds))
    provider = SecretsManagerSecretProvider(ttl_seconds=300)
    caplog.set_level(logging.DEBUG)

    plain = resolve_credentials(
        parse_warehouse_url("redshift://u@h:5439/db"),
        {"password": "SecretsManager", "secret_name": "plain"},
        provider,
        5439,
    )
    shaped = resolve_credentials(
        parse_warehouse_url("redshift://cluster.example/"),
        {"password": "SecretsManager", "secret_name": "rds"},
        provider,
        5439,
    )

    assert (plain.user, plain.password) == ("u", "s3cr3t-plain")
    assert (shaped.user, shaped.host, shaped.port, shaped.database, shaped.password) == (
        "loader", "cluster.example", 5439, "dev", "s3cr3t-json",
    )  # fmt: skip
    assert "s3cr3t" not in repr(shaped)
    assert "s3cr3t" not in caplog.text


def test_a_secret_is_cached_until_its_ttl_or_a_fresh_read(aws: str) -> None:
    client = aws_client("secretsmanager")
    client.create_secret(Name="pw", SecretString="first")
    now = [1000.0]
    provider = SecretsManagerSecretProvider(ttl_seconds=300, clock=lambda: now[0])
    assert provider.get("pw") == "first"
    client.put_secret_value(SecretId="pw", SecretString="second")

    now[0] += 299
    cached = provider.get("pw")
    now[0] += 1
    expired = provider.get("pw")
    client.put_secret_value(SecretId="pw", SecretString="third")
    forced = provider.get("pw", fresh=True)

    assert (cached, expired, forced) == ("first", "second", "third")


def test_without_a_ttl_a_secret_read_names_the_setting(aws: str) -> None:
    with pytest.raises(ConfigurationError, match=r"warehouse\.secret_ttl_seconds"):
        SecretsManagerSecretProvider(ttl_seconds=None).get("pw")


def test_a_missing_secret_is_terminal_and_names_it(aws: str) -> None:
    with pytest.raises(TerminalError, match="secret 'nope' does not exist"):
        SecretsManagerSecretProvider(ttl_seconds=300).get("nope")
