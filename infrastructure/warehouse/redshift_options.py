"""The Redshift adapter's settings, read and checked once from the warehouse options."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from domain.errors import ConfigurationError
from infrastructure.warehouse.credentials import Credentials
from infrastructure.warehouse.retry import RetryPolicy
from infrastructure.warehouse.sql import redshift as redshift_sql

DEFAULT_STAGING_PREFIX = "datalakep-staging/"
SSLMODES = ("verify-ca", "verify-full")
# Passed to redshift_connector.connect as they are when ``iam`` is on.
IAM_KEYS = (
    "cluster_identifier",
    "db_user",
    "region",
    "is_serverless",
    "serverless_work_group",
    "serverless_acct_id",
    "profile",
    "db_groups",
    "auto_create",
)
_IAM_BOOLEANS = ("is_serverless", "auto_create")


@dataclass(frozen=True)
class Staging:
    bucket: str
    prefix: str
    iam_role: str


@dataclass(frozen=True)
class RedshiftOptions:
    sslmode: str = "verify-full"
    ssl: bool = True
    iam: bool = False
    iam_settings: Mapping[str, Any] = field(default_factory=dict)
    timeout: int | None = None
    application_name: str = "datalakep"
    table_options: bool = True
    copy_threshold_rows: int = 100_000
    staging: Staging | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any] | None) -> RedshiftOptions:
        """The known keys of ``options`` (the config's ``warehouse`` section, with the
        URL's query parameters as strings); other keys are left to other adapters."""
        o = dict(options or {})
        sslmode = str(o.get("sslmode", "verify-full"))
        if sslmode not in SSLMODES:
            raise ConfigurationError(f"redshift warehouse: sslmode must be one of {SSLMODES}")
        retry = RetryPolicy(
            attempts=_int(o, "retry_attempts", 4, minimum=1),
            base_delay_s=_float(o, "retry_base_delay_s", 0.5),
            max_delay_s=_float(o, "retry_max_delay_s", 8.0),
        )
        timeout = o.get("timeout")
        return cls(
            sslmode=sslmode,
            ssl=_bool(o, "ssl", True),
            iam=_bool(o, "iam", False),
            iam_settings=_iam_settings(o),
            timeout=None if timeout is None else _int(o, "timeout", 0, minimum=1),
            application_name=str(o.get("application_name") or "datalakep"),
            table_options=_bool(o, "table_options", True),
            copy_threshold_rows=_int(o, "copy_threshold_rows", 100_000, minimum=1),
            staging=_staging(o.get("staging")),
            retry=retry,
        )

    def connect_kwargs(self, credentials: Credentials) -> dict[str, Any]:
        """Keyword arguments for redshift_connector.connect; they hold the password."""
        kwargs: dict[str, Any] = {
            "host": credentials.host,
            "port": credentials.port,
            "database": credentials.database,
            "user": credentials.user,
            "ssl": self.ssl,
            "sslmode": self.sslmode,
            "timeout": self.timeout,
            "application_name": self.application_name,
            "tcp_keepalive": True,
        }
        if credentials.password is not None:
            kwargs["password"] = credentials.password
        if self.iam:
            kwargs["iam"] = True
            kwargs.update(self.iam_settings)
        return {k: v for k, v in kwargs.items() if v is not None}


def _iam_settings(o: Mapping[str, Any]) -> dict[str, Any]:
    settings = {k: o[k] for k in IAM_KEYS if o.get(k) is not None}
    for key in _IAM_BOOLEANS:
        if key in settings:
            settings[key] = _bool(o, key, False)
    if isinstance(settings.get("db_groups"), str):  # from a URL: comma-separated
        settings["db_groups"] = [g for g in settings["db_groups"].split(",") if g]
    return settings


def _staging(raw: Any) -> Staging | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or not raw.get("bucket") or not raw.get("iam_role"):
        raise ConfigurationError("redshift warehouse: staging needs a bucket and an iam_role")
    unknown = sorted(set(raw) - {"bucket", "prefix", "iam_role"})
    if unknown:
        raise ConfigurationError(f"redshift warehouse: unknown staging options {unknown}")
    prefix = str(raw.get("prefix") or DEFAULT_STAGING_PREFIX)
    redshift_sql.literal(prefix)  # it ends up inside COPY's string: refuse what cannot
    return Staging(
        bucket=redshift_sql.check_bucket(str(raw["bucket"])),
        prefix=prefix.lstrip("/"),
        iam_role=redshift_sql.check_iam_role(str(raw["iam_role"])),
    )


def _bool(o: Mapping[str, Any], key: str, default: bool) -> bool:
    value = o.get(key, default)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"  # from a URL query string
    if not isinstance(value, bool):
        raise ConfigurationError(f"redshift warehouse: {key} must be true or false")
    return value


def _int(o: Mapping[str, Any], key: str, default: int, minimum: int) -> int:
    value = o.get(key, default)
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = minimum - 1
    if isinstance(value, bool) or number < minimum:
        raise ConfigurationError(f"redshift warehouse: {key} must be an integer >= {minimum}")
    return number


def _float(o: Mapping[str, Any], key: str, default: float) -> float:
    value = o.get(key, default)
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if isinstance(value, bool) or number < 0:
        raise ConfigurationError(f"redshift warehouse: {key} must be a number >= 0")
    return number
