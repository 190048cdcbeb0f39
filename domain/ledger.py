"""The load ledger: one row per (file version, table) attempt, the audit trail
that makes loads idempotent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from fnmatch import fnmatchcase


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
    # Where the rejects report on this attempt's file is, when it rejected anything.
    rejects_report: str | None = None


@dataclass(frozen=True)
class LedgerFilter:
    """Which ledger rows ``history`` returns; every field set must match.

    ``source`` is a glob on the source URI: ``*`` any run of characters, ``?``
    one character, everything else literal (``[`` included) and case-sensitive,
    as URIs are.
    """

    source: str | None = None
    status: LoadStatus | None = None
    table: str | None = None
    since: datetime | None = None  # finished at or after this moment (naive UTC)
    load_id: str | None = None

    def matches(self, entry: LedgerEntry) -> bool:
        return (
            (self.source is None or fnmatchcase(entry.source_uri, self.source.replace("[", "[[]")))
            and (self.status is None or entry.status is self.status)
            and (self.table is None or entry.table == self.table)
            and (self.since is None or entry.finished_at >= self.since)
            and (self.load_id is None or entry.load_id == self.load_id)
        )
