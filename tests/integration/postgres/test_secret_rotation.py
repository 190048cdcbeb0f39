"""The warehouse password rotated under a running service: Secrets Manager (moto), PostgreSQL.

The test server trusts every local login; these tests add a password rule for one
role of their own, so the server checks its password as a real one does.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest

from domain.errors import TransientError, WarehouseAuthenticationError
from domain.ledger import LoadStatus
from entrypoints.cli import main
from infrastructure.aws.clients import aws_client
from infrastructure.aws.secrets import SecretsManagerSecretProvider
from infrastructure.warehouse.factory import warehouse_from_url
from tests.integration.warehouse.test_warehouse_behaviour import PEOPLE, make_request, person
from tests.support.postgres import PostgresServer, fresh_database
from tests.support.secrets import register_secret

pytestmark = pytest.mark.integration

SECRET = "prod/warehouse"


@dataclass(frozen=True)
class Role:
    name: str
    url: str  # postgresql://role@host:port/db, no password
    admin: str  # the trusted superuser's URL of the same database

    def set_password(self, password: str) -> None:
        register_secret(password)
        with psycopg.connect(self.admin, autocommit=True) as con:
            con.execute(f"ALTER ROLE {self.name} PASSWORD '{password}'")
            # Sessions opened with the old password stay open: end them, as a
            # reconnect after a rotation (or a dropped connection) would meet it.
            con.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (self.name,),
            )


def _password() -> str:
    return f"pw-{secrets.token_hex(8)}"


@pytest.fixture
def role(postgres: PostgresServer) -> Iterator[Role]:
    name = f"rotator_{secrets.token_hex(4)}"
    hba = postgres.data_dir / "pg_hba.conf"
    with fresh_database(postgres, "rotation") as admin:
        database = admin.rsplit("/", 1)[1]
        with psycopg.connect(admin, autocommit=True) as con:
            con.execute(f"CREATE ROLE {name} LOGIN PASSWORD 'unset-{secrets.token_hex(4)}'")
            con.execute(f'GRANT ALL ON DATABASE "{database}" TO {name}')
            con.execute(f"GRANT ALL ON SCHEMA public TO {name}")
            original = hba.read_text()
            # First match wins: this role, and only it, must give a password.
            hba.write_text(f"host all {name} 127.0.0.1/32 scram-sha-256\n{original}")
            con.execute("SELECT pg_reload_conf()")
        try:
            yield Role(
                name, f"postgresql://{name}@{postgres.host}:{postgres.port}/{database}", admin
            )
        finally:
            hba.write_text(original)
            with psycopg.connect(admin, autocommit=True) as con:
                con.execute("SELECT pg_reload_conf()")
                con.execute(f"REASSIGN OWNED BY {name} TO {postgres.user}")
                con.execute(f"DROP OWNED BY {name}")
                con.execute(f"DROP ROLE {name}")


def _store(password: str, create: bool = False) -> None:
    client = aws_client("secretsmanager")
    value = json.dumps({"password": password})
    if create:
        client.create_secret(Name=SECRET, SecretString=value)
    else:
        client.put_secret_value(SecretId=SECRET, SecretString=value)


def test_a_rotated_password_is_read_again_and_the_load_goes_through(
    aws: str, role: Role, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    first, second, unknown = _password(), _password(), _password()
    role.set_password(first)
    _store(first, create=True)
    warehouse = warehouse_from_url(
        role.url,
        options={"password": "SecretsManager", "secret_name": SECRET, "retry_base_delay_s": 0},
        secrets=SecretsManagerSecretProvider(ttl_seconds=300),
    )
    warehouse.ensure_table(PEOPLE)
    assert warehouse.load(make_request(PEOPLE, [person(1)])).status is LoadStatus.LOADED

    # Rotation mid-run: the database and the secret change; the cached secret is old.
    role.set_password(second)
    _store(second)
    receipt = warehouse.load(make_request(PEOPLE, [person(2)], version="v2"))

    assert receipt.status is LoadStatus.LOADED
    assert "reading the credentials again" in caplog.text
    assert role.name in caplog.text

    # A half-done rotation: the database changed, the secret did not (yet).
    role.set_password(unknown)
    with pytest.raises(WarehouseAuthenticationError) as caught:
        warehouse.load(make_request(PEOPLE, [person(3)], version="v3"))

    error = caught.value
    assert isinstance(error, TransientError)  # released with backoff, never dead-lettered
    assert role.name in str(error)
    assert "127.0.0.1" in str(error)
    for text in (str(error), repr(error.details), caplog.text):
        assert first not in text
        assert second not in text
        assert unknown not in text
    warehouse.close()


def test_the_cli_reports_a_refused_password_as_a_configuration_error(
    role: Role, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATALAKEP_WAREHOUSE", raising=False)
    role.set_password(_password())
    wrong = _password()
    register_secret(wrong)
    url = role.url.replace(f"{role.name}@", f"{role.name}:{wrong}@")

    code = main(["history", "--warehouse", url])

    err = capsys.readouterr().err
    assert code == 2
    assert "configuration error" in err
    assert role.name in err
    assert wrong not in err
