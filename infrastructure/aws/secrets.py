"""Secrets Manager behind the SecretProvider port."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from domain.errors import ConfigurationError, TerminalError, TransientError

_MISSING = ("ResourceNotFoundException",)
_DENIED = ("AccessDeniedException", "DecryptionFailure", "InvalidRequestException")


class SecretsManagerSecretProvider:
    """Reads a secret, and again once ``ttl_seconds`` have passed or when asked ``fresh``.

    Caching matters in Lambda: a warm invocation must not pay a Secrets Manager
    round trip. Expiry matters for rotation: a long-lived worker must see the new
    password without a restart. Values are never logged; errors name the secret,
    not its value. ``ttl_seconds`` comes from ``warehouse.secret_ttl_seconds``.
    """

    def __init__(
        self,
        client: Any | None = None,
        *,
        ttl_seconds: float | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._ttl = ttl_seconds
        self._clock = clock
        self._cache: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def get(self, name: str, *, fresh: bool = False) -> str:
        ttl = self._ttl
        if ttl is None or ttl < 0:
            raise ConfigurationError(
                f"warehouse.secret_ttl_seconds must be a number of seconds >= 0, not {ttl!r}"
            )
        now = self._clock()
        with self._lock:
            cached = self._cache.get(name)
            if cached is not None and not fresh and now - cached[1] < ttl:
                return cached[0]
        value = self._fetch(name)
        with self._lock:
            self._cache[name] = (value, now)
        return value

    def _fetch(self, name: str) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        client = self._client
        if client is None:
            from infrastructure.aws.clients import aws_client

            client = self._client = aws_client("secretsmanager")
        try:
            response = client.get_secret_value(SecretId=name)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in _MISSING:
                raise TerminalError(
                    f"secret {name!r} does not exist", code="secret_not_found"
                ) from None
            if code in _DENIED:
                raise TerminalError(
                    f"secret {name!r} cannot be read ({code})", code="secret_denied"
                ) from None
            raise TransientError(f"secret {name!r}: Secrets Manager said {code}") from None
        except BotoCoreError as error:
            raise TransientError(
                f"secret {name!r}: Secrets Manager unreachable ({type(error).__name__})"
            ) from None
        if "SecretString" in response:
            return str(response["SecretString"])
        return bytes(response["SecretBinary"]).decode()
