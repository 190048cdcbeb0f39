"""The one way the readers report a file they cannot read."""

from __future__ import annotations

from typing import Any

from domain.errors import UnreadableFileError
from domain.source import ObjectInfo


def unreadable(
    info: ObjectInfo, code: str, reason: str, *, sheet: str | None = None, **details: Any
) -> UnreadableFileError:
    """An error whose message starts with the file's name, as operators search logs by it."""
    where = info.uri if sheet is None else f"{info.uri} [sheet {sheet}]"
    if sheet is not None:
        details["sheet"] = sheet
    return UnreadableFileError(f"{where}: {reason}", code=code, source=info.uri, **details)
