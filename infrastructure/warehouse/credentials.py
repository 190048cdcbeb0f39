"""Connection settings for server warehouses: URL, config, then Secrets Manager.

A configured password of ``SecretsManager`` means "read the secret named by
``secret_name``". The secret may be the password itself, or JSON: either
``{"password": ...}`` or the Redshift/RDS shape (username, password, host,
port, dbname), whose fields fill whatever the URL left out. Passwords never
appear in repr(), logs or error messages.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from application.ports import SecretProvider
from domain.errors import ConfigurationError
from infrastructure.warehouse.urls import WarehouseUrl

SECRETS_MANAGER = "SecretsManager"


@dataclass(frozen=True)
class Credentials:
    host: str
    port: int
    database: str
    user: str
    password: str | None = field(default=None, repr=False)


def resolve_credentials(
    url: WarehouseUrl,
    options: Mapping[str, Any] | None,
    secrets: SecretProvider | None,
    default_port: int,
) -> Credentials:
    options = options or {}
    secret: dict[str, Any] = {}
    password = url.password
    configured = options.get("password")
    if password is None and configured == SECRETS_MANAGER:
        name = options.get("secret_name")
        if not name:
            raise ConfigurationError(
                "warehouse.password is SecretsManager but warehouse.secret_name is not set"
            )
        if secrets is None:
            raise ConfigurationError(
                f"warehouse.password is SecretsManager but no secret provider is wired "
                f"(secret {name!r})"
            )
        secret = _parse_secret(secrets.get(str(name)))
        password = secret.get("password")
    elif password is None and configured is not None:
        password = str(configured)
    port = url.port or _int(secret.get("port")) or _int(options.get("port")) or default_port
    return Credentials(
        host=url.host or str(secret.get("host") or options.get("host") or ""),
        port=port,
        database=url.database or str(secret.get("dbname") or options.get("database") or ""),
        user=url.user or str(secret.get("username") or options.get("user") or ""),
        password=None if password is None else str(password),
    )


def _parse_secret(value: str) -> dict[str, Any]:
    text = value.strip()
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            # Never echo the secret: it may be a password that starts with '{'.
            return {"password": value}
        if isinstance(parsed, dict):
            return parsed
    return {"password": value}


def _int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigurationError("warehouse port must be a number") from None
