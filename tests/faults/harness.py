"""What every fault scenario shares: a moto stack, a PostgreSQL database, workers, the audit.

The audit is the suite's definition of "nothing lost, duplicated or let in", computed
from the outside (the bucket, the queues, the tables and the ledger), never from what
the workers say about themselves.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from application.worker import WorkerStats
from devtools.demo import BUCKET, PREFIX
from devtools.sample import generate_passengers, write_workbook
from domain.events import MalformedEventError
from infrastructure.aws.clients import aws_client
from infrastructure.aws.events import parse_event
from tests.conftest import CONFIG
from tests.integration.readers.builders import write_xlsx

ROOT = Path(__file__).resolve().parents[2]
LEDGER = "datalakep_load_ledger"
TABLES = ("train_data", "test_data", "gender_submission")
SUFFIX = {"train_data": ".xlsx", "test_data": ".xlsx", "gender_submission": ".csv"}
# A column and a value its contract refuses, per table, to plant rejected rows.
_BAD_CELL = {
    "train_data": ("Pclass", 9),
    "test_data": ("Pclass", 9),
    "gender_submission": ("Survived", 7),
}


@dataclass(frozen=True)
class Stack:
    """One scenario's world: its own moto bucket and queues, its own database."""

    queue: str
    dlq: str
    warehouse: str  # postgresql:// URL the workers use (maybe through a proxy)
    database: str  # postgresql:// URL of the same database, direct, for the audit
    config: Path
    work: Path


def write_config(path: Path, **worker: Any) -> Path:
    """The shipped config with this bucket allowed and the worker's timings for tests."""
    config = yaml.safe_load(CONFIG.read_text())
    config["aws"]["sources"] = [{"bucket": BUCKET, "prefix": PREFIX}]
    config["worker"].update(
        {"visibility_timeout": 30, "wait_seconds": 1, "max_backoff_s": 2, "poison_backoff_s": 1}
    )
    config["worker"].update(worker)
    # Short in-warehouse retries: an outage should reach the worker's backoff quickly.
    config["warehouse"].update({"retry_attempts": 3, "retry_base_delay_s": 0.1})
    path.write_text(yaml.safe_dump(config))
    return path


# ------------------------------------------------------------------ source files


@dataclass(frozen=True)
class SourceFile:
    key: str
    table: str
    rows: int  # rows in the file
    rejected: int  # rows planted to be rejected
    first_id: int
    # The test expects the whole file to be refused (recorded, never loaded).
    refused: bool = False

    @property
    def uri(self) -> str:
        return f"s3://{BUCKET}/{self.key}"

    @property
    def valid(self) -> int:
        """Rows that must end up in the warehouse."""
        return 0 if self.refused else self.rows - self.rejected


def make_file(
    work: Path, name: str, table: str, rows: int, first_id: int, seed: int, rejected: int = 0
) -> tuple[Path, SourceFile]:
    """A sample workbook (or CSV) under ``incoming/``, its first ``rejected`` rows invalid."""
    data = generate_passengers(table, rows, seed=seed, start_id=first_id)
    if rejected:
        column, value = _BAD_CELL[table]
        index = data.schema.get_field_index(column)
        bad = pa.array([value] * rejected + [None] * (rows - rejected), data.column(index).type)
        mask = pa.array([True] * rejected + [False] * (rows - rejected))
        data = data.set_column(index, column, pc.if_else(mask, bad, data.column(index)))
    key = f"{PREFIX}{name}{SUFFIX[table]}"
    path = work / key.replace("/", "__")
    write_workbook(data, path)
    return path, SourceFile(key, table, rows, rejected, first_id)


_HEADER = ("PassengerId", "Survived", "Pclass", "Name", "Sex", "Age", "SibSp", "Parch",
           "Ticket", "Fare", "Cabin", "Embarked")  # fmt: skip


