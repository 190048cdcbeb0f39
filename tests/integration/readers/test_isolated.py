"""The parser in its own process: same rows as in-process, and its death costs one file only."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from pathlib import Path

import openpyxl
import pytest

from application.ports import LocalFile, Workbook
from domain.errors import UnreadableFileError
from domain.sheet import RawSheet, SheetPreview
from domain.source import ObjectInfo
from infrastructure.readers import ReaderLimits
from infrastructure.readers.dispatch import FileTypeWorkbookReader
from infrastructure.readers.isolated import IsolatedWorkbookReader
from infrastructure.scratch import SHM, scratch_prefix
from tests.integration.readers.builders import info_for, inline, write_xlsx

pytestmark = pytest.mark.integration


def _workbook(path: Path, rows: int = 50) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "People"
    ws.append(["id", "name", "score", "joined"])
    for i in range(1, rows + 1):
        ws.append([i, f'Doe, J. "{i}"' if i % 7 else None, i / 4, f"2024-01-{i % 28 + 1:02d}"])
    wb.save(path)
    return path


def _read_all(reader: IsolatedWorkbookReader | FileTypeWorkbookReader, path: Path) -> RawSheet:
    info = info_for(path)
    with reader.open(LocalFile(path, info.size), info) as workbook:
        [name] = workbook.sheet_names
        return workbook.read(name, 1)


def _child_pids() -> list[int]:
    """Our unreaped child processes, zombies included: a leaked parser shows up here."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == os.getpid():
                pids.append(int(entry.name))
    return sorted(pids)


def _children() -> int:
    return len(_child_pids())


@pytest.fixture
def reader() -> Iterator[IsolatedWorkbookReader]:
    """The production reader, its kept parser child stopped after the test."""
    with closing(IsolatedWorkbookReader()) as isolated:
        yield isolated


def test_rows_come_back_exactly_as_the_in_process_parser_reads_them(
    tmp_path: Path, reader: IsolatedWorkbookReader
) -> None:
    path = _workbook(tmp_path / "people.xlsx")

    isolated = _read_all(reader, path)
    direct = _read_all(FileTypeWorkbookReader(), path)

    assert isolated.cells.equals(direct.cells)
    assert isolated.row_numbers.equals(direct.row_numbers)
    assert (isolated.header, isolated.header_row, isolated.name, isolated.source) == (
        direct.header, direct.header_row, direct.name, direct.source,
    )  # fmt: skip
    assert list(isolated.row_numbers.to_pylist()[:2]) == [2, 3]


def test_a_refusal_inside_the_child_keeps_its_code_and_details(
    tmp_path: Path, reader: IsolatedWorkbookReader
) -> None:
    path = tmp_path / "broken.xlsx"
    _workbook(path)
    path.write_bytes(path.read_bytes()[:3000])  # a truncated zip

    with pytest.raises(UnreadableFileError) as caught:
        _read_all(reader, path)

    assert caught.value.code == "corrupt_workbook"
    assert caught.value.details["source"] == "s3://bucket/in/broken.xlsx"
    assert str(caught.value).startswith("s3://bucket/in/broken.xlsx: ")


def test_a_sheet_too_big_to_parse_is_named_by_the_extent_scan(
    tmp_path: Path, reader: IsolatedWorkbookReader
) -> None:
    # calamine would ask for 550 GB; either the scan stops the child first or the
    # child dies at its memory limit, and the refusal names the sheet either way.
    rows = f'<row r="1">{inline("A1", "h")}</row>'
    rows += '<row r="1048576"><c r="XFD1048576"><v>1</v></c></row>'
    path = write_xlsx(tmp_path / "sparse.xlsx", {"Data": rows})

    with pytest.raises(UnreadableFileError) as caught:
        _read_all(reader, path)

    assert caught.value.code == "too_many_cells"
    assert "'Data'" in str(caught.value)


class _Misbehaving:
    """A parser that dies the way a crafted file makes calamine die."""

    def __init__(self, how: str) -> None:
        self._how = how

    @contextmanager
    def _open(self) -> Iterator[Workbook]:
        yield self

    def open(self, file: LocalFile, info: ObjectInfo) -> AbstractContextManager[Workbook]:
        return self._open()

    @property
    def sheet_names(self) -> tuple[str, ...]:
        return ("Evil",)

    def preview(self, sheet: str, rows: int) -> SheetPreview:
        return SheetPreview(sheet, (("a",),))

    def prefetch(self, sheet: str, header_row: int) -> None:
        return None

    def read(self, sheet: str, header_row: int) -> RawSheet:
        if self._how == "abort":
            os.abort()  # what a Rust allocation failure does
        if self._how == "memory":
            hog = [bytearray(64 * 1024 * 1024) for _ in range(1000)]
            raise AssertionError(f"allocated {len(hog)} blocks past the limit")
        while self._how == "spin":
            pass
        raise AssertionError(self._how)


