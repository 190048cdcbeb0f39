"""Progress on a terminal, and none without one: `datalakep ingest` in a real pty."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.sample import generate_passengers, write_workbook

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
# Enough rows to outlast the half second before progress appears, on a fast idle machine too.
ROWS = 250_000


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("progress") / "train.csv"
    write_workbook(generate_passengers("train_data", ROWS, seed=5), path)
    return path


def ingest(source: Path, db: Path, stderr: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TERM": "xterm"}
    env.pop("DATALAKEP_CONFIG", None)
    return subprocess.Popen(
        [sys.executable, "-m", "entrypoints.cli", "ingest", str(source),
         "--warehouse", f"duckdb:///{db}"],
        cwd=db.parent, env=env, stdout=subprocess.PIPE, stderr=stderr,
    )  # fmt: skip


def test_on_a_terminal_ingest_shows_a_bar_with_rows_read_and_loaded(
    big_csv: Path, tmp_path: Path
) -> None:
    controller, terminal = pty.openpty()
    process = ingest(big_csv, tmp_path / "wh.duckdb", terminal)
    os.close(terminal)
    shown = b""
    while True:
        ready, _, _ = select.select([controller], [], [], 60)
        assert ready, "no output for a minute"
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the process closed its end
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)
    assert process.wait(timeout=60) == 0
    screen = shown.decode()

    assert "█" in screen
    assert "\r" in screen
    assert f"{ROWS:,} rows read" in screen
    assert f"{ROWS:,} of {ROWS:,} loaded into train_data" in screen
    assert "█" * 24 in screen  # the bar filled
    assert screen.endswith("\r\x1b[K")  # and was cleared before the summary


def test_without_a_terminal_there_is_no_progress(big_csv: Path, tmp_path: Path) -> None:
    process = ingest(big_csv, tmp_path / "wh.duckdb", subprocess.PIPE)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0
    assert err == b""