def wide_workbook(path: Path, rows: int) -> Path:
    """``rows`` valid train_data rows whose Names are 200+ characters: Arrow > 64 MB.

    Written as raw sheet XML, ten times faster than a spreadsheet library.
    """
    letters = "ABCDEFGHIJKL"
    cells = zip(letters, _HEADER, strict=True)
    header = "".join(f'<c r="{c}1" t="inlineStr"><is><t>{h}</t></is></c>' for c, h in cells)
    lines = [f'<row r="1">{header}</row>']
    pad = "y" * 200
    for n in range(2, rows + 2):
        pid = n - 1
        lines.append(
            f'<row r="{n}"><c r="A{n}"><v>{pid}</v></c><c r="B{n}"><v>{pid % 2}</v></c>'
            f'<c r="C{n}"><v>{1 + pid % 3}</v></c>'
            f'<c r="D{n}" t="inlineStr"><is><t>Doe, Mr. John {pid} {pad}</t></is></c>'
            f'<c r="E{n}" t="inlineStr"><is><t>male</t></is></c><c r="F{n}"><v>30</v></c>'
            f'<c r="G{n}"><v>0</v></c><c r="H{n}"><v>0</v></c>'
            f'<c r="I{n}" t="inlineStr"><is><t>A/5 {pid}</t></is></c><c r="J{n}"><v>7.25</v></c>'
            f'<c r="L{n}" t="inlineStr"><is><t>S</t></is></c></row>'
        )
    return write_xlsx(path, {"Passengers": "\n".join(lines)})


_MADE: dict[tuple[Any, ...], Path] = {}


def cached_file(
    cache: Path, name: str, table: str, rows: int, first_id: int, seed: int, rejected: int = 0
) -> tuple[Path, SourceFile]:
    """make_file, made once per run for the same arguments (tests reuse the same files)."""
    spec = (name, table, rows, first_id, seed, rejected)
    if (cache, *spec) not in _MADE:
        folder = cache / f"{len(_MADE)}"
        folder.mkdir(parents=True)
        _MADE[(cache, *spec)] = make_file(folder, *spec)[0]
    key = f"{PREFIX}{name}{SUFFIX[table]}"
    return _MADE[(cache, *spec)], SourceFile(key, table, rows, rejected, first_id)


def upload(path: Path, key: str) -> dict[str, Any]:
    response: dict[str, Any] = aws_client("s3").put_object(
        Bucket=BUCKET, Key=key, Body=path.read_bytes()
    )
    return response


# ------------------------------------------------------------------ queues


def depth(url: str) -> int:
    """Messages in the queue, visible, in flight or delayed."""
    attributes = aws_client("sqs").get_queue_attributes(
        QueueUrl=url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return sum(int(v) for v in attributes.values())


def take_all(url: str) -> list[str]:
    """Receive and delete every message now visible; their bodies, in order."""
    sqs, bodies = aws_client("sqs"), list[str]()
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = batch.get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def notifications(url: str, expected: int, timeout: float = 10) -> list[str]:
    """Take the queue's S3 ObjectCreated notifications (not the TestEvent) off it."""
    found: list[str] = []
    deadline = time.monotonic() + timeout
    while len(found) < expected:
        assert time.monotonic() < deadline, f"only {len(found)} of {expected} notifications"
        found += [body for body in take_all(url) if '"Records"' in body]
        time.sleep(0.05)
    return found


def send(url: str, bodies: Iterable[str]) -> int:
    sqs, sent = aws_client("sqs"), 0
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=body)
        sent += 1
    return sent


def dlq_bodies(url: str) -> list[str]:
    """Every message in the DLQ, left in place (received with a zero visibility timeout)."""
    sqs, seen = aws_client("sqs"), dict[str, str]()
    expected = depth(url)
    for _ in range(10):  # a receive returns at most ten; these queues hold a handful
        batch = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=0
        )
        for message in batch.get("Messages", []):
            seen[message["MessageId"]] = message["Body"]
        if len(seen) >= expected:
            break
    return list(seen.values())


# ------------------------------------------------------------------ workers


def worker_argv(stack: Stack, *extra: str) -> list[str]:
    return ["worker", "--queue-url", stack.queue, "--config", str(stack.config),
            "--warehouse", stack.warehouse, *extra]  # fmt: skip


def start_worker(
    stack: Stack, *extra: str, crash: str | None = None, log: Path | None = None
) -> subprocess.Popen[str]:
    """``datalakep worker`` in its own process; with ``crash``, tests.support.crashing_worker.

    Its stderr goes to ``log`` when given, so a test can read it while the worker runs.
    """
    module = ["-m", "entrypoints.cli"] if crash is None else [
        "-m", "tests.support.crashing_worker", crash, "--"]  # fmt: skip
    with log.open("w") if log else contextlib.nullcontext() as err:
        return subprocess.Popen(
            [sys.executable, *module, *worker_argv(stack, *extra)],
            cwd=ROOT,
            env=dict(os.environ),
            stdout=subprocess.PIPE,
            stderr=err or subprocess.PIPE,
            text=True,
        )


