"""Connection settings for server warehouses: URL, config, then Secrets Manager.

A configured password of ``SecretsManager`` means "read the secret named by
``secret_name``". The secret may be the password itself, or JSON: either
``{"password": ...}`` or the Redshift/RDS shape (username, password, host,
port, dbname), whose fields fill whatever the URL left out. Passwords never
appear in repr(), logs or error messages.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from application.ports import SecretProvider
from domain.errors import ConfigurationError, WarehouseAuthenticationError
from infrastructure.warehouse.urls import WarehouseUrl

log = logging.getLogger(__name__)
C = TypeVar("C")

SECRETS_MANAGER = "SecretsManager"


@dataclass(frozen=True)
class Credentials:
    host: str
    port: int
    database: str
    user: str
    password: str | None = field(default=None, repr=False)


class CredentialSource:
    """The warehouse's credentials as they are now: read again when a secret rotates.

    :meth:`current` is asked at every new connection (the secret provider's cache
    decides whether that reads the secret), :meth:`refreshed` after the server
    refused the password. ``first`` is what it said when built: host, port,
    database and user for messages.
    """

    def __init__(self, resolve: Callable[[bool], Credentials]) -> None:
        self._resolve = resolve
        self.first = resolve(False)
        # The first connection uses what was just read, not a second read of it.
        self._unused: Credentials | None = self.first

    @classmethod
    def given(cls, credentials: Credentials | CredentialSource) -> CredentialSource:
        """``credentials`` as a source; fixed ones never change."""
        if isinstance(credentials, CredentialSource):
            return credentials
        return cls(lambda fresh: credentials)

    @classmethod
    def configured(
        cls,
        url: WarehouseUrl,
        options: Mapping[str, Any] | None,
        secrets: SecretProvider | None,
        default_port: int,
    ) -> CredentialSource:
        """From the URL, the config and, for ``password: SecretsManager``, the secret."""
        given = dict(options or {})
        return cls(
            lambda fresh: resolve_credentials(url, given, secrets, default_port, fresh=fresh)
        )

    def current(self) -> Credentials:
        unused, self._unused = self._unused, None
        return unused if unused is not None else self._resolve(False)

    def refreshed(self) -> Credentials:
        return self._resolve(True)


def connect_rotating(
    source: CredentialSource,
    connect: Callable[[Credentials], C],
    refused: Callable[[BaseException], bool],
    describe: Callable[[BaseException, Credentials], str],
) -> C:
    """``connect`` with the current credentials; on a refused password, once more afresh.

    A password rotated since the secret was cached fails once, then works with the
    secret read again. When that fails too, the failure is WarehouseAuthenticationError:
    transient, as a rotation may be half done. Every failure is logged with the user
    and host; ``describe`` must leave the password out.
    """
    credentials = source.current()
    try:
        return connect(credentials)
    except Exception as exc:
        if not refused(exc):
            raise
        log.warning(
            "warehouse %s:%s refused user %r: %s; reading the credentials again",
            credentials.host,
            credentials.port,
            credentials.user,
            describe(exc, credentials),
        )
    credentials = source.refreshed()
    try:
        return connect(credentials)
    except Exception as exc:
        if not refused(exc):
            raise
        why = describe(exc, credentials)
        log.error(
            "warehouse %s:%s refused user %r again after the credentials were read again: %s",
            credentials.host,
            credentials.port,
            credentials.user,
            why,
        )
        raise WarehouseAuthenticationError(
            f"warehouse {credentials.host}:{credentials.port}/{credentials.database} refused "
            f"user {credentials.user!r}, also after the credentials were read again: {why}",
            host=credentials.host,
            port=credentials.port,
            user=credentials.user,
        ) from None


def resolve_credentials(
    url: WarehouseUrl,
    options: Mapping[str, Any] | None,
    secrets: SecretProvider | None,
    default_port: int,
    *,
    fresh: bool = False,
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
        secret = _parse_secret(secrets.get(str(name), fresh=fresh))
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