@pytest.mark.parametrize(
    ("how", "code", "named"),
    [
        ("abort", "parser_crashed", "SIGABRT"),
        ("memory", "parser_out_of_memory", "300 MB"),
        # The child must use its 1 s of CPU within the parent's 2 s wait: with the
        # cores shared it is SIGKILLed first, so it runs alone (scripts/test).
        pytest.param("spin", "parser_crashed", "SIGXCPU", marks=pytest.mark.alone),
        # An exception no reader expected: the file is refused, the worker lives on.
        ("raise", "parser_failed", "AssertionError: raise"),
    ],
)
def test_a_parser_that_dies_costs_that_file_only(
    tmp_path: Path, reader: IsolatedWorkbookReader, how: str, code: str, named: str
) -> None:
    path = _workbook(tmp_path / "people.xlsx")
    info = info_for(path)
    limits = ReaderLimits(parser_memory_mb=300, parser_cpu_seconds=1)
    misbehaving = IsolatedWorkbookReader(limits, parser=_Misbehaving(how))

    with (
        pytest.raises(UnreadableFileError) as caught,
        misbehaving.open(LocalFile(path, info.size), info) as workbook,
    ):
        assert workbook.sheet_names == ("Evil",)
        assert workbook.preview("Evil", 5).rows == (("a",),)
        workbook.read("Evil", 1)

    assert caught.value.code == code
    assert named in str(caught.value)
    assert caught.value.details["sheet"] == "Evil"
    # Not kept for another file: dead, or (out of memory, failed) gone once closed.
    assert _children() == 0
    # This process carries on: the next file parses.
    assert _read_all(reader, path).num_rows == 50


def test_one_kept_child_serves_workbook_after_workbook_and_leaks_nothing(
    tmp_path: Path,
) -> None:
    path = _workbook(tmp_path / "people.xlsx", rows=5)
    reader = IsolatedWorkbookReader()
    _read_all(reader, path)
    [child] = _child_pids()
    descriptors = len(os.listdir("/proc/self/fd"))

    for _ in range(20):
        assert _read_all(reader, path).num_rows == 5

    assert _child_pids() == [child]
    assert len(os.listdir("/proc/self/fd")) == descriptors
    # Ours only: /dev/shm is the machine's, shared with other tests' and users' workers.
    assert not list(SHM.glob(f"{scratch_prefix()}*.arrow"))
    reader.close()
    assert _children() == 0


def test_a_child_started_ahead_serves_the_first_workbook(
    tmp_path: Path, reader: IsolatedWorkbookReader
) -> None:
    path = _workbook(tmp_path / "people.xlsx", rows=5)

    reader.prestart()
    [child] = _child_pids()

    assert _read_all(reader, path).num_rows == 5
    assert _child_pids() == [child]


def test_a_kept_child_killed_between_files_costs_no_file(tmp_path: Path) -> None:
    path = _workbook(tmp_path / "people.xlsx", rows=5)
    with closing(IsolatedWorkbookReader()) as reader:
        _read_all(reader, path)
        [child] = _child_pids()

        os.kill(child, signal.SIGKILL)
        _wait_until_dead(child)

        assert _read_all(reader, path).num_rows == 5
        [replacement] = _child_pids()
        assert replacement != child


class _SecondFileMisbehaves(_Misbehaving):
    """Reads ``first.xlsx`` like any parser, misbehaves on every other workbook."""

    def __init__(self, how: str) -> None:
        super().__init__(how)
        self._parser = FileTypeWorkbookReader(scan_extent=False)

    def open(self, file: LocalFile, info: ObjectInfo) -> AbstractContextManager[Workbook]:
        if file.path.name == "first.xlsx":
            return self._parser.open(file, info)
        return super().open(file, info)


def test_a_kept_child_gives_each_workbook_its_own_limits(tmp_path: Path) -> None:
    # Memory only: a spin's SIGXCPU after 1 s of CPU races the parent's deadline of
    # 2 s of wall time on a loaded machine (the first-workbook spin above shares that).
    first = _workbook(tmp_path / "first.xlsx", rows=5)
    second = _workbook(tmp_path / "second.xlsx", rows=5)
    limits = ReaderLimits(parser_memory_mb=300, parser_cpu_seconds=1)
    parser = _SecondFileMisbehaves("memory")
    with closing(IsolatedWorkbookReader(limits, parser=parser)) as reader:
        assert _read_all(reader, first).num_rows == 5
        [child] = _child_pids()

        with pytest.raises(UnreadableFileError) as caught:
            _read_all(reader, second)

        assert caught.value.code == "parser_out_of_memory"
        assert "300 MB" in str(caught.value)
        assert child not in _child_pids()


def test_a_workbook_left_early_keeps_its_child_for_the_next(tmp_path: Path) -> None:
    path = _workbook(tmp_path / "people.xlsx", rows=5)
    info = info_for(path)
    reader = IsolatedWorkbookReader()

    with reader.open(LocalFile(path, info.size), info) as workbook:
        assert workbook.sheet_names == ("People",)  # never read

    assert _read_all(reader, path).num_rows == 5
    reader.close()
    # Reaped on the way out, not left as a zombie or an orphan.
    assert _children() == 0