def finish(process: subprocess.Popen[str], timeout: float) -> tuple[int, str, str]:
    """Wait for ``process``; (returncode, stdout, stderr). Killed and reported if it hangs."""
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        raise AssertionError(f"worker still running after {timeout}s:\n{err or ''}") from None
    return process.returncode, out, err or ""


def stop(process: subprocess.Popen[str], timeout: float = 30) -> tuple[int, str, str]:
    process.send_signal(signal.SIGTERM)
    return finish(process, timeout)


def drain(stack: Stack, timeout: float = 60) -> WorkerStats:
    """Run a normal worker in this process until the queue is empty (in flight included)."""
    from entrypoints.aws_containers import worker_container

    container = worker_container(stack.queue, str(stack.config), stack.warehouse)
    outcome: list[WorkerStats | BaseException] = []
    try:
        worker = container.worker()

        def run() -> None:
            try:
                outcome.append(worker.run())
            except BaseException as error:  # noqa: BLE001 - re-raised in the test's thread
                outcome.append(error)

        thread = threading.Thread(target=run, name="drain-worker")
        thread.start()
        deadline = time.monotonic() + timeout
        try:
            while depth(stack.queue) and thread.is_alive() and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            worker.stop.set()
            thread.join()
    finally:
        container.shutdown_resources()
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    assert depth(stack.queue) == 0, f"queue not empty after {timeout}s"
    return outcome[0]


# ------------------------------------------------------------------ the audit


@dataclass(frozen=True)
class LedgerRow:
    source_uri: str
    source_version: str
    table: str | None
    status: str
    load_id: str
    error: str | None


def ledger(database: str) -> list[LedgerRow]:
    with psycopg.connect(database) as con:
        exists = con.execute("SELECT to_regclass(%s)", (LEDGER,)).fetchone()
        if not exists or exists[0] is None:
            return []
        rows = con.execute(
            f"SELECT source_uri, source_version, table_name, status, load_id, error "
            f"FROM {LEDGER} ORDER BY finished_at, load_id"
        ).fetchall()
    return [LedgerRow(*row) for row in rows]


def table_rows(database: str, table: str) -> list[tuple[Any, ...]]:
    """(PassengerId, _load_id) of every row the service wrote into ``table``.

    Nothing when the table does not exist or has no lineage (then it is one the
    service refused to touch: schema drift).
    """
    with psycopg.connect(database) as con:
        lineage = con.execute(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = %s AND column_name = '_load_id'",
            (table,),
        ).fetchone()
        if lineage is None:
            return []
        return con.execute(f'SELECT "PassengerId", _load_id FROM "{table}"').fetchall()


def _uris(bodies: Iterable[str]) -> set[str]:
    found: set[str] = set()
    for body in bodies:
        try:
            found.update(obj.uri for obj in parse_event(body).objects)
        except MalformedEventError:
            continue
    return found


def bucket_sources() -> set[str]:
    listing = aws_client("s3").list_objects_v2(Bucket=BUCKET, Prefix=PREFIX)
    return {f"s3://{BUCKET}/{item['Key']}" for item in listing.get("Contents", [])}


def bucket_keys(prefix: str) -> set[str]:
    listing = aws_client("s3").list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return {str(item["Key"]) for item in listing.get("Contents", [])}


def rejects_reports(source: SourceFile) -> set[str]:
    """The rejects report files in the bucket for ``source``: {'.csv', '.xlsx'} when whole."""
    stem = Path(source.key).stem
    found = set()
    for key in bucket_keys(f"rejects/{Path(source.key).parent}/"):
        name = Path(key).name
        if name.startswith(f"{stem}.") and ".rejects." in name:
            found.add(Path(key).suffix)
    return found


