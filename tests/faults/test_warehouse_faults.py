"""The warehouse goes away for a while; files that can never load end where people look.

Transient: a loopback proxy between the worker and PostgreSQL cuts the worker's
connection and refuses new ones until it is opened again. The messages must be
released with a pause (not deleted, not dead-lettered) and load once it is back.

Terminal: a file every row of which is invalid, a file for a table whose columns
disagree with the contract, and a file that is not a workbook at all. Each is
recorded in the ledger once, described in a rejects report, and its message is
deleted on the first try: nothing loops, nothing reaches the DLQ.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from tests.faults.conftest import Figures, MakeStack
from tests.faults.harness import (
    SourceFile,
    audit,
    cached_file,
    depth,
    drain,
    make_file,
    rejects_reports,
    start_worker,
    stop,
    upload,
    wait_until,
)
from tests.support.gated_proxy import gated_proxy
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.faults

SCENARIO = "warehouse unavailable"
MAX_RECEIVES = 10


def _loaded(database: str, uri: str) -> bool:
    with psycopg.connect(database) as con:
        exists = con.execute("SELECT to_regclass('datalakep_load_ledger')").fetchone()
        if not exists or exists[0] is None:
            return False
        found = con.execute(
            "SELECT count(*) FROM datalakep_load_ledger WHERE source_uri = %s AND status = %s",
            (uri, "loaded"),
        ).fetchone()
    return bool(found and found[0])


def _retries(log: Path) -> list[tuple[str, str, int]]:
    """(message id, line, delay) of each release for retry in the worker's JSON log lines."""
    found = []
    for line in log.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # the line the worker is writing right now
        if record.get("logger") == "application.worker" and record["level"] == "WARNING":
            found.append((record["message_id"], record["message"], record["delay_seconds"]))
    return found


def _released(log: Path) -> set[str]:
    """Ids of the messages the worker has released for retry so far."""
    return {mid for mid, _, _ in _retries(log)}


def test_an_outage_releases_messages_with_backoff_and_they_load_after_it(
    postgres: PostgresServer,
    make_stack: MakeStack,
    figures: Figures,
    file_cache: Path,
    tmp_path: Path,
) -> None:
    with gated_proxy(postgres.host, postgres.port) as proxy:
        stack = make_stack(
            max_receive_count=MAX_RECEIVES,
            warehouse=lambda url: url.replace(f":{postgres.port}/", f":{proxy.port}/"),
        )
        made = [
            cached_file(file_cache, f"outage/file{n}", "train_data", 2000, 1 + 10_000 * n, n)
            for n in range(3)
        ]
        files = [source for _, source in made]
        log = tmp_path / "worker.log"
        worker = start_worker(stack, log=log)
        try:
            upload(made[0][0], files[0].key)
            wait_until(lambda: _loaded(stack.database, files[0].uri), 30, "the first load")
            # The worker now holds a connection: the outage cuts it and refuses new ones.
            proxy.close_gate()
            for path, source in made[1:]:
                upload(path, source.key)
            wait_until(lambda: len(_released(log)) == 2, 40, "both messages to be released")
            during = audit(stack, files)
            waiting = depth(stack.queue)
            proxy.open_gate()
            wait_until(lambda: depth(stack.queue) == 0, 40, "the queue to drain")
        finally:
            code, _, _ = stop(worker)

    found = audit(stack, files)
    figures.record(found, runs=len(files))
    retries = _retries(log)
    assert code == 0
    assert proxy.cut >= 1
    # During the outage: nothing deleted, nothing dead-lettered, nothing half-written.
    assert waiting == 2
    assert during.dlq == 0
    assert during.partial_rows == 0
    assert during.loaded_sources == {files[0].uri}
    # Each release waited at least a second, named the file, said why, and stayed below
    # the DLQ's count.
    assert all(int(delay) >= 1 for _, _, delay in retries)
    assert all(any(f.uri in line for f in files[1:]) for _, line, _ in retries)
    assert all("Connection refused" in why or "closed" in why for _, why, _ in retries)
    per_message = {mid: sum(1 for m, _, _ in retries if m == mid) for mid, _, _ in retries}
    assert len(per_message) == 2
    assert max(per_message.values()) < MAX_RECEIVES
    assert found.problems(files) == []
    assert found.rows_loaded == found.rows_expected == 6000
    assert found.dlq == 0
    assert {e.status for e in found.ledger} == {"loaded"}


def test_terminal_errors_are_recorded_reported_and_acknowledged_once(
    make_stack: MakeStack, figures: Figures, file_cache: Path
) -> None:
    figures.scenario = "terminal error (bad file, drift)"
    stack = make_stack(max_receive_count=3)
    # The table exists, made by someone else, with columns the contract does not have.
    with psycopg.connect(stack.database) as con:
        con.execute('CREATE TABLE test_data ("PassengerId" integer PRIMARY KEY, "Nom" text)')
        con.execute("INSERT INTO test_data VALUES (1, 'kept')")
    all_bad_path, all_bad = cached_file(
        file_cache, "terminal/all_bad", "train_data", 300, 1, seed=3, rejected=300
    )
    drift_path, drift = cached_file(file_cache, "terminal/drift", "test_data", 500, 1, seed=4)
    good_path, good = cached_file(file_cache, "terminal/good", "gender_submission", 900, 1, 5)
    corrupt_path = stack.work / "corrupt.xlsx"
    corrupt_path.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 8)
    corrupt = SourceFile("incoming/terminal/corrupt.xlsx", "train_data", 0, 0, 0, refused=True)
    files = [replace(all_bad, refused=True), replace(drift, refused=True), corrupt, good]
    for path, source in (
        (all_bad_path, all_bad),
        (drift_path, drift),
        (corrupt_path, corrupt),
        (good_path, good),
    ):
        upload(path, source.key)

    drain(stack)

    found = audit(stack, files)
    figures.record(found, runs=len(files))
    assert found.problems(files) == []
    assert found.rows_loaded == found.rows_expected == 900
    statuses = sorted((e.source_uri, e.status) for e in found.ledger)
    assert statuses == sorted(
        [(all_bad.uri, "rejected"), (drift.uri, "failed"), (corrupt.uri, "failed"),
         (good.uri, "loaded")]
    )  # fmt: skip
    drift_error = next(e.error for e in found.ledger if e.source_uri == drift.uri)
    assert drift_error
    assert "Nom" in drift_error
    assert {f.key: rejects_reports(f) for f in files[:3]} == {
        f.key: {".csv", ".xlsx"} for f in files[:3]
    }
    assert found.dlq == 0
    assert depth(stack.queue) == 0
    with psycopg.connect(stack.database) as con:
        kept = con.execute('SELECT "PassengerId", "Nom" FROM test_data').fetchall()
    assert kept == [(1, "kept")]


def test_make_file_plants_exactly_the_rejected_rows(tmp_path: Path) -> None:
    """The audit trusts the planted count: one rejected row per planted cell, no more."""
    import pyarrow.csv as pacsv

    path, source = make_file(tmp_path, "x", "gender_submission", 50, 1, seed=1, rejected=4)
    survived = pacsv.read_csv(path).column("Survived").to_pylist()
    assert source.valid == 46
    assert survived[:4] == [7] * 4
    assert set(survived[4:]) <= {0, 1}