def _two_sheets(path: Path) -> Path:
    wb = openpyxl.Workbook()
    first = wb.active
    first.title = "First"
    for row in (["id", "name"], [1, "a"], [2, "b"]):
        first.append(row)
    second = wb.create_sheet("Second")
    for row in (["code", "n"], ["x", 10], ["y", 20], ["z", 30]):
        second.append(row)
    wb.save(path)
    return path


def test_a_read_started_ahead_gives_the_rows_a_plain_read_gives(
    tmp_path: Path, reader: IsolatedWorkbookReader
) -> None:
    path = _workbook(tmp_path / "people.xlsx")
    plain = _read_all(reader, path)
    info = info_for(path)

    with reader.open(LocalFile(path, info.size), info) as workbook:
        workbook.prefetch("People", 1)
        time.sleep(0.2)  # the child answers while nobody asks yet
        ahead = workbook.read("People", 1)

    assert ahead.cells.equals(plain.cells)
    assert ahead.row_numbers.equals(plain.row_numbers)
    assert not list(SHM.glob(f"{scratch_prefix()}*.arrow"))


def test_a_read_started_ahead_then_not_wanted_costs_its_child_only(
    tmp_path: Path, reader: IsolatedWorkbookReader
) -> None:
    path = _workbook(tmp_path / "people.xlsx")
    _read_all(reader, path)
    [child] = _child_pids()
    info = info_for(path)

    with reader.open(LocalFile(path, info.size), info) as workbook:
        workbook.prefetch("People", 1)  # then the ledger says: loaded already

    # Killed rather than waited for, reaped, its rows removed; the next file forks anew.
    assert child not in _child_pids()
    assert not list(SHM.glob(f"{scratch_prefix()}*.arrow"))
    assert _read_all(reader, path).num_rows == 50


def test_another_call_after_a_read_started_ahead_gets_its_own_answer(
    tmp_path: Path, reader: IsolatedWorkbookReader
) -> None:
    path = _two_sheets(tmp_path / "two.xlsx")
    info = info_for(path)

    with reader.open(LocalFile(path, info.size), info) as workbook:
        workbook.prefetch("First", 1)
        preview = workbook.preview("Second", 2)
        second = workbook.read("Second", 1)
        workbook.prefetch("Second", 1)
        first = workbook.read("First", 1)

    assert preview.rows == (("code", "n"), ("x", "10"))
    assert second.header == ("code", "n")
    assert second.cells.column(0).to_pylist() == ["x", "y", "z"]
    assert first.header == ("id", "name")
    assert first.cells.column(1).to_pylist() == ["a", "b"]
    # The answers nobody took were dropped with their rows; the child stays.
    assert not list(SHM.glob(f"{scratch_prefix()}*.arrow"))
    assert len(_child_pids()) == 1


class _DeafToClose(_Misbehaving):
    """A parser that never finishes closing: its child ignores the parent's "close"."""

    @contextmanager
    def _open(self) -> Iterator[Workbook]:
        yield self
        time.sleep(3600)  # asleep, so RLIMIT_CPU never ends it


def test_a_child_that_does_not_leave_when_asked_is_killed_and_reaped(tmp_path: Path) -> None:
    path = _workbook(tmp_path / "people.xlsx", rows=5)
    info = info_for(path)
    reader = IsolatedWorkbookReader(parser=_DeafToClose("sleep"))

    with reader.open(LocalFile(path, info.size), info) as workbook:
        assert workbook.preview("Evil", 5).rows == (("a",),)

    # Killed once the reap's bound passed, then reaped: no zombie, no orphan.
    assert _children() == 0


_SPINNING_PARENT = """
import sys
from pathlib import Path
from application.ports import LocalFile
from domain.source import ObjectInfo
from infrastructure.readers.isolated import IsolatedWorkbookReader
from tests.integration.readers.test_isolated import _Misbehaving

path = Path(sys.argv[1])
info = ObjectInfo(uri="s3://bucket/in/spin.xlsx", size=path.stat().st_size)
reader = IsolatedWorkbookReader(parser=_Misbehaving("spin"))
with reader.open(LocalFile(path, info.size), info) as workbook:
    print("parsing", flush=True)
    workbook.read("Evil", 1)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_until_dead(pid: int) -> None:
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_parser_child_dies_with_a_worker_killed_mid_parse(tmp_path: Path) -> None:
    path = _workbook(tmp_path / "people.xlsx", rows=5)
    worker = subprocess.Popen(
        [sys.executable, "-c", _SPINNING_PARENT, str(path)],
        cwd=Path(__file__).resolve().parents[3],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stdout is not None
        assert worker.stdout.readline() == "parsing\n"
        [parser] = [
            int(p)
            for task in Path(f"/proc/{worker.pid}/task").glob("*/children")
            for p in task.read_text().split()
        ]
        assert _alive(parser)

        worker.kill()  # SIGKILL: no cleanup code runs in the worker
        worker.wait(timeout=10)

        _wait_until_dead(parser)
        assert not _alive(parser), "the parser outlived its worker"
    finally:
        worker.kill()
        worker.wait(timeout=10)
