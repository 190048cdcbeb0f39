"""Events that arrive late, naming a version of a key that has since been replaced.

The bucket is versioned. moto's notifications carry only the ETag; S3's also carry
the versionId, so the late event is sent in that shape too. Either way the older
version must never be loaded over the newer one, and the newer one must load once.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from devtools.demo import BUCKET
from devtools.sample import generate_passengers
from domain.events import ObjectCreated
from infrastructure.aws.events import notification
from tests.faults.conftest import Figures, MakeStack
from tests.faults.harness import (
    audit,
    cached_file,
    depth,
    drain,
    send,
    upload,
)

pytestmark = pytest.mark.faults

SCENARIO = "stale event (older version)"
KEY_NAME = "stale/passengers"


def _event(response: dict[str, object], key: str, size: int) -> str:
    """The notification real S3 sends for a put to a versioned bucket."""
    return notification(
        ObjectCreated(
            bucket=BUCKET,
            key=key,
            size=size,
            etag=str(response["ETag"]).strip('"'),
            version_id=str(response["VersionId"]),
        )
    )


def test_an_event_for_a_replaced_version_never_loads_it(
    make_stack: MakeStack, figures: Figures, file_cache: Path
) -> None:
    stack = make_stack(versioned=True)
    old_path, old = cached_file(file_cache, KEY_NAME, "train_data", 3000, 1, seed=1)
    new_path, new = cached_file(file_cache, KEY_NAME, "train_data", 2000, 1, seed=2)
    first = upload(old_path, old.key)
    second = upload(new_path, new.key)
    assert first["VersionId"] != second["VersionId"]

    # S3's own two notifications (ETag only), in whatever order the queue gives them.
    drain(stack)
    after_notifications = audit(stack, [new])
    # Then, late and out of order, the event for the first version as S3 shapes it, and
    # a repeat of the second version's.
    sent = 2 + send(
        stack.queue,
        [
            _event(first, old.key, old_path.stat().st_size),
            _event(second, new.key, new_path.stat().st_size),
        ],
    )
    drain(stack)

    found = audit(stack, [new])
    figures.record(found, runs=sent)
    # The newer version loaded on S3's own notification, not only on the late copy.
    assert after_notifications.problems([new]) == []
    assert found.problems([new]) == []
    assert found.rows_loaded == found.rows_expected == 2000
    versions = {(e.source_version, e.status) for e in found.ledger}
    assert versions == {(second["VersionId"], "loaded"), (second["VersionId"], "skipped")}
    assert sorted(_names(stack.database)) == sorted(
        str(n) for n in generate_passengers("train_data", 2000, seed=2).column("Name").to_pylist()
    )
    assert found.dlq == 0
    assert depth(stack.queue) == 0


def _names(database: str) -> list[str]:
    with psycopg.connect(database) as con:
        return [str(r[0]) for r in con.execute('SELECT "Name" FROM train_data')]
