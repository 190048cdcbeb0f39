"""Warehouse URLs, as given by --warehouse, DATALAKEP_WAREHOUSE or config."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

from domain.errors import ConfigurationError

SCHEMES = ("duckdb", "postgresql", "redshift")


@dataclass(frozen=True)
class WarehouseUrl:
    scheme: str
    path: str = ""  # DuckDB: the database file, or ":memory:"
    host: str = ""
    port: int | None = None
    user: str = ""
    password: str | None = field(default=None, repr=False)
    database: str = ""
    params: dict[str, str] = field(default_factory=dict)

    def redacted(self) -> str:
        """The URL for logs and messages: never the password."""
        if self.scheme == "duckdb":
            return f"duckdb:///{self.path}"
        auth = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        return f"{self.scheme}://{auth}{self.host}{port}/{self.database}"


def parse_warehouse_url(url: str) -> WarehouseUrl:
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if scheme == "postgres":
        scheme = "postgresql"
    if not sep or scheme not in SCHEMES:
        raise ConfigurationError(
            f"warehouse URL {_safe(url)!r}: expected one of "
            "duckdb:///path.duckdb, postgresql://user@host:port/db, redshift://user@host:port/db",
            url=_safe(url),
        )
    if scheme == "duckdb":
        # duckdb:///relative.duckdb and duckdb:////absolute.duckdb, as SQLAlchemy spells them.
        if not rest.startswith("/") or rest == "/":
            raise ConfigurationError(
                f"warehouse URL {_safe(url)!r}: write duckdb:///relative/path.duckdb, "
                "duckdb:////absolute/path.duckdb or duckdb:///:memory:",
                url=_safe(url),
            )
        return WarehouseUrl(scheme, path=unquote(rest[1:]))
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise ConfigurationError(
            f"warehouse URL {_safe(url)!r}: bad port", url=_safe(url)
        ) from None
    if not parts.hostname:
        raise ConfigurationError(f"warehouse URL {_safe(url)!r}: no host", url=_safe(url))
    return WarehouseUrl(
        scheme,
        host=parts.hostname,
        port=port,
        user=unquote(parts.username or ""),
        password=unquote(parts.password) if parts.password is not None else None,
        database=unquote(parts.path.lstrip("/")),
        params=dict(parse_qsl(parts.query)),
    )


_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:?/*")


def _safe(url: str) -> str:
    """The URL for a message, any password dropped, however malformed the URL is.

    Not urlsplit: ``postgresql:/u:pw@h`` or ``postgresql//u:pw@h`` have no netloc
    for it, and their password would go through. Whatever stands between the
    scheme and the last ``@`` is user information; past its first ``:`` it is
    the password.
    """
    at = url.rfind("@")
    if at < 0:
        return url
    start = _SCHEME.match(url)
    begin = start.end() if start else 0
    user, colon, _password = url[begin:at].partition(":")
    return f"{url[:begin]}{user}{':***' if colon else ''}{url[at:]}"
