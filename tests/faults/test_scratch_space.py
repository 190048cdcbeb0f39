"""Scratch space as containers and Lambda have it: a 64 MB /dev/shm, a full /tmp, SIGKILL.

Each worker here is a real `datalakep worker` process; the small filesystems are
tmpfs mounts in a private mount namespace (``unshare -m``), so nothing outside
the test sees them. A worker must load what fits somewhere, release (never
delete, never die on) what fits nowhere yet, and leave no scratch behind; what a
SIGKILLed worker leaves, the next start sweeps.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.demo import PREFIX
from tests.faults.conftest import Figures, MakeStack
from tests.faults.harness import (
    ROOT,
    SourceFile,
    Stack,
    audit,
    cached_file,
    depth,
    drain,
    upload,
    wide_workbook,
    worker_argv,
)

pytestmark = pytest.mark.faults

SCENARIO = "scratch space"  # each test names its own row below
WIDE_ROWS = 200_000


def in_namespace(setup: str, argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """Run ``argv`` in a private mount namespace after ``setup`` (shell); then list what
    datalakeP scratch is left in /dev/shm and $TMPDIR, as the namespace sees them."""
    script = (
        f'{setup} && "$@"; rc=$?; echo "left:"; '
        'ls -A /dev/shm "$TMPDIR" | grep "^datalakep-" || true; exit $rc'
    )
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", script, "sh", *argv],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    left = done.stdout.split("left:\n", 1)[1].split()
    return done.returncode, (left and "\n".join(left)) or "", done.stderr


def worker(stack: Stack) -> list[str]:
    return [sys.executable, "-m", "entrypoints.cli", *worker_argv(stack, "--until-empty")]


def with_tmpdir(directory: Path) -> dict[str, str]:
    """The environment for a worker whose spool (TMPDIR) is ``directory``, made empty."""
    directory.mkdir()
    return {**os.environ, "TMPDIR": str(directory)}


def uploaded(cache: Path, tmp_path: Path, name: str) -> tuple[SourceFile, Path, dict[str, str]]:
    """A 5,000-row file uploaded as ``name``; an empty spool and the environment naming it."""
    path, file = cached_file(cache, f"scratch/{name}", "train_data", 5000, 1, seed=len(name))
    upload(path, file.key)
    spool = tmp_path / f"{name}-tmp"
    return file, spool, with_tmpdir(spool)


def test_a_64_mb_dev_shm_falls_back_to_the_spool_and_the_workbook_loads(
    make_stack: MakeStack, figures: Figures, tmp_path: Path
) -> None:
    figures.scenario = "scratch: 64 MB /dev/shm, 200k rows"
    stack = make_stack()
    path = wide_workbook(tmp_path / "wide.xlsx", WIDE_ROWS)
    wide = SourceFile(f"{PREFIX}wide.xlsx", "train_data", WIDE_ROWS, 0, 1)
    upload(path, wide.key)
    spool = tmp_path / "spool"
    env = with_tmpdir(spool)

    code, left, err = in_namespace("mount -t tmpfs -o size=64m tmpfs /dev/shm", worker(stack), env)

    found = audit(stack, [wide])
    figures.record(found, runs=1)
    assert code == 0, err
    assert found.problems([wide]) == []
    assert (left, list(spool.iterdir())) == ("", [])


def test_a_full_tmp_releases_the_message_and_leaves_nothing(
    make_stack: MakeStack, figures: Figures, file_cache: Path, tmp_path: Path
) -> None:
    figures.scenario = "scratch: full /tmp"
    # wait_seconds 0: the run ends at the poll right after the release.
    stack = make_stack(wait_seconds=0)
    file, small, env = uploaded(file_cache, tmp_path, "full")
    # A private /dev/shm too: what is left there is then this worker's alone.
    fill = (
        f"mount -t tmpfs -o size=64m tmpfs /dev/shm && mount -t tmpfs -o size=4m tmpfs {small}"
        f" && head -c 4000000 /dev/zero > {small}/junk"
    )

    code, left, err = in_namespace(fill, worker(stack), env)

    assert code == 0, err  # released with a backoff: neither deleted nor fatal
    assert "scratch_full" in err or "bytes free in" in err, err
    assert left == ""
    assert depth(stack.queue) == 1
    assert depth(stack.dlq) == 0
    drain(stack)  # on a disk with room, it loads
    found = audit(stack, [file])
    figures.record(found, runs=1)
    assert found.problems([file]) == []


def test_what_a_worker_killed_mid_parse_leaves_the_next_start_sweeps(
    make_stack: MakeStack, figures: Figures, file_cache: Path, tmp_path: Path
) -> None:
    figures.scenario = "scratch: SIGKILL mid-parse, swept"
    stack = make_stack(visibility_timeout=2)
    file, spool, env = uploaded(file_cache, tmp_path, "killed")
    killed = subprocess.run(
        [sys.executable, "-m", "tests.faults.kill_after_handover", *worker_argv(stack)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    # The download is named after the worker that made it, as is its Arrow file.
    [download] = spool.glob("datalakep-*")
    owner = "-".join(download.name.split("-")[:2]) + "-"
    leftovers = [download, *Path("/dev/shm").glob(f"{owner}*.arrow")]
    assert {p.suffix for p in leftovers} == {".xlsx", ".arrow"}, leftovers

    swept = subprocess.run(worker(stack), cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=120)  # fmt: skip

    assert swept.returncode == 0, swept.stderr
    assert [p for p in leftovers if p.exists()] == []
    drain(stack)
    found = audit(stack, [file])
    figures.record(found, runs=2)
    assert found.problems([file]) == []


def test_rows_larger_than_their_estimate_move_from_dev_shm_to_the_spool(tmp_path: Path) -> None:
    # Long names make the rows about 0.43x their sheet XML, beyond the 0.35x estimate:
    # 4.2 MB estimated, 6.0 MB written, so /dev/shm (6 MB) looks big enough, then fills
    # up mid-write, and the rows go to the spool instead.
    path = wide_workbook(tmp_path / "wide.xlsx", 20_000)
    env = with_tmpdir(tmp_path / "spool")
    argv = [sys.executable, "-m", "entrypoints.cli", "ingest", str(path), "--json",
            "--warehouse", f"duckdb:///{tmp_path / 'wh.duckdb'}"]  # fmt: skip

    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", 'mount -t tmpfs -o size=6m tmpfs /dev/shm && "$@"', "sh",
         *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    [result] = [json.loads(line) for line in done.stdout.splitlines()]
    assert (result["status"], result["rows_loaded"]) == ("loaded", 20_000)
    assert list((tmp_path / "spool").iterdir()) == []
