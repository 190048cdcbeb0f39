"""Scratch names carry their owner's pid; a start sweeps only what dead owners left."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from domain.errors import TransientError, UnreadableFileError
from infrastructure.scratch import place, scratch_prefix, sweep_dead

pytestmark = pytest.mark.unit


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_the_sweep_removes_dead_owners_scratch_only(tmp_path: Path) -> None:
    dead = dead_pid()
    owner = scratch_prefix(dead)
    left = [tmp_path / f"{owner}abc.xlsx", tmp_path / f"{owner}x.arrow"]
    (tmp_path / f"{owner}rejects-q").mkdir()
    (tmp_path / f"{owner}rejects-q" / "r.xlsx").write_bytes(b"r")
    kept = [
        tmp_path / f"{scratch_prefix()}mine.arrow",  # this live process
        tmp_path / f"{scratch_prefix(1)}init.arrow",  # a live process, not ours
        tmp_path / "datalakep-demo-abc",  # no pid: not a scratch name
        tmp_path / f"other-{dead}-file",  # someone else's naming
    ]
    for path in [*left, *kept]:
        path.write_bytes(b"x")

    removed = sweep_dead([tmp_path])

    assert removed == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in kept)


def test_scratch_goes_where_it_fits_and_names_why_not(tmp_path: Path) -> None:
    free = os.statvfs(tmp_path).f_bavail * os.statvfs(tmp_path).f_frsize
    total = os.statvfs(tmp_path).f_blocks * os.statvfs(tmp_path).f_frsize

    assert place(1024, "rows", spool=tmp_path)[-1] == tmp_path
    with pytest.raises(UnreadableFileError) as never:
        place(total + 1, "s3://b/k's rows", spool=tmp_path)
    assert never.value.code == "scratch_too_small"
    assert "s3://b/k's rows" in str(never.value)
    if free < total:  # a disk with anything on it: more than free, less than its size
        with pytest.raises(TransientError) as later:
            place(free + (total - free) // 2, "rows", spool=tmp_path)
        assert later.value.code == "scratch_full"
