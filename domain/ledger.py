"""The load ledger: one row per (file version, table) attempt, the audit trail
that makes loads idempotent."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from domain.clock import utc_naive
from domain.types import MAX_VARCHAR_BYTES


class LoadStatus(StrEnum):
    LOADED = "loaded"
    SKIPPED = "skipped"  # this file version was already loaded into this table
    REJECTED = "rejected"  # the input was refused as a whole (unroutable, too many rejects)
    FAILED = "failed"  # the service could not load it (schema drift, unreadable file)


@dataclass(frozen=True)
class LedgerEntry:
    load_id: str
    source_uri: str
    source_version: str
    table: str | None
    sheets: tuple[str, ...]
    status: LoadStatus
    rows_read: int
    rows_loaded: int
    rows_rejected: int
    started_at: datetime
    finished_at: datetime
    error: str | None = None

    def normalised(self) -> LedgerEntry:
        """The entry as every ledger stores it and gives it back."""
        return replace(
            self,
            status=LoadStatus(self.status),
            sheets=tuple(self.sheets),
            started_at=utc_naive(self.started_at),
            finished_at=utc_naive(self.finished_at),
            error=_fit(self.error),
        )


def _fit(text: str | None, limit: int = MAX_VARCHAR_BYTES) -> str | None:
    # Redshift counts VARCHAR lengths in bytes; cut on a character boundary.
    if text is None:
        return None
    return text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")
