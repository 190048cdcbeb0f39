"""Which redshift_connector errors a retry can cure, and how the rest are reported.

The driver raises ``ProgrammingError({"S": severity, "C": sqlstate, "M": message,
…})`` for every server error, so the class alone says little: the SQLSTATE and
message decide. The driver is imported lazily, as by the adapter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Redshift reports a serialisation conflict as "1023 ... Serializable isolation
# violation" (SQLSTATE XX000 on older clusters); PostgreSQL as 40001.
_SERIALIZATION_STATES = frozenset({"40001", "40P01"})
_SERIALIZATION_TEXT = "serializable isolation violation"
# Connection exceptions, and the server shutting the session down.
_DROPPED_STATE_PREFIXES = ("08", "57P")
_AUTH_STATE_PREFIX = "28"


def server_fields(exc: BaseException) -> Mapping[str, Any]:
    first = exc.args[0] if exc.args else None
    return first if isinstance(first, Mapping) else {}


def sqlstate(exc: BaseException) -> str:
    return str(server_fields(exc).get("C", ""))


def describe(exc: BaseException) -> str:
    """The server's message and SQLSTATE, or the driver's text: never parameters."""
    fields = server_fields(exc)
    if not fields:
        return f"{type(exc).__name__}: {exc}"
    detail = f" ({fields['D']})" if fields.get("D") else ""
    return f"{fields.get('M', '')}{detail} [SQLSTATE {fields.get('C', '?')}]"


def is_serialization_failure(exc: BaseException) -> bool:
    fields = server_fields(exc)
    text = f"{fields.get('M', '')} {fields.get('D', '')}" if fields else str(exc)
    return (
        sqlstate(exc) in _SERIALIZATION_STATES
        or _SERIALIZATION_TEXT in text.lower()
        or text.lstrip().startswith("1023")
    )


def is_dropped_connection(exc: BaseException) -> bool:
    """The session is gone: reconnect before the next attempt."""
    from redshift_connector.error import InterfaceError, OperationalError

    if isinstance(exc, OSError):  # socket errors, broken pipes, timeouts
        return True
    if isinstance(exc, InterfaceError | OperationalError):
        return not sqlstate(exc).startswith(_AUTH_STATE_PREFIX)
    fields = server_fields(exc)
    return str(fields.get("S", "")).upper() in ("FATAL", "PANIC") or sqlstate(exc).startswith(
        _DROPPED_STATE_PREFIXES
    )


def is_authentication_failure(exc: BaseException) -> bool:
    return sqlstate(exc).startswith(_AUTH_STATE_PREFIX)


def is_driver_error(exc: BaseException) -> bool:
    from redshift_connector.error import Error

    return isinstance(exc, Error | OSError)
