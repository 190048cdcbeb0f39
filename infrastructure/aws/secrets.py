"""Secrets Manager behind the SecretProvider port."""

from __future__ import annotations

import threading
from typing import Any

from domain.errors import TerminalError, TransientError

_MISSING = ("ResourceNotFoundException",)
_DENIED = ("AccessDeniedException", "DecryptionFailure", "InvalidRequestException")


class SecretsManagerSecretProvider:
    """Reads a secret once per process.

    Caching matters in Lambda: a warm invocation must not pay a Secrets Manager
    round trip. Values are never logged; errors name the secret, not its value.
    """

    def __init__(self, client: Any | None = None) -> None:
        self._client = client
        self._cache: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> str:
        with self._lock:
            if name in self._cache:
                return self._cache[name]
        value = self._fetch(name)
        with self._lock:
            self._cache[name] = value
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
