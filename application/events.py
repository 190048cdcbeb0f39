"""Object-created notifications in every shape AWS delivers them.

S3 can notify directly (Lambda), through SQS, through SNS (raw or enveloped,
then usually SQS), or through EventBridge. All of them reduce to
:class:`ObjectCreated`. Parsing is plain JSON work: no boto3 here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import unquote_plus

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

    def as_notification(self) -> str:
        """The event as an S3 notification body, for handing it to another queue."""
        obj: dict[str, Any] = {"key": _encode_key(self.key)}
        for name, value in (
            ("size", self.size),
            ("eTag", self.etag),
            ("versionId", self.version_id),
            ("sequencer", self.sequencer),
        ):
            if value is not None:
                obj[name] = value
        record: dict[str, Any] = {
            "eventSource": "aws:s3",
            "eventName": self.event_name,
            "s3": {"bucket": {"name": self.bucket}, "object": obj},
        }
        if self.event_time is not None:
            record["eventTime"] = self.event_time.isoformat(timespec="milliseconds") + "Z"
        return json.dumps({"Records": [record]})


@dataclass(frozen=True)
class ParsedEvent:
    objects: tuple[ObjectCreated, ...]
    ignored: tuple[str, ...] = ()  # why parts were acknowledged without work


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


def parse_event(payload: str | bytes | Mapping[str, Any]) -> ParsedEvent:
    """Every created object named by ``payload``; raises MalformedEventError otherwise."""
    objects: list[ObjectCreated] = []
    ignored: list[str] = []
    _walk(_load(payload), objects, ignored, depth=0)
    unique = tuple(dict.fromkeys(objects))  # multipart uploads can notify twice
    return ParsedEvent(unique, tuple(ignored))


def uris_named(payload: str | bytes | Mapping[str, Any]) -> tuple[str, ...]:
    """The objects a message names, for log lines about the message; () if it is malformed."""
    try:
        return tuple(o.uri for o in parse_event(payload).objects)
    except MalformedEventError:
        return ()


def _load(payload: str | bytes | Mapping[str, Any]) -> Any:
    if isinstance(payload, Mapping):
        return payload
    try:
        return json.loads(payload)
    except (ValueError, TypeError):
        preview = (payload[:80] if isinstance(payload, str) else repr(payload[:80])).strip()
        raise MalformedEventError(f"message is not JSON: {preview!r}") from None
    except RecursionError:
        # Arrays nested thousands deep: the decoder recurses once per level.
        raise MalformedEventError("message nests JSON deeper than the decoder allows") from None


def _walk(doc: Any, objects: list[ObjectCreated], ignored: list[str], depth: int) -> None:
    if depth > 4:
        raise MalformedEventError("event nests envelopes more than 4 deep")
    if not isinstance(doc, Mapping):
        raise MalformedEventError(f"event is a JSON {type(doc).__name__}, not an object")
    if doc.get("Event") == "s3:TestEvent":
        ignored.append(f"s3:TestEvent for bucket {doc.get('Bucket')}")
        return
    if doc.get("Type") == "Notification" and "Message" in doc:  # SNS envelope
        _walk(_load(_text(doc["Message"])), objects, ignored, depth + 1)
        return
    if doc.get("source") == "aws.s3" and "detail-type" in doc:
        _eventbridge(doc, objects, ignored)
        return
    records = doc.get("Records")
    if not isinstance(records, list):
        raise MalformedEventError(f"unknown event shape with keys {sorted(doc)[:8]}")
    for record in records:
        if not isinstance(record, Mapping):
            raise MalformedEventError("a record is not a JSON object")
        source = record.get("eventSource") or record.get("EventSource")
        if source == "aws:s3":
            _s3_record(record, objects, ignored)
        elif source == "aws:sqs":
            _walk(_load(_text(record.get("body"))), objects, ignored, depth + 1)
        elif source == "aws:sns":
            sns = record.get("Sns")
            message = sns.get("Message") if isinstance(sns, Mapping) else None
            _walk(_load(_text(message)), objects, ignored, depth + 1)
        else:
            raise MalformedEventError(f"record from unknown source {source!r}")


def _s3_record(record: Mapping[str, Any], objects: list[ObjectCreated], ignored: list[str]) -> None:
    name = str(record.get("eventName", ""))
    try:
        s3 = record["s3"]
        bucket = str(s3["bucket"]["name"])
        obj = s3["object"]
        raw_key = str(obj["key"])
    except (KeyError, TypeError):
        raise MalformedEventError("S3 record without s3.bucket.name and s3.object.key") from None
    # S3 notifications URL-encode keys: '+' is a space, %XX an escaped byte.
    key = unquote_plus(raw_key)
    if not name.startswith("ObjectCreated:"):
        ignored.append(f"{name or 'unnamed event'} for s3://{bucket}/{key}")
        return
    objects.append(
        ObjectCreated(
            bucket=bucket,
            key=key,
            size=_int(obj.get("size")),
            etag=_etag(obj.get("eTag")),
            version_id=_opt(obj.get("versionId")),
            sequencer=_opt(obj.get("sequencer")),
            event_name=name,
            event_time=_time(record.get("eventTime")),
        )
    )


def _eventbridge(doc: Mapping[str, Any], objects: list[ObjectCreated], ignored: list[str]) -> None:
    kind = str(doc.get("detail-type"))
    detail = doc.get("detail")
    try:
        bucket = str(detail["bucket"]["name"])  # type: ignore[index]
        obj = detail["object"]  # type: ignore[index]
        key = str(obj["key"])
    except (KeyError, TypeError):
        raise MalformedEventError("EventBridge S3 event without bucket and object key") from None
    if kind != "Object Created":
        ignored.append(f"{kind} for s3://{bucket}/{key}")
        return
    # EventBridge carries the key as stored, not URL-encoded.
    objects.append(
        ObjectCreated(
            bucket=bucket,
            key=key,
            size=_int(obj.get("size")),
            etag=_etag(obj.get("etag")),
            version_id=_opt(obj.get("version-id")),
            sequencer=_opt(obj.get("sequencer")),
            event_name="ObjectCreated:" + str(detail.get("reason", "PutObject")),  # type: ignore[union-attr]
            event_time=_time(doc.get("time")),
        )
    )


def _text(value: Any) -> str | Mapping[str, Any]:
    if isinstance(value, str | Mapping):
        return value
    raise MalformedEventError("envelope without a message body")


def _int(value: Any) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: 1e999 parses as inf
        raise MalformedEventError(f"object size {str(value)[:40]!r} is not a number") from None
    if number < 0 or (isinstance(value, float) and number != value):
        raise MalformedEventError(f"object size {str(value)[:40]!r} is not a byte count")
    return number


def _opt(value: Any) -> str | None:
    return None if value in (None, "", "null") else str(value)


def _time(value: Any) -> datetime | None:
    """An ISO 8601 event time as naive UTC; None when absent or unreadable.

    Only the lag metric uses it, so a bad time must not refuse the event.
    """
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed
    return parsed.astimezone(UTC).replace(tzinfo=None)


def _etag(value: Any) -> str | None:
    text = _opt(value)
    return None if text is None else text.strip('"')


def _encode_key(key: str) -> str:
    from urllib.parse import quote_plus

    return quote_plus(key, safe="/")
