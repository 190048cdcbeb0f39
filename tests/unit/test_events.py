from __future__ import annotations

import json

import pytest

from domain.events import MalformedEventError, ObjectCreated, OwnOutputs, SourceRule
from infrastructure.aws.events import notification, parse_event

pytestmark = pytest.mark.unit


def s3_record(key: str, name: str = "ObjectCreated:Put", **obj: object) -> dict[str, object]:
    return {
        "eventSource": "aws:s3",
        "eventName": name,
        "s3": {"bucket": {"name": "inbox"}, "object": {"key": key, **obj}},
    }


def test_s3_notification_keys_are_url_decoded() -> None:
    event = {
        "Records": [s3_record("incoming%2FPassagiere+%C3%BC+1%2B2.xlsx", size=10, eTag='"abc"')]
    }
    [obj] = parse_event(event).objects
    assert obj.key == "incoming/Passagiere ü 1+2.xlsx"
    assert (obj.uri, obj.size, obj.etag) == ("s3://inbox/incoming/Passagiere ü 1+2.xlsx", 10, "abc")


def test_sqs_body_and_sns_envelopes_raw_and_not_raw() -> None:
    s3_event = {"Records": [s3_record("a.xlsx", versionId="v1", sequencer="0A")]}
    sns = {"Type": "Notification", "Message": json.dumps(s3_event)}
    lambda_sqs = {
        "Records": [
            {"eventSource": "aws:sqs", "messageId": "1", "body": json.dumps(s3_event)},
            {"eventSource": "aws:sqs", "messageId": "2", "body": json.dumps(sns)},
        ]
    }
    assert parse_event(json.dumps(sns)).objects == parse_event(s3_event).objects
    objects = parse_event(lambda_sqs).objects
    assert [o.version_id for o in objects] == ["v1"]  # the same object twice is one
    sns_to_lambda = {
        "Records": [{"EventSource": "aws:sns", "Sns": {"Message": json.dumps(s3_event)}}]
    }
    assert parse_event(sns_to_lambda).objects == objects


def test_eventbridge_object_created() -> None:
    event = {
        "source": "aws.s3",
        "detail-type": "Object Created",
        "detail": {
            "bucket": {"name": "inbox"},
            "object": {
                "key": "a b.xlsx",
                "size": 5,
                "etag": "e",
                "version-id": "v",
                "sequencer": "1",
            },
            "reason": "PutObject",
        },
    }
    [obj] = parse_event(event).objects
    assert (obj.key, obj.version_id, obj.etag) == ("a b.xlsx", "v", "e")
    event["detail-type"] = "Object Deleted"
    assert parse_event(event).objects == ()
    assert parse_event(event).ignored


def test_test_events_and_non_create_events_are_ignored() -> None:
    test = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "inbox"}
    removed = {"Records": [s3_record("a.xlsx", name="ObjectRemoved:Delete")]}
    assert parse_event(test).objects == ()
    assert "s3:TestEvent" in parse_event(test).ignored[0]
    assert parse_event(removed).objects == ()
    assert "ObjectRemoved:Delete" in parse_event(removed).ignored[0]


def test_multipart_double_notification_is_one_object() -> None:
    event = {
        "Records": [
            s3_record("big.xlsx", eTag="e-2"),
            s3_record("big.xlsx", name="ObjectCreated:CompleteMultipartUpload", eTag="e-2"),
        ]
    }
    assert [o.key for o in parse_event(event).objects] == ["big.xlsx", "big.xlsx"]
    # Distinct event names are kept; the ledger makes the second a skip.


@pytest.mark.parametrize(
    "payload",
    [
        "not json",
        "[1, 2]",
        json.dumps({"hello": "world"}),
        json.dumps({"Records": [{"eventSource": "aws:s3"}]}),
    ],
)
def test_poison_payloads_are_malformed(payload: str) -> None:
    with pytest.raises(MalformedEventError):
        parse_event(payload)


def size_event(size: str) -> str:
    record = json.dumps(s3_record("incoming/a.xlsx"))
    return '{"Records": [' + record.replace('"key"', f'"size": {size}, "key"') + "]}"


ODD_BODIES = {
    "nested arrays": "[" * 100_000 + "]" * 100_000,  # ~200 KB: RecursionError in json
    "size 1e999": size_event("1e999"),  # json parses it as inf
    "size -1": size_event("-1"),
    "size 1.5": size_event("1.5"),
    "not json": "{not json",
    "huge": json.dumps({"junk": "x" * 250_000}),
    "empty": "",
    "blank": "   ",
    "a json string": json.dumps("Records"),
    "a list": json.dumps([{"Records": []}]),
    "null": "null",
}


@pytest.mark.parametrize("body", ODD_BODIES.values(), ids=ODD_BODIES.keys())
def test_odd_bodies_are_malformed_events_never_other_exceptions(body: str) -> None:
    with pytest.raises(MalformedEventError) as caught:
        parse_event(body)
    assert len(str(caught.value)) < 200  # a preview, never the whole body


def test_a_huge_integer_size_is_still_a_size() -> None:
    [obj] = parse_event(size_event("1" + "0" * 400)).objects
    assert obj.size == 10**400


def test_hand_off_round_trips_through_a_notification_body() -> None:
    obj = ObjectCreated("inbox", "dir/a b+c ü.xlsx", 12, "e", "v", "s")
    [again] = parse_event(notification(obj)).objects
    assert again == obj


def test_source_rules() -> None:
    rule = SourceRule("inbox", "incoming/")
    assert rule.allows("inbox", "incoming/a.xlsx")
    assert not rule.allows("inbox", "other/a.xlsx")
    assert not rule.allows("evil", "incoming/a")
    assert SourceRule("inbox", "*/drop/*.xlsx").allows("inbox", "team/drop/x.xlsx")
    assert SourceRule("inbox").allows("inbox", "anything/at/all.xlsx")


def test_a_prefix_without_a_slash_is_a_folder_not_a_string_prefix() -> None:
    rule = SourceRule("inbox", "incoming")
    assert rule.allows("inbox", "incoming/a.xlsx")
    assert rule.allows("inbox", "incoming/deeper/a.xlsx")
    assert not rule.allows("inbox", "incoming-evil/a.xlsx")
    assert not rule.allows("inbox", "incoming.xlsx")


def test_own_outputs_cover_the_rejects_prefix_in_any_bucket_and_staging_in_its_own() -> None:
    own = OwnOutputs(prefixes=("rejects/",), staging=(SourceRule("wh", "datalakep-staging/"),))
    assert own.holds("inbox", "rejects/incoming/a.xlsx.1.rejects.xlsx")
    assert own.holds("any-bucket", "rejects/x.csv")
    assert own.holds("wh", "datalakep-staging/load-1.parquet")
    assert not own.holds("inbox", "datalakep-staging/load-1.parquet")
    assert not own.holds("inbox", "incoming/rejects/a.xlsx")
    assert not OwnOutputs(prefixes=("",)).holds("inbox", "incoming/a.xlsx")
