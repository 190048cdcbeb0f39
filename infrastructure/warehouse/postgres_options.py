"""The PostgreSQL adapter's settings, read and checked once from the warehouse options."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from domain.errors import ConfigurationError
from infrastructure.warehouse.retry import RetryPolicy

SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


@dataclass(frozen=True)
class PostgresOptions:
    sslmode: str = "prefer"
    connect_timeout: int = 10
    application_name: str = "datalakep"
    retry_attempts: int = 4
    retry_base_delay_s: float = 0.2
    retry_max_delay_s: float = 5.0

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any] | None) -> PostgresOptions:
        """The known keys of ``options`` (the YAML ``warehouse`` section); others are ignored."""
        given = dict(options or {})
        default = cls()
        try:
            made = cls(
                sslmode=str(given.get("sslmode", default.sslmode)),
                connect_timeout=int(given.get("connect_timeout", default.connect_timeout)),
                application_name=str(given.get("application_name", default.application_name)),
                retry_attempts=int(given.get("retry_attempts", default.retry_attempts)),
                retry_base_delay_s=float(
                    given.get("retry_base_delay_s", default.retry_base_delay_s)
                ),
                retry_max_delay_s=float(given.get("retry_max_delay_s", default.retry_max_delay_s)),
            )
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"warehouse options: {exc}") from None
        if made.sslmode not in SSL_MODES:
            raise ConfigurationError(
                f"warehouse.sslmode {made.sslmode!r}: expected one of {', '.join(SSL_MODES)}"
            )
        if made.retry_attempts < 1 or made.connect_timeout < 1:
            raise ConfigurationError("warehouse.retry_attempts and connect_timeout must be >= 1")
        if made.retry_base_delay_s < 0 or made.retry_max_delay_s < 0:
            raise ConfigurationError("warehouse retry delays must be >= 0")
        return made

    @property
    def retry(self) -> RetryPolicy:
        return RetryPolicy(self.retry_attempts, self.retry_base_delay_s, self.retry_max_delay_s)
