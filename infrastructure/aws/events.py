"""Object-created notifications in every shape AWS delivers them.

S3 can notify directly (Lambda), through SQS, through SNS (raw or enveloped,
then usually SQS), or through EventBridge. All of them reduce to
:class:`domain.events.StorageEvent`; :func:`notification` writes one back.
Parsing is plain JSON work: no boto3 here. The queue adapter decodes what it
receives and encodes what it sends, so no use case sees a message body.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from domain.events import MalformedEventError, ObjectCreated, StorageEvent


def notification(obj: ObjectCreated) -> str:
    """``obj`` as an S3 notification body, for handing it to another queue."""
    body: dict[str, Any] = {"key": quote_plus(obj.key, safe="/")}
    for name, value in (
        ("size", obj.size),
        ("eTag", obj.etag),
        ("versionId", obj.version_id),
        ("sequencer", obj.sequencer),
    ):
        if value is not None:
            body[name] = value
    record: dict[str, Any] = {
        "eventSource": "aws:s3",
        "eventName": obj.event_name,
        "s3": {"bucket": {"name": obj.bucket}, "object": body},
    }
    if obj.event_time is not None:
        record["eventTime"] = obj.event_time.isoformat(timespec="milliseconds") + "Z"
    return json.dumps({"Records": [record]})


def decode(payload: str | bytes | Mapping[str, Any]) -> StorageEvent:
    """``payload`` as a StorageEvent; a malformed one says why instead of raising."""
    try:
        return parse_event(payload)
    except MalformedEventError as error:
        return StorageEvent(malformed=str(error))


def parse_event(payload: str | bytes | Mapping[str, Any]) -> StorageEvent:
    """Every created object named by ``payload``; raises MalformedEventError otherwise."""
    objects: list[ObjectCreated] = []
    ignored: list[str] = []
    _walk(_load(payload), objects, ignored, depth=0)
    unique = tuple(dict.fromkeys(objects))  # multipart uploads can notify twice
    return StorageEvent(unique, tuple(ignored))


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
    objects.append(_created(bucket, key, obj, ("eTag", "versionId"), name, record.get("eventTime")))


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
    name = "ObjectCreated:" + str(detail.get("reason", "PutObject"))  # type: ignore[union-attr]
    objects.append(_created(bucket, key, obj, ("etag", "version-id"), name, doc.get("time")))


def _created(
    bucket: str,
    key: str,
    obj: Mapping[str, Any],
    spelling: tuple[str, str],
    event_name: str,
    event_time: Any,
) -> ObjectCreated:
    """The object an event names; ``spelling`` is the format's (ETag, version id) field names."""
    etag_field, version_field = spelling
    return ObjectCreated(
        bucket=bucket,
        key=key,
        size=_int(obj.get("size")),
        etag=_etag(obj.get(etag_field)),
        version_id=_opt(obj.get(version_field)),
        sequencer=_opt(obj.get("sequencer")),
        event_name=event_name,
        event_time=_time(event_time),
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
