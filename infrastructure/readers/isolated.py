"""Workbooks parsed in a forked child process with its own memory and CPU limits.

calamine is Rust: on crafted input it can abort the whole process (a failed
allocation is not an exception) or take gigabytes before anyone can object.
The guards (guards.py) refuse what can be recognised cheaply; everything else
is parsed here, in a child forked for the one workbook, under RLIMIT_AS and
RLIMIT_CPU. When the child dies, that file is refused with a terminal error
and the worker carries on with the next message.

Protocol: the child opens the workbook and answers requests over a socket
pair: sheet names, previews, and reads. A read's rows come back as an Arrow IPC
file, mapped by the parent without a copy. The file goes to ``/dev/shm`` when
the estimate of the rows' size (scratch_estimate.py) fits there, else to the
spool directory: Docker gives ``/dev/shm`` 64 MB and Lambda none. Its name
carries the worker's pid (infrastructure/scratch.py), so what a killed worker
leaves is swept at the next start.

While the child parses, the parent scans the sheets' XML for their cell extent
(sheet_extent.py) on the other core. That scan used to run before parsing, to
keep calamine from allocating a huge empty grid; the child's memory limit now
does that job, so the scan only needs to finish in time to name the problem:
an oversized sheet kills the child early with ``too_many_cells``.
"""

from __future__ import annotations

import ctypes
import logging
import os
import resource
import signal
import threading
import time
import traceback
import uuid
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from multiprocessing.connection import Connection
from pathlib import Path
from socket import socketpair
from typing import Any
from xml.etree import ElementTree

import pyarrow as pa

import domain.errors as errors
from application.ports import LocalFile, Workbook, WorkbookReader
from domain.errors import DatalakepError, UnreadableFileError
from domain.printable import printable
from domain.sheet import RawSheet, SheetPreview
from domain.source import ObjectInfo
from infrastructure.readers.dispatch import FileTypeWorkbookReader
from infrastructure.readers.failures import unreadable
from infrastructure.readers.guards.checks import SUPPORTED, FileKind, check_extent
from infrastructure.readers.guards.scratch_estimate import estimate
from infrastructure.readers.limits import MB, ReaderLimits
from infrastructure.scratch import place, scratch_prefix

log = logging.getLogger(__name__)

_ROW_NUMBERS = "__datalakep_row_number"
_PR_SET_PDEATHSIG = 1
_DAMAGED = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    ElementTree.ParseError,
    EOFError,
    OSError,
    ValueError,
)
# How often the parent looks up from a silent child: to see whether the
# extent scan found a reason to stop it, and whether it is still alive.
_POLL_S = 0.05


class IsolatedWorkbookReader:
    """The WorkbookReader for production: spreadsheets parsed in a limited child process.

    CSV stays in this process: pyarrow's reader is memory-safe and streams.
    """

    def __init__(
        self, limits: ReaderLimits | None = None, *, parser: WorkbookReader | None = None
    ) -> None:
        self._limits = limits or ReaderLimits()
        self._in_process = FileTypeWorkbookReader(self._limits)
        # The child skips the extent scan; the parent runs it alongside.
        self._in_child = parser or FileTypeWorkbookReader(self._limits, scan_extent=False)

    @property
    def limits(self) -> ReaderLimits:
        return self._limits

    def open(self, file: LocalFile, info: ObjectInfo) -> AbstractContextManager[Workbook]:
        kind = SUPPORTED.get(info.suffix)
        if kind is None or kind is FileKind.CSV:
            return self._in_process.open(file, info)
        return self._isolated(file, info, kind)

    @contextmanager
    def _isolated(self, file: LocalFile, info: ObjectInfo, kind: FileKind) -> Iterator[Workbook]:
        child = _Child.start(self._in_child, self._limits, file, info)
        try:
            workbook = child.open_workbook()
            # Placed once the child's guards have passed: a zip bomb is refused as one,
            # not as a file too big for the scratch space its directory claims.
            with file.path.open("rb") as source:
                need = estimate(source, file.size, kind.is_zip).arrow_bytes
            child.scratch.places = place(need, f"{info.uri}'s rows")
            # Only once the child's cheap guards have passed: the scan must never
            # inflate a zip bomb the child has just refused.
            if kind.is_zip:
                child.watch_extent(file.path, kind)
            yield workbook
        finally:
            child.stop()


