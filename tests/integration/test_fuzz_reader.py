"""The reader fuzz target (fuzz/fuzz_reader.py), bounded, as part of the suite.

Each run starts from the seed corpus, which the target builds at run time, with
a fixed libFuzzer seed so that CI replays the same inputs. A finding (an
exception other than TerminalError, or a process that dies) makes the target
exit non-zero and write the input to the temporary directory.

calamine aborts on an .xls whose sector chain loops (found by this target, see
fuzz/README.md), so the in-process run leaves .xls to the production reader,
which parses every spreadsheet in a child process it can afford to lose.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from application.ports import LocalFile
from domain.errors import TerminalError
from domain.source import ObjectInfo
from entrypoints.containers import build_reader
from fuzz.seeds import KINDS, write_seeds

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TARGET = ROOT / "fuzz" / "fuzz_reader.py"


def fuzz(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    # -timeout: an input that stalls the reader is a finding of its own.
    options = ["-seed=1", "-timeout=60", f"-artifact_prefix={tmp_path}/"]
    try:
        return subprocess.run(
            [sys.executable, str(TARGET), *options, *args],
            cwd=tmp_path,
            env={**os.environ, "DATALAKEP_FUZZ_STALL_DUMP_S": "180", **env},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=240,
        )
    except subprocess.TimeoutExpired as stalled:
        output = stalled.stderr or b""
        text = output.decode(errors="replace") if isinstance(output, bytes) else output
        pytest.fail(f"the fuzz run stalled; its last output:\n{text[-3000:]}")


def findings(tmp_path: Path) -> list[str]:
    kinds = ("crash-", "oom-", "timeout-", "slow-unit-")
    return sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(kinds))


def test_the_in_process_parsers_survive_a_bounded_fuzz_run_on_zip_and_csv(
    tmp_path: Path,
) -> None:
    done = fuzz(
        tmp_path,
        "-runs=3000",
        str(tmp_path / "corpus"),
        DATALAKEP_FUZZ_READER="inprocess",
        DATALAKEP_FUZZ_KINDS=".xlsx,.ods,.csv",
    )

    assert done.returncode == 0, done.stderr[-3000:]
    assert findings(tmp_path) == []
    assert "Done 3000 runs" in done.stderr


def test_every_seed_is_a_workbook_the_production_reader_reads(tmp_path: Path) -> None:
    reader = build_reader(None)
    read = []
    for seed in write_seeds(tmp_path / "corpus"):
        data = seed.read_bytes()
        suffix = KINDS[data[0]]
        path = tmp_path / f"{seed.name}{suffix}"
        path.write_bytes(data[1:])
        info = ObjectInfo(f"s3://seeds/{path.name}", len(data) - 1, "v1")
        with reader.open(LocalFile(path, info.size), info) as workbook:
            rows = [workbook.read(sheet, 1).num_rows for sheet in workbook.sheet_names]
        read.append((suffix, sum(rows) > 0))

    assert sorted({suffix for suffix, _ in read}) == sorted(KINDS)
    assert all(has_rows for _, has_rows in read), read


def looping_ole2() -> bytes:
    """A 1.5 KB .xls whose directory sector chain points back at itself.

    The shape of the fuzzer's first abort: calamine follows the chain forever,
    growing one buffer until an allocation fails, and Rust then aborts.
    """
    header = bytearray(512)
    header[:8] = bytes.fromhex("D0CF11E0A1B11AE1")
    struct.pack_into("<5H", header, 0x18, 0x3E, 3, 0xFFFE, 9, 6)  # v3, 512-byte sectors
    struct.pack_into("<3I", header, 0x2C, 1, 1, 0)  # one FAT sector; directory at sector 1
    struct.pack_into("<5I", header, 0x38, 0x1000, 0xFFFFFFFE, 0, 0xFFFFFFFE, 0)
    struct.pack_into("<109I", header, 0x4C, 0, *[0xFFFFFFFF] * 108)  # the FAT is sector 0
    fat = struct.pack("<128I", 0xFFFFFFFD, 1, *[0xFFFFFFFF] * 126)  # sector 1 -> sector 1
    return bytes(header) + fat + bytes(512)


def test_an_ole2_sector_chain_that_loops_is_a_terminal_error_not_a_dead_worker(
    tmp_path: Path,
) -> None:
    path = tmp_path / "loop.xls"
    path.write_bytes(looping_ole2())
    info = ObjectInfo("s3://in/loop.xls", path.stat().st_size, "v1")
    # A small parser budget: the child runs out of it sooner, the outcome is the same.
    reader = build_reader({"parser_memory_mb": 256})

    with pytest.raises(TerminalError) as refused, reader.open(LocalFile(path, info.size), info):
        pass

    # xlrd (the .xls parser since calamine misread real files) sees the loop and
    # refuses the file; calamine aborted the child on it (parser_crashed).
    assert refused.value.code in ("corrupt_workbook", "parser_crashed")
    assert "s3://in/loop.xls" in str(refused.value)
