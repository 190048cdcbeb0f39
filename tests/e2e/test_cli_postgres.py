"""The CLI loading the real Kaggle training file into PostgreSQL, as a user runs it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from entrypoints.cli import main
from tests.e2e.workbooks import write_kaggle
from tests.support.postgres import PostgresServer, fresh_database

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).parents[2]


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Reports are written relative to the working directory.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATALAKEP_WAREHOUSE", raising=False)
    monkeypatch.setenv("DATALAKEP_CONFIG", str(ROOT / "config" / "datalakep.yaml"))


@pytest.fixture
def db_url(postgres: PostgresServer) -> Iterator[str]:
    with fresh_database(postgres, "e2e") as url:
        yield url


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict[str, Any]]]:
    code = main(list(args))
    out = capsys.readouterr().out
    return code, [json.loads(line) for line in out.splitlines() if line.strip()]


def one(url: str, statement: str) -> tuple[Any, ...] | None:
    with psycopg.connect(url) as con:
        return con.execute(statement).fetchone()


def test_ingest_into_postgres_then_the_same_file_is_skipped(
    titanic: Path, tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    train = write_kaggle(titanic, "train", "xlsx", tmp_path)

    code, first = run_cli(capsys, "ingest", str(train), "--warehouse", db_url, "--json")

    assert code == 0, first
    assert [(r["table"], r["status"], r["rows_loaded"]) for r in first] == [
        ("train_data", "loaded", 891)
    ]
    assert one(db_url, "SELECT count(*) FROM train_data") == (891,)
    assert one(db_url, 'SELECT count(*) FROM train_data WHERE "Age" IS NULL') == (177,)
    assert one(db_url, 'SELECT max("Fare"), min("Age") FROM train_data') == (
        Decimal("512.3292"), Decimal("0.42"),
    )  # fmt: skip
    assert one(db_url, 'SELECT "Name" FROM train_data WHERE "PassengerId" = 2') == (
        "Cumings, Mrs. John Bradley (Florence Briggs Thayer)",
    )
    assert one(db_url, 'SELECT count(*) FROM train_data WHERE "Embarked" IS NULL') == (2,)

    code, second = run_cli(capsys, "ingest", str(train), "--warehouse", db_url, "--json")

    assert code == 0
    assert [(r["status"], r["rows_loaded"]) for r in second] == [("skipped", 0)]
    assert one(db_url, "SELECT count(*) FROM train_data") == (891,)
    code, history = run_cli(capsys, "history", "--warehouse", db_url, "--json")
    assert [e["status"] for e in history] == ["skipped", "loaded"]


def test_an_unreachable_server_is_a_temporary_failure_without_the_password() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql://loader:hunter2-secret@127.0.0.1:{port}/db?retry_attempts=2"

    done = subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", "history", "--warehouse", url],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ}, check=False, timeout=60,
    )  # fmt: skip

    assert done.returncode == 1, done.stderr
    assert "temporary failure" in done.stderr
    assert f"127.0.0.1:{port}" in done.stderr
    assert "hunter2-secret" not in done.stderr + done.stdout
