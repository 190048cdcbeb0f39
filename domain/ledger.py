"""The load ledger: one row per (file version, table) attempt, the audit trail
that makes loads idempotent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


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
