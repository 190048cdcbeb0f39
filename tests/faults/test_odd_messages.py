"""Odd messages against real `datalakep worker` processes: none of them ends a worker.

Bodies no parser survived before (arrays nested 100,000 deep, a size of 1e999) and
the other shapes of poison reach the DLQ after maxReceiveCount; a message naming
one object a thousand times loads it once; a folder marker is acknowledged; and
with the notification and the allow-list covering the whole bucket, the rejects
report of a bad file is acknowledged unread instead of being ingested in turn.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from devtools.demo import BUCKET
from domain.events import ObjectCreated
from infrastructure.aws.clients import aws_client
from infrastructure.aws.events import notification, parse_event
from tests.faults.conftest import Figures, MakeStack
from tests.faults.harness import (
    audit,
    bucket_keys,
    cached_file,
    depth,
    dlq_bodies,
    finish,
    notifications,
    send,
    start_worker,
    upload,
)

pytestmark = pytest.mark.faults

SCENARIO = "odd messages: poison bodies, 1,000 repeats, markers, own reports"
MAX_RECEIVES = 2


def size_body(size: str) -> str:
    record = notification(ObjectCreated(BUCKET, "incoming/sized.xlsx"))
    return record.replace('"key"', f'"size": {size}, "key"')


POISON = [
    "[" * 100_000 + "]" * 100_000,  # ~200 KB: the JSON decoder's recursion limit
    size_body("1e999"),  # an infinite size
    "{not json",
    json.dumps({"junk": "x" * 200_000}),  # huge, and no event
    " ",  # SQS refuses an empty body; this is the nearest
    json.dumps("Records"),  # a JSON string
    json.dumps([{"Records": []}]),  # a list
    "null",
]


def whole_bucket(stack_config: Path) -> None:
    """The allow-list and the S3 notification both cover the whole bucket."""
    config = yaml.safe_load(stack_config.read_text())
    config["aws"]["sources"] = [{"bucket": BUCKET}]
    stack_config.write_text(yaml.safe_dump(config))
    s3 = aws_client("s3")
    current = s3.get_bucket_notification_configuration(Bucket=BUCKET)["QueueConfigurations"]
    s3.put_bucket_notification_configuration(
        Bucket=BUCKET,
        NotificationConfiguration={
            "QueueConfigurations": [
                {"QueueArn": current[0]["QueueArn"], "Events": ["s3:ObjectCreated:*"]}
            ]
        },
    )


def test_odd_messages_reach_the_dlq_and_nothing_else_is_lost_or_looped(
    make_stack: MakeStack, figures: Figures, file_cache: Path
) -> None:
    stack = make_stack(max_receive_count=MAX_RECEIVES, poison_backoff_s=1)
    whole_bucket(stack.config)
    path, good = cached_file(file_cache, "odd/good", "train_data", 2000, 1, seed=11)
    bad_path, bad = cached_file(
        file_cache, "odd/bad", "test_data", 1000, 5001, seed=12, rejected=20
    )
    etag = upload(path, good.key)["ETag"].strip('"')
    upload(bad_path, bad.key)
    aws_client("s3").put_object(Bucket=BUCKET, Key="incoming/folder/", Body=b"")
    # S3's own notification for the good file is replaced by one naming it 1,000 times.
    s3_sent = [
        body
        for body in notifications(stack.queue, 3)
        if good.uri not in {o.uri for o in parse_event(body).objects}
    ]
    record = json.loads(notification(ObjectCreated(BUCKET, good.key, etag=etag)))
    repeated = [
        {**record["Records"][0], "eventTime": f"2026-12-01T00:00:{n % 60:02d}Z"}
        for n in range(1000)
    ]
    sent = send(stack.queue, [*s3_sent, json.dumps({"Records": repeated}), *POISON])

    codes, runs = [], 0
    while depth(stack.queue) and runs < 6:
        code, _, err = finish(start_worker(stack, "--until-empty"), timeout=120)
        codes.append(code)
        runs += 1

    reports = sorted(bucket_keys("rejects/"))
    aws_client("s3").delete_object(Bucket=BUCKET, Key="incoming/folder/")  # not a file
    found = audit(stack, [good, bad])
    figures.record(found, runs=sent)
    assert set(codes) == {0}, err
    assert found.problems([good, bad]) == []
    assert sorted(dlq_bodies(stack.dlq)) == sorted(POISON)
    # The 1,000 records were one ingest: one ledger row, no 999 skips.
    assert [e.status for e in found.ledger if e.source_uri == good.uri] == ["loaded"]
    assert {e.source_uri for e in found.ledger} == {good.uri, bad.uri}
    # One report (csv + xlsx) for the bad file, and no report of a report.
    assert [Path(k).suffix for k in reports] == [".csv", ".xlsx"]
    assert all(k.startswith(f"rejects/{Path(bad.key).parent}/") for k in reports)
