"""Storage events as the use cases see them: which objects were created, and where.

The wire formats (S3 notifications, SNS and SQS envelopes, EventBridge) are the
AWS adapter's business (``infrastructure/aws/events.py``); what reaches the
application is one of these values, already decoded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any

from domain.errors import TerminalError


class MalformedEventError(TerminalError):
    """Not JSON, or not a shape we know: a poison message."""

    code = "malformed_event"


@dataclass(frozen=True)
class ObjectCreated:
    bucket: str
    key: str  # decoded: what S3's API expects
    size: int | None = None
    etag: str | None = None
    version_id: str | None = None
    sequencer: str | None = None
    event_name: str = "ObjectCreated:Put"
    # When S3 created the object (naive UTC), for the event-to-commit lag. Not
    # part of equality: a multipart upload's two notifications name one object.
    event_time: datetime | None = field(default=None, compare=False)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class StorageEvent:
    """What one message (or Lambda event) says: created objects, or why it is poison.

    A malformed message is a value here, not an exception, so that the adapter
    that decodes it can hand it over like any other and the use case alone
    decides its fate (left for the DLQ).
    """

    objects: tuple[ObjectCreated, ...] = ()
    ignored: tuple[str, ...] = ()  # why parts were acknowledged without work
    # Why the message could not be decoded; then ``objects`` and ``ignored`` are empty.
    malformed: str | None = None

    @property
    def uris(self) -> tuple[str, ...]:
        return tuple(o.uri for o in self.objects)


@dataclass(frozen=True)
class SourceRule:
    """An allowed bucket and key prefix (glob-free prefix match, or a glob with *)."""

    bucket: str
    prefix: str = ""

    def allows(self, bucket: str, key: str) -> bool:
        if bucket != self.bucket:
            return False
        if any(ch in self.prefix for ch in "*?["):
            return fnmatchcase(key, self.prefix)
        return key.startswith(self.folder)

    @property
    def folder(self) -> str:
        """The prefix as a folder: ``incoming`` allows ``incoming/``, never ``incoming-evil/``.

        People write a folder name; a bare string prefix would also let in every
        sibling that merely starts with the same letters.
        """
        return self.prefix if not self.prefix or self.prefix.endswith("/") else f"{self.prefix}/"


def rules_from_config(items: Sequence[Mapping[str, Any]] | None) -> tuple[SourceRule, ...]:
    return tuple(SourceRule(str(i["bucket"]), str(i.get("prefix") or "")) for i in items or ())


@dataclass(frozen=True)
class OwnOutputs:
    """Where the service writes objects of its own: rejects reports, warehouse staging.

    Reports go to the source's bucket, so the rejects prefix is matched in any
    bucket; staging names its bucket. Ingesting one of these would ingest a
    report of a report, and so on without end.
    """

    prefixes: tuple[str, ...] = ()
    staging: tuple[SourceRule, ...] = ()

    def holds(self, bucket: str, key: str) -> bool:
        return any(key.startswith(p) for p in self.prefixes if p) or any(
            rule.allows(bucket, key) for rule in self.staging if rule.prefix
        )
