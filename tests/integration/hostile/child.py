"""Hostile files read in a child process, so a crash or a memory blow-up is seen, not suffered.

The parent (``read_in_child``) starts ``python -m tests.integration.hostile.child``
with a JSON spec; the child builds the reader exactly as the service does
(``entrypoints.containers.build_reader``), reads every file in turn in the same
process and prints one JSON line per file, then its peak RSS. The parent reaps
the child with ``os.wait4`` to learn how it ended: an exit code, or the signal
that killed it (calamine aborts on a failed allocation instead of raising).

The peak is measured by the child, not taken from ``wait4``: Linux charges a
child with the RSS its parent had when it was forked (the pytest process,
hundreds of MB). The child's own high-water mark (VmHWM, counted from its
``exec``) and the largest of its own children (the reader's parser children, reaped
once the reader is closed) are free of that.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
# The source URI the child gives every file: messages must start with it.
URI_PREFIX = "s3://bucket/in/"
# A safety net for the machine, not the bound under test: an allocation past it
# fails in the child (and shows as an abort) instead of eating shared memory.
ADDRESS_SPACE_LIMIT = 6 * 1024**3
PREVIEW_ROWS = 30
SHOWN_ROWS = 5


@dataclass(frozen=True)
class Outcome:
    """What reading one file gave: its rows per sheet, or the error that refused it."""

    file: str
    uri: str
    ok: bool
    code: str | None = None
    error_class: str | None = None
    message: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    rows: Mapping[str, int] = field(default_factory=dict)
    headers: Mapping[str, list[str]] = field(default_factory=dict)
    cells: Mapping[str, list[list[str | None]]] = field(default_factory=dict)


@dataclass(frozen=True)
class ChildRun:
    outcomes: list[Outcome]
    exit_code: int | None  # None when a signal ended the child
    killed_by: int | None
    peak_rss_mb: float  # 0 when the child died before reporting it
    seconds: float
    stderr: str

    @property
    def exited_normally(self) -> bool:
        return self.exit_code == 0 and self.killed_by is None

    def describe(self) -> str:
        how = f"signal {self.killed_by}" if self.killed_by else f"exit {self.exit_code}"
        return f"child ended by {how}, peak RSS {self.peak_rss_mb:.0f} MB; stderr:\n{self.stderr}"


def read_in_child(
    *files: Path,
    limits: Mapping[str, Any] | None = None,
    header_row: int = 1,
    timeout: float = 60.0,
) -> ChildRun:
    """Read ``files`` one after the other in one fresh process; see the module docstring."""
    spec = json.dumps(
        {"files": [str(f) for f in files], "limits": dict(limits or {}), "header_row": header_row}
    )
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.hostile.child", spec],
            cwd=ROOT,
            stdout=out,
            stderr=err,
        )
        status = _reap(proc, timeout)
        seconds = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        lines = out.read().decode().splitlines()
        stderr = err.read().decode(errors="replace")[-4000:]
    records = [json.loads(line) for line in lines if line.startswith("{")]
    peak = next((r["peak_rss_mb"] for r in records if "peak_rss_mb" in r), 0.0)
    killed = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
    return ChildRun(
        outcomes=[Outcome(**r) for r in records if "peak_rss_mb" not in r],
        exit_code=os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
        killed_by=killed,
        peak_rss_mb=peak,
        seconds=seconds,
        stderr=stderr,
    )


def _reap(proc: subprocess.Popen[bytes], timeout: float) -> int:
    """The child's raw wait status; it is killed (and the test fails) past ``timeout``."""
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"the child still ran after {timeout:.0f} s and was killed") from None
    code = proc.returncode
    return -code if code < 0 else code << 8  # back to a wait status for os.WIF*


# ------------------------------------------------------------------ child side


def _read(reader: Any, path: Path, header_row: int) -> dict[str, Any]:
    from application.ports import LocalFile
    from domain.coercion import as_text
    from domain.errors import DatalakepError
    from domain.source import ObjectInfo

    uri = URI_PREFIX + path.name
    result: dict[str, Any] = {"file": path.name, "uri": uri, "ok": False}
    try:
        info = ObjectInfo(uri=uri, size=path.stat().st_size)
        rows: dict[str, int] = {}
        headers: dict[str, list[str]] = {}
        cells: dict[str, list[list[str | None]]] = {}
        with reader.open(LocalFile(path, info.size), info) as workbook:
            for sheet in workbook.sheet_names:
                workbook.preview(sheet, PREVIEW_ROWS)
                raw = workbook.read(sheet, header_row)
                rows[sheet] = raw.num_rows
                headers[sheet] = list(raw.header)
                head = raw.cells.slice(0, SHOWN_ROWS)
                columns = [as_text(c.combine_chunks()).to_pylist() for c in head.columns]
                cells[sheet] = [list(r) for r in zip(*columns, strict=True)]
        result.update(ok=True, rows=rows, headers=headers, cells=cells)
    except DatalakepError as error:
        result.update(
            code=error.code,
            error_class=type(error).__name__,
            message=error.message,
            details=json.loads(json.dumps(dict(error.details), default=str)),
        )
    except Exception as error:  # noqa: BLE001 - a crash is an outcome the test asserts on
        result.update(error_class=type(error).__name__, message=str(error)[:2000])
    return result


def main(argv: Sequence[str]) -> int:
    # Only the soft limit: a parser child forked below may set its own.
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_LIMIT, hard))
    spec = json.loads(argv[0])
    from entrypoints.containers import build_reader

    reader = build_reader(spec["limits"])
    for name in spec["files"]:
        print(json.dumps(_read(reader, Path(name), spec["header_row"])), flush=True)
    reader.close()  # reaps the parser child kept between files: its peak counts below
    print(json.dumps({"peak_rss_mb": _peak_rss_mb()}), flush=True)
    return 0


def _peak_rss_mb() -> float:
    status = Path("/proc/self/status").read_text()
    own_kb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
    children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own_kb, children_kb) / 1024


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