class _Child:
    """One forked parser process and the parent's end of its socket."""

    def __init__(
        self,
        pid: int,
        conn: Connection,
        info: ObjectInfo,
        limits: ReaderLimits,
        scratch: _Scratch,
    ) -> None:
        self._pid = pid
        self._conn = conn
        self._info = info
        self._limits = limits
        self.scratch = scratch
        self._lock = threading.Lock()  # one request at a time on the socket
        self._reaping = threading.Lock()
        self._exit_status: int | None = None
        # Set by the extent scan when a sheet is too big to parse.
        self._refusal: UnreadableFileError | None = None
        self._scan: threading.Thread | None = None

    @classmethod
    def start(
        cls,
        reader: WorkbookReader,
        limits: ReaderLimits,
        file: LocalFile,
        info: ObjectInfo,
    ) -> _Child:
        scratch = _Scratch(f"{scratch_prefix()}{uuid.uuid4().hex[:12]}-")
        ours, theirs = socketpair()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the child: it never returns from here
            ours.close()
            _die_with(parent)
            _child_main(Connection(theirs.detach()), reader, limits, file, info, scratch)
        theirs.close()
        return cls(pid, Connection(ours.detach()), info, limits, scratch)

    # ------------------------------------------------------------ parent side

    def watch_extent(self, path: Path, kind: FileKind) -> None:
        def scan() -> None:
            try:
                check_extent(path, self._info, kind, self._limits)
            except UnreadableFileError as refusal:
                self._refusal = refusal
                self._kill()
            except _DAMAGED:
                # A damaged zip: the child meets the same damage and reports it.
                return

        self._scan = threading.Thread(target=scan, name="datalakep-extent", daemon=True)
        self._scan.start()

    def open_workbook(self) -> Workbook:
        names = self.call("open")
        return _ChildWorkbook(self, tuple(names))

    def stop(self) -> None:
        """Ask the child to leave, then make sure it has: no zombie, no orphan."""
        if self._exit_status is None:
            with suppress(OSError, EOFError):
                self._conn.send(("close",))
            self._reap(wait_s=2.0)
        self._conn.close()
        # A read answered but never mapped (the parent gave up on the child first),
        # or a write the child was killed in the middle of.
        self.scratch.remove_all()
        if self._scan is not None:
            # Finished here, not left running into the next workbook: a fork while
            # this thread is inside Arrow or an allocator can leave the next child
            # waiting forever on a lock that no thread of its own holds.
            self._scan.join()

    def call(self, *request: Any) -> Any:
        with self._lock:
            if self._exit_status is not None:
                raise self._death(request)
            if request[0] != "open":
                try:
                    self._conn.send(request)
                except OSError:
                    self._reap(wait_s=2.0)
                    raise self._death(request) from None
            budget = self._limits.parser_cpu_seconds * 2
            waited = 0.0
            while not self._conn.poll(_POLL_S):
                waited += _POLL_S
                if self._refusal is not None or waited > budget:
                    self._kill()
                    raise self._death(request)
            try:
                kind, payload = self._conn.recv()
            except (EOFError, OSError):
                self._reap(wait_s=2.0)
                raise self._death(request) from None
        if kind == "ok":
            return payload
        if kind == "error":
            raise _rebuilt(payload)
        # An exception no reader code expected, raised while parsing this file: the
        # file is what is wrong as far as the worker can tell. Refused, with the
        # traceback logged for whoever fixes the reader, rather than taking the
        # worker down with it.
        log.error("parser process for %s failed:\n%s", printable(self._info.uri), payload)
        last = str(payload).strip().splitlines()[-1] if payload else "unknown error"
        raise unreadable(
            self._info,
            "parser_failed",
            f"the spreadsheet parser failed unexpectedly ({last})",
            sheet=str(request[1]) if len(request) > 1 else None,
        )

    def _kill(self) -> None:
        # Under the lock that guards reaping: a pid is only signalled while it is
        # still ours (a zombie at worst), never after it was reaped and reused.
        with self._reaping:
            if self._exit_status is None:
                with suppress(ProcessLookupError):
                    os.kill(self._pid, signal.SIGKILL)

    def _reap(self, wait_s: float) -> None:
        waited = 0.0
        while True:
            with self._reaping:
                if self._exit_status is not None:
                    return
                pid, status = os.waitpid(self._pid, os.WNOHANG)
                if pid:
                    self._exit_status = status
                    return
            if waited >= wait_s:
                self._kill()
            time.sleep(_POLL_S)
            waited += _POLL_S

    def _death(self, request: tuple[Any, ...]) -> UnreadableFileError:
        self._reap(wait_s=2.0)
        if self._scan is not None:
            # The child may have died of the very sheet the scan is about to name.
            self._scan.join(timeout=self._limits.parser_cpu_seconds)
        if self._refusal is not None:
            return self._refusal
        status = self._exit_status or 0
        sheet = str(request[1]) if len(request) > 1 else None
        limits = self._limits
        if os.WIFSIGNALED(status):
            how = signal.Signals(os.WTERMSIG(status)).name
        else:
            how = f"exit status {os.waitstatus_to_exitcode(status)}"
        return unreadable(
            self._info,
            "parser_crashed",
            f"the spreadsheet parser died ({how}); the file needs more than "
            f"{limits.parser_memory_mb:,} MB or {limits.parser_cpu_seconds:,} s of CPU to "
            "parse, or is crafted to crash the parser",
            sheet=sheet,
            how=how,
            memory_limit_mb=limits.parser_memory_mb,
            cpu_limit_s=limits.parser_cpu_seconds,
        )