@dataclass
class Audit:
    files: int
    rows_expected: int
    rows_loaded: int
    # Extra `loaded` ledger rows for one (file, table), plus repeated keys in a table.
    duplicates: int
    # Files not in the DLQ that lack rows in the warehouse (all of them, or some).
    lost_files: list[str]
    lost_rows: int
    # Rows whose _load_id is no `loaded` ledger row: left by a load that never committed.
    partial_rows: int
    dlq: int
    dlq_sources: set[str]
    loaded_sources: set[str]
    # Files the ledger records as refused (rejected or failed) and never loaded.
    refused: set[str]
    bucket: set[str]
    per_file: dict[str, int] = field(default_factory=dict)
    ledger: list[LedgerRow] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return len(self.lost_files)

    def problems(self, files: Sequence[SourceFile]) -> list[str]:
        """Everything that breaks exactly-once, as sentences; empty when all is well."""
        found = []
        expected = {f.uri: f.valid for f in files if f.valid}
        if self.per_file != expected:
            found.append(f"rows per file {self.per_file} != expected {expected}")
        if self.duplicates:
            found.append(f"{self.duplicates} duplicate loads or keys")
        if self.lost_files:
            found.append(f"lost files {sorted(self.lost_files)}")
        wrongly = self.refused ^ {f.uri for f in files if f.refused}
        if wrongly:
            found.append(f"refused {sorted(self.refused)}, expected refusals differ by {wrongly}")
        if self.partial_rows:
            found.append(f"{self.partial_rows} rows from loads that never committed")
        if self.bucket != self.loaded_sources | self.dlq_sources | self.refused:
            found.append(
                f"bucket {sorted(self.bucket)} != loaded {sorted(self.loaded_sources)} "
                f"+ DLQ {sorted(self.dlq_sources)} + refused {sorted(self.refused)}"
            )
        return found


def audit(stack: Stack, files: Sequence[SourceFile]) -> Audit:
    entries = ledger(stack.database)
    loaded = Counter((e.source_uri, e.table) for e in entries if e.status == "loaded")
    loaded_ids = {e.load_id: e.source_uri for e in entries if e.status == "loaded"}
    duplicates = sum(n - 1 for n in loaded.values())
    per_file: Counter[str] = Counter()
    partial = 0
    for table in TABLES:
        rows = table_rows(stack.database, table)
        duplicates += len(rows) - len({r[0] for r in rows})
        for _, load_id in rows:
            if load_id in loaded_ids:
                per_file[loaded_ids[load_id]] += 1
            else:
                partial += 1
    dlq = dlq_bodies(stack.dlq)
    dlq_sources = _uris(dlq)
    loaded_sources = {uri for uri, _ in loaded}
    refused = {e.source_uri for e in entries if e.status in ("rejected", "failed")} - loaded_sources
    short = [f for f in files if f.uri not in dlq_sources and per_file[f.uri] < f.valid]
    lost = [f.uri for f in short]
    lost_rows = sum(f.valid - per_file[f.uri] for f in short)
    return Audit(
        files=len(files),
        rows_expected=sum(f.valid for f in files),
        rows_loaded=sum(per_file.get(f.uri, 0) for f in files),
        duplicates=duplicates,
        lost_files=lost,
        lost_rows=lost_rows,
        partial_rows=partial,
        dlq=len(dlq),
        dlq_sources=dlq_sources,
        loaded_sources=loaded_sources,
        refused=refused,
        bucket=bucket_sources(),
        per_file={uri: per_file.get(uri, 0) for uri in sorted(per_file)},
        ledger=entries,
    )


def polling(process: subprocess.Popen[str], endpoint: str) -> bool:
    """Whether ``process`` holds a TCP connection to ``endpoint`` (moto): it is polling.

    A worker's first call to AWS is its first long poll, so a connection means it is
    inside ``receive`` (or past it).
    """
    port = int(endpoint.rsplit(":", 1)[1])
    proc = Path(f"/proc/{process.pid}")
    inodes = set()
    try:
        for fd in (proc / "fd").iterdir():
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        lines = (proc / "net" / "tcp").read_text().splitlines()[1:]
    except (FileNotFoundError, ProcessLookupError):
        return False
    for line in lines:
        fields = line.split()
        remote_port = int(fields[2].rsplit(":", 1)[1], 16)
        # State 01 is ESTABLISHED; field 9 is the socket's inode.
        if remote_port == port and fields[3] == "01" and fields[9] in inodes:
            return True
    return False


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.05)
