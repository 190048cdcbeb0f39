"""The one way the readers report a file they cannot read."""

from __future__ import annotations

from typing import Any

from domain.errors import TerminalError, UnreadableFileError
from domain.source import ObjectInfo


def unreadable(
    info: ObjectInfo, code: str, reason: str, *, sheet: str | None = None, **details: Any
) -> UnreadableFileError:
    """An error whose message starts with the file's name, as operators search logs by it."""
    where = info.uri if sheet is None else f"{info.uri} [sheet {sheet}]"
    if sheet is not None:
        details["sheet"] = sheet
    return UnreadableFileError(f"{where}: {reason}", code=code, source=info.uri, **details)


def parser_refusal(info: ObjectInfo, sheet: str | None, exc: BaseException) -> UnreadableFileError:
    """A parser's own failure on the file: encrypted when it says so, else corrupt."""
    detail = " ".join(str(exc).split())[:500] or type(exc).__name__
    if "password" in detail.lower() or "encrypt" in detail.lower():
        return unreadable(
            info,
            "encrypted_workbook",
            f"the workbook is password-protected (encrypted): {detail}",
            sheet=sheet,
        )
    return unreadable(info, "corrupt_workbook", f"cannot read the workbook: {detail}", sheet=sheet)


def no_such_sheet(info: ObjectInfo, sheet: str) -> TerminalError:
    return TerminalError(
        f"{info.uri}: no sheet {sheet!r}", code="no_such_sheet", source=info.uri, sheet=sheet
    )


def check_sheet_count(info: ObjectInfo, count: int, limit: int) -> None:
    if count > limit:
        raise unreadable(
            info,
            "too_many_sheets",
            f"the workbook has {count} sheets, over the limit of {limit}",
            sheets=count,
            limit=limit,
        )


def check_sheet_height(info: ObjectInfo, sheet: str, height: int, limit: int) -> None:
    if height > limit:
        raise unreadable(
            info,
            "too_many_rows",
            f"the sheet has {height:,} rows, over the limit of {limit:,}",
            sheet=sheet,
            rows=height,
            limit=limit,
        )
