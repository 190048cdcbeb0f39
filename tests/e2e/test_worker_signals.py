"""The worker process as an operator runs it: SIGTERM finishes, then exits 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from devtools.demo import BUCKET, create_stack
from tests.conftest import CONFIG
from tests.faults.harness import depth, wait_until

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_polling_and_exits_0(aws: str, tmp_path: Path, sig: int) -> None:
    queue, _ = create_stack()
    assert depth(queue) == 1  # the s3:TestEvent of the bucket's notification
    config = yaml.safe_load(CONFIG.read_text())
    config["worker"]["wait_seconds"] = 1
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "DATALAKEP_ALLOWED_SOURCES": f"{BUCKET}/incoming/"}
    process = subprocess.Popen(
        [sys.executable, "-m", "entrypoints.cli", "worker", "--queue-url", queue,
         "--config", str(path), "--warehouse", f"duckdb:///{tmp_path / 'w.duckdb'}"],
        cwd=Path(__file__).parents[2], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        # The TestEvent deleted: its signal handlers are installed (before the first
        # poll) and it is polling an empty queue, however slowly the machine runs.
        wait_until(lambda: depth(queue) == 0 or process.poll() is not None, 60, "the TestEvent")
        time.sleep(1.5)  # an empty 1 s long poll has ended: it must not exit on one
        assert process.poll() is None, process.communicate()[1]
        process.send_signal(sig)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "finishing the current message" in err
    assert "worker: 1 messages, 1 deleted" in out  # the s3:TestEvent, acknowledged
