"""The load ledger: one row per (file version, table) attempt, the audit trail
that makes loads idempotent."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from fnmatch import fnmatchcase

from domain.clock import utc_naive
from domain.types import MAX_VARCHAR_BYTES


class LoadStatus(StrEnum):
    LOADED = "loaded"
    SKIPPED = "skipped"  # this file version was already loaded into this table
    REJECTED = "rejected"  # the input was refused as a whole (unroutable, too many rejects)
    FAILED = "failed"  # the service could not load it (schema drift, unreadable file)
    STALE = "stale"  # a newer version of the source was committed first: nothing loaded


# A sequencer is hex of varying length; padded to this width, text order is S3's order.
SEQUENCER_WIDTH = 64


def sequencer_order(raw: str | None) -> str | None:
    """An S3 event's sequencer in a form whose text order is the events' order.

    S3's rule: left-pad the shorter with zeros, then compare. Anything that is not
    a sequencer reads as none, so it never decides an order.
    """
    if raw is None:
        return None
    text = raw.strip().upper()
    if not text or len(text) > SEQUENCER_WIDTH or any(c not in "0123456789ABCDEF" for c in text):
        return None
    return text.rjust(SEQUENCER_WIDTH, "0")


@dataclass(frozen=True)
class SourceOrder:
    """Where one version of a source stands among that source's versions, as S3 says.

    The event's sequencer orders two versions exactly; without one on both sides,
    LastModified does, to its resolution (1 s in a HEAD response). When neither
    is known on both sides, no version is newer than the other.
    """

    sequencer: str | None = None  # as sequencer_order() gives it
    modified_at: datetime | None = None  # naive UTC

    def normalised(self) -> SourceOrder:
        """As every ledger stores it: the sequencer comparable as text, the time naive UTC."""
        modified = None if self.modified_at is None else utc_naive(self.modified_at)
        return SourceOrder(sequencer_order(self.sequencer), modified)

    def is_newer_than(self, other: SourceOrder) -> bool:
        if self.sequencer is not None and other.sequencer is not None:
            return self.sequencer > other.sequencer
        if self.modified_at is not None and other.modified_at is not None:
            return self.modified_at > other.modified_at
        return False


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
    finished_at: datetime  # when the attempt ended: for a load, its commit
    error: str | None = None
    source_order: SourceOrder = field(default_factory=SourceOrder)
    # Where the rejects report on this attempt's file is, when it rejected anything.
    rejects_report: str | None = None

    def normalised(self) -> LedgerEntry:
        """The entry as every ledger stores it and gives it back."""
        return replace(
            self,
            status=LoadStatus(self.status),
            sheets=tuple(self.sheets),
            started_at=utc_naive(self.started_at),
            finished_at=utc_naive(self.finished_at),
            error=_fit(self.error),
            source_order=self.source_order.normalised(),
        )


def _fit(text: str | None, limit: int = MAX_VARCHAR_BYTES) -> str | None:
    if text is None:
        return None
    # PostgreSQL's text cannot hold NUL, and a message quoting a cell or sheet name
    # may: written as \x00, the refusal is recorded instead of failing the workbook.
    text = text.replace("\x00", "\\x00")
    # Redshift counts VARCHAR lengths in bytes; cut on a character boundary.
    return text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")


@dataclass(frozen=True)
class CommittedLoad:
    """A ``loaded`` ledger row of a source into a table, as far as ordering needs it."""

    load_id: str
    source_version: str
    order: SourceOrder


@dataclass(frozen=True)
class Verdict:
    status: LoadStatus  # LOADED (already, by this very load), SKIPPED or STALE
    load_id: str  # the load that holds the rows: this one, the same version's, or the newer


def decide_load(
    load_id: str, version: str, order: SourceOrder, committed: Iterable[CommittedLoad]
) -> Verdict | None:
    """What the committed loads of a source into a table leave for a new one; None: load it.

    The same version committed is a skip (or, under this very load id, its own
    COMMIT that went through before the connection dropped). A newer version
    committed makes this one stale: loading it would put older rows over newer.
    Run under the lock that serialises the loads of the source into the table,
    in the transaction of the merge, so nothing can commit in between.
    """
    loads = list(committed)
    for load in loads:
        if load.source_version == version:
            status = LoadStatus.LOADED if load.load_id == load_id else LoadStatus.SKIPPED
            return Verdict(status, load.load_id)
    mine = order.normalised()
    newer = [c for c in loads if c.order.normalised().is_newer_than(mine)]
    if newer:
        return Verdict(LoadStatus.STALE, newer[-1].load_id)
    return None


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
