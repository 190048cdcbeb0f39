from __future__ import annotations

import json
import logging

import pytest

from domain.errors import TerminalError
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
    provider = SecretsManagerSecretProvider()
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
    assert "s3cr3t" not in repr(shaped) and "s3cr3t" not in caplog.text


def test_secrets_are_cached_per_process(aws: str) -> None:
    client = aws_client("secretsmanager")
    client.create_secret(Name="pw", SecretString="first")
    provider = SecretsManagerSecretProvider()
    assert provider.get("pw") == "first"
    client.put_secret_value(SecretId="pw", SecretString="second")
    assert provider.get("pw") == "first"


def test_a_missing_secret_is_terminal_and_names_it(aws: str) -> None:
    with pytest.raises(TerminalError, match="secret 'nope' does not exist"):
        SecretsManagerSecretProvider().get("nope")
