"""Fields that every log line of the current file or message should carry.

A worker thread handles one message at a time and the Lambda one record at a
time, so "the current message" and "the current file" are a dynamic scope, not
an argument: binding them here spares every call below from threading a
``message_id`` or ``source`` through signatures that have no other use for it.
A contextvar, not a global, so concurrent threads never see each other's fields.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_fields: ContextVar[Mapping[str, Any]] = ContextVar("datalakep_log_fields", default=_EMPTY)


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Add ``fields`` (None values left out) to every log record inside the block."""
    merged = {**_fields.get(), **{k: v for k, v in fields.items() if v is not None}}
    token = _fields.set(MappingProxyType(merged))
    try:
        yield
    finally:
        _fields.reset(token)


def current() -> Mapping[str, Any]:
    """The fields bound by the enclosing ``bound`` blocks, innermost winning."""
    return _fields.get()