class _ChildWorkbook:
    """The Workbook port, answered by the child process."""

    def __init__(self, child: _Child, sheet_names: tuple[str, ...]) -> None:
        self._child = child
        self._sheet_names = sheet_names

    @property
    def sheet_names(self) -> tuple[str, ...]:
        return self._sheet_names

    def preview(self, sheet: str, rows: int) -> SheetPreview:
        preview: SheetPreview = self._child.call("preview", sheet, rows)
        return preview

    def read(self, sheet: str, header_row: int) -> RawSheet:
        places = [str(p) for p in self._child.scratch.places]
        meta = self._child.call("read", sheet, header_row, places)
        path = Path(meta["path"])
        try:
            # Mapped, not read: the parent's copy of the rows is the page cache's.
            with pa.memory_map(str(path)) as source:
                table = pa.ipc.open_file(source).read_all()
        finally:
            path.unlink(missing_ok=True)
        numbers = table.column(_ROW_NUMBERS).combine_chunks()
        cells = table.drop_columns([_ROW_NUMBERS])
        return RawSheet(
            source=meta["source"],
            name=meta["name"],
            header=tuple(meta["header"]),
            header_row=meta["header_row"],
            cells=cells,
            row_numbers=numbers,
            date_1904=meta["date_1904"],
        )


# ------------------------------------------------------------------ child side


def _child_main(
    conn: Connection,
    reader: WorkbookReader,
    limits: ReaderLimits,
    file: LocalFile,
    info: ObjectInfo,
    scratch: _Scratch,
) -> None:
    """Serve one workbook, then leave with os._exit: never unwind into the parent's stack."""
    code = 0
    try:
        _limit_self(limits)
        with reader.open(file, info) as workbook:
            conn.send(("ok", list(workbook.sheet_names)))
            while True:
                request = conn.recv()
                if request[0] == "close":
                    break
                try:
                    conn.send(("ok", _answer(workbook, request, scratch)))
                except DatalakepError as error:
                    conn.send(("error", _state(error)))
                except MemoryError:
                    conn.send(("error", _out_of_memory(info, limits, request)))
    except DatalakepError as error:
        with suppress(OSError):
            conn.send(("error", _state(error)))
    except EOFError:
        pass  # the parent went away; nothing is left to answer
    except BaseException:  # noqa: BLE001 - a child must report, never unwind
        code = 1
        with suppress(OSError):
            conn.send(("crash", traceback.format_exc()))
    finally:
        os._exit(code)


