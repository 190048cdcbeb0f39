"""Identity of one version of one source file."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath

from domain.ledger import SourceOrder, sequencer_order


@dataclass(frozen=True)
class ObjectInfo:
    """What a FileSource knows about an object before reading it."""

    uri: str
    size: int
    # S3 version id or ETag; None where the source has neither (local files),
    # in which case the content's sha256 becomes the version.
    version: str | None = None
    sequencer: str | None = None
    # The content's ETag, unquoted, where the source has one (S3). In a versioned
    # bucket it differs from ``version``, which is then the VersionId.
    etag: str | None = None
    # Written by datalakeP itself (a rejects report): never to be ingested.
    datalakep_output: bool = False
    # When this version was written (S3's LastModified), naive UTC, where known.
    last_modified: datetime | None = None

    @property
    def name(self) -> str:
        return PurePosixPath(self.uri.split("://", 1)[-1]).name

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.name).suffix.lower()

    @property
    def order(self) -> SourceOrder:
        """Where this version stands among the source's versions."""
        return SourceOrder(sequencer_order(self.sequencer), self.last_modified)
