"""Measure what one workbook costs the Lambda: peak memory, peak scratch and time.

The template's defaults (deploy/template.yaml) and the README's sizing table come
from this script's output, so they can be measured again rather than trusted:

    PYTHONPATH=. .venv/bin/python deploy/sizing.py 10000 100000 1000000

Each size is the bench's cached Titanic-shaped workbook, ingested by a fresh
``datalakep ingest`` into a DuckDB file outside the scratch directory (in AWS
the warehouse is remote). Lambda has no ``/dev/shm``, so the parser's Arrow
files land in ``/tmp`` there: the run gets a private mount namespace in which
``/dev/shm`` and ``$TMPDIR`` are one fresh directory, sampled with ``du`` for
its peak. The Lambda also spools the S3 object into ``/tmp`` before parsing,
so the object's size is added to that peak. Memory is the process tree's peak
PSS (the parser child runs beside its parent), sampled by bench.memory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.memory import TreeSampler
from bench.workbooks import ensure_workbook

MB = 1024 * 1024


SCRATCH_BYTES = 8 * 1024 * MB


def _used_bytes(path: Path) -> int:
    """Used bytes of the scratch tmpfs; 0 until it is mounted (its size tells it apart)."""
    try:
        stat = os.statvfs(path)
    except OSError:
        return 0
    if stat.f_blocks * stat.f_frsize != SCRATCH_BYTES:
        return 0
    return (stat.f_blocks - stat.f_bfree) * stat.f_frsize


def measure(rows: int) -> dict[str, float | int]:
    workbook = ensure_workbook(rows)
    work = Path(tempfile.mkdtemp(prefix="datalakep-sizing-"))
    scratch, warehouse = work / "scratch", work / "warehouse.duckdb"
    scratch.mkdir()
    datalakep = shutil.which("datalakep") or sys.exit("datalakep is not on PATH")
    inner = (
        f'mount -t tmpfs -o size={SCRATCH_BYTES} datalakep-scratch "{scratch}" '
        f'&& mount --bind "{scratch}" /dev/shm && exec env TMPDIR="{scratch}" '
        f'/usr/bin/time -f "%e %M" "{datalakep}" ingest "{workbook.xlsx}" '
        f'--warehouse "duckdb:///{warehouse}" --json'
    )
    started = time.perf_counter()
    process = subprocess.Popen(
        ["unshare", "-m", "sh", "-c", inner],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # The scratch tmpfs, seen through /proc/<pid>/root: it is mounted in the
    # child's mount namespace only. The output is a few lines: no pipe fills.
    seen, scratch_peak = Path(f"/proc/{process.pid}/root{scratch}"), 0
    with TreeSampler(process.pid) as memory:
        while process.poll() is None:
            scratch_peak = max(scratch_peak, _used_bytes(seen))
            time.sleep(0.02)
        out, err = process.communicate()
    wall = time.perf_counter() - started
    shutil.rmtree(work)
    if process.returncode != 0:
        sys.exit(f"ingest of {rows} rows failed ({process.returncode}):\n{err}")
    loaded = sum(json.loads(line)["rows_loaded"] for line in out.splitlines() if line.strip())
    elapsed, max_rss_kib = err.strip().splitlines()[-1].split()
    xlsx_bytes = workbook.xlsx.stat().st_size
    return {
        "rows": rows,
        "rows_loaded": loaded,
        "xlsx_mb": round(xlsx_bytes / MB, 1),
        "seconds": float(elapsed),
        "wall_seconds": round(wall, 2),
        "peak_pss_mb": round(memory.peak_pss_mb),
        "peak_rss_sum_mb": round(memory.peak_rss_mb),
        "largest_process_rss_mb": round(int(max_rss_kib) / 1024),
        "scratch_peak_mb": round(scratch_peak / MB, 1),
        "scratch_with_spool_mb": round((scratch_peak + xlsx_bytes) / MB, 1),
    }


def main(argv: list[str]) -> int:
    for rows in [int(a) for a in argv] or [10_000, 100_000, 1_000_000]:
        print(json.dumps(measure(rows)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