def _die_with(parent: int) -> None:
    """Have the kernel kill this child when the parent dies, even by SIGKILL.

    A worker killed mid-parse must not leave an orphan parsing on for seconds
    with a gigabyte of memory. Linux only (prctl PR_SET_PDEATHSIG); elsewhere the
    child ends at its next message, when it finds the socket closed.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _limit_self(limits: ReaderLimits) -> None:
    # The child starts as a copy of the parent's address space; the budget is on top.
    budget = limits.parser_memory_mb * MB
    current = _virtual_size()
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    wanted = current + budget
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    resource.setrlimit(resource.RLIMIT_AS, (wanted, hard))
    # SIGXCPU at the soft limit, SIGKILL a few seconds later if that is caught.
    cpu = limits.parser_cpu_seconds
    _, cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)
    new_hard = cpu + 5 if cpu_hard == resource.RLIM_INFINITY else min(cpu_hard, cpu + 5)
    resource.setrlimit(resource.RLIMIT_CPU, (min(cpu, new_hard), new_hard))
    # An aborting parser must not leave a core file of gigabytes behind.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _virtual_size() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * resource.getpagesize()


def _answer(workbook: Workbook, request: tuple[Any, ...], scratch: _Scratch) -> Any:
    what = request[0]
    if what == "preview":
        return workbook.preview(request[1], request[2])
    if what == "read":
        sheet = workbook.read(request[1], request[2])
        return _hand_over(sheet, scratch, tuple(Path(p) for p in request[3]))
    raise ValueError(f"unknown request {what!r}")


def _hand_over(sheet: RawSheet, scratch: _Scratch, places: tuple[Path, ...]) -> dict[str, Any]:
    table = sheet.cells.append_column(_ROW_NUMBERS, sheet.row_numbers)
    path = scratch.write(table, sheet, places)
    return {
        "path": str(path),
        "source": sheet.source,
        "name": sheet.name,
        "header": list(sheet.header),
        "header_row": sheet.header_row,
        "date_1904": sheet.date_1904,
    }


class _Scratch:
    """Where one child's Arrow files go, and the name prefix that marks them as its own.

    The prefix starts with the worker's pid, not the child's: a file handed over is
    the worker's to remove, and it is swept once the worker is dead.
    """

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        # Best first; set by the parent once it knows the rows' estimated size, and
        # sent with each read (the child was forked before).
        self.places: tuple[Path, ...] = ()

    def write(self, table: pa.Table, sheet: RawSheet, places: tuple[Path, ...]) -> Path:
        """``table`` as an Arrow IPC file in the first of ``places`` with room.

        No partial file stays behind, whatever the write raises.
        """
        last: OSError | None = None
        for directory in places:
            path = directory / f"{self._prefix}{uuid.uuid4().hex}.arrow"
            try:
                with (
                    pa.OSFile(str(path), "wb") as sink,
                    pa.ipc.new_file(sink, table.schema) as writer,
                ):
                    writer.write_table(table)
            except OSError as error:
                path.unlink(missing_ok=True)
                last = error
                continue  # the estimate was short, or the space filled meanwhile
            except BaseException:
                path.unlink(missing_ok=True)
                raise
            return path
        # Not the file's fault: a retry, or another worker, may find room.
        where = ", ".join(str(p) for p in places)
        raise errors.TransientError(
            f"{sheet.source} [sheet {sheet.name}]: no room for the parsed rows in {where} "
            f"({last.strerror if last else 'no scratch directory'})",
            code="scratch_full",
            directories=where,
        )

    def remove_all(self) -> None:
        """Every file of this child's, wherever it was placed: the parent's last word."""
        for directory in self.places:
            for path in directory.glob(f"{self._prefix}*"):
                path.unlink(missing_ok=True)


def _out_of_memory(
    info: ObjectInfo, limits: ReaderLimits, request: tuple[Any, ...]
) -> dict[str, Any]:
    # Python code in the child hit RLIMIT_AS (Rust code aborts instead).
    sheet = str(request[1]) if len(request) > 1 else None
    return _state(
        unreadable(
            info,
            "parser_out_of_memory",
            f"parsing needs more than the parser's {limits.parser_memory_mb:,} MB",
            sheet=sheet,
            memory_limit_mb=limits.parser_memory_mb,
        )
    )


def _state(error: DatalakepError) -> dict[str, Any]:
    return {
        "type": type(error).__name__,
        "message": error.message,
        "code": error.code,
        "details": dict(error.details),
    }


def _rebuilt(state: dict[str, Any]) -> DatalakepError:
    kind = getattr(errors, state["type"], None)
    if not (isinstance(kind, type) and issubclass(kind, DatalakepError)):
        kind = errors.TerminalError
    error: DatalakepError = kind(state["message"], code=state["code"], **state["details"])
    return error
