"""Workbooks parsed in a forked child process with its own memory and CPU limits.

calamine is Rust: on crafted input it can abort the whole process (a failed
allocation is not an exception) or take gigabytes before anyone can object.
The guards (guards.py) refuse what can be recognised cheaply; everything else
is parsed here, in a child process under RLIMIT_AS and RLIMIT_CPU. When the
child dies, that file is refused with a terminal error and the worker carries
on with the next message.

One child serves one workbook at a time and is kept for the next while it is
fit: it finished the file cleanly, its address space has not grown past its
start by more than ``_REUSE_GROWTH``, and its CPU limit leaves a whole budget.
Each file gets the whole budget again on top of the child's size when the file
is opened, as a fresh child would; a child that died, was killed, or is unfit
is replaced by a new fork. For a small file the fork, its page faults and the
exit cost more CPU than the parse itself (about 19 of 26 ms for 891 rows).

Protocol: the parent names a workbook; the child opens it and answers requests
over a socket pair: sheet names, previews, and reads, until the parent closes
the workbook, then says whether it stays. A read's rows come back as an Arrow
IPC file, mapped by the parent without a copy. The file goes to ``/dev/shm``
when the estimate of the rows' size (scratch_estimate.py) fits there, else to
the spool directory: Docker gives ``/dev/shm`` 64 MB and Lambda none. Its name
carries the worker's pid (infrastructure/scratch.py), so what a killed worker
leaves is swept at the next start.

While the child parses, the parent scans the sheets' XML for their cell extent
(sheet_extent.py) on the other core. That scan used to run before parsing, to
keep calamine from allocating a huge empty grid; the child's memory limit now
does that job, so the scan only needs to finish in time to name the problem:
an oversized sheet kills the child early with ``too_many_cells``. A sheet
parsed in parts (``split_sheet_bytes`` or more) is left to the child, which
checks its extent in the parts' own pass, before each part is parsed.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import math
import os
import resource
import select
import signal
import threading
import time
import traceback
import uuid
import weakref
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
# Without a pidfd, the first look for a child's exit after this long, doubling up to
# _POLL_S: a child asked to close is usually gone within a few milliseconds.
_FIRST_PAUSE_S = 0.0005


# A kept child serves another workbook only while its address space is within this
# much of its size when it was forked: each workbook gets the whole memory budget on
# top of the child's size when it is opened, so growth kept across files adds to that.
_REUSE_GROWTH = 64 * MB
# How long after a caught SIGXCPU the kernel's SIGKILL follows.
_CPU_GRACE_S = 5
# A child's hard CPU limit, in workbooks' budgets (each with its grace). It is set
# once: an unprivileged process cannot raise it again, so a child leaves when the
# next workbook's whole budget no longer fits under it.
_CPU_BUDGETS = 2
# Seconds a child has to close a workbook, or to leave, before it is killed.
_CLOSE_S = 2.0
# A read whose rows take less Arrow memory than this keeps its freed heap for the
# next workbook: its parse's peak is a few MB, and trimming the heap only to fault
# the same pages in again cost a warm 891-row file ~1 ms of the child's 15 ms of CPU.
_GIVE_BACK_FROM_BYTES = 8 * MB


class IsolatedWorkbookReader:
    """The WorkbookReader for production: spreadsheets parsed in a limited child process.

    CSV stays in this process: pyarrow's reader is memory-safe and streams.
    ``close`` stops the child kept between workbooks.
    """

    def __init__(
        self, limits: ReaderLimits | None = None, *, parser: WorkbookReader | None = None
    ) -> None:
        self._limits = limits or ReaderLimits()
        self._in_process = FileTypeWorkbookReader(self._limits)
        # The child skips the extent scan; the parent runs it alongside.
        self._in_child = parser or FileTypeWorkbookReader(self._limits, scan_extent=False)
        self._keeper = _Keeper()
        # A reader dropped without close() stops its child too.
        weakref.finalize(self, self._keeper.close)

    @property
    def limits(self) -> ReaderLimits:
        return self._limits

    def open(self, file: LocalFile, info: ObjectInfo) -> AbstractContextManager[Workbook]:
        kind = SUPPORTED.get(info.suffix)
        if kind is None or kind is FileKind.CSV:
            return self._in_process.open(file, info)
        return self._isolated(file, info, kind)

    def prestart(self) -> None:
        """Fork the parser child now, ahead of the first workbook.

        For a Lambda's init phase: no thread exists yet to hold a lock across the
        fork, and the first invocation does not pay for it.
        """
        _load_pyarrow_lazies()
        self._keeper.keep(self._keeper.take(self._in_child, self._limits))

    def close(self) -> None:
        """Stop the kept child: a worker shutting down leaves no process behind."""
        self._keeper.close()

    @contextmanager
    def _isolated(self, file: LocalFile, info: ObjectInfo, kind: FileKind) -> Iterator[Workbook]:
        _load_pyarrow_lazies()
        child = _Child(self._keeper.take(self._in_child, self._limits), info, self._limits)
        try:
            workbook = child.open_workbook(file)
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
            if child.stop():
                self._keeper.keep(child.process)


class _Keeper:
    """The parser child that finished the last workbook and may take the next one."""

    def __init__(self) -> None:
        self._kept: _Process | None = None
        self._lock = threading.Lock()

    def take(self, reader: WorkbookReader, limits: ReaderLimits) -> _Process:
        """The kept child if it is still alive, else a new one."""
        with self._lock:
            kept, self._kept = self._kept, None
        if kept is not None:
            if kept.alive():
                return kept
            kept.stop()  # killed from outside, or with the thread that forked it
        return _Process.fork(reader, limits)

    def keep(self, process: _Process) -> None:
        with self._lock:
            if self._kept is None:
                self._kept = process
                return
        process.stop()  # another thread's workbook kept its child first

    def close(self) -> None:
        with self._lock:
            kept, self._kept = self._kept, None
        if kept is not None:
            kept.stop()


class _Process:
    """One forked parser process and the parent's end of its socket.

    It serves one workbook at a time (``_Child``), for as many workbooks as it stays fit.
    """

    def __init__(self, pid: int, conn: Connection) -> None:
        self.pid = pid
        self.conn = conn
        self._reaping = threading.Lock()
        self.exit_status: int | None = None
        # Readable once the child has exited (Linux 5.3+); None where unsupported.
        self._exited = _pidfd(pid)

    @classmethod
    def fork(cls, reader: WorkbookReader, limits: ReaderLimits) -> _Process:
        ours, theirs = socketpair()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the child: it never returns from here
            ours.close()
            _die_with(parent)
            _child_main(Connection(theirs.detach()), reader, limits)
        theirs.close()
        return cls(pid, Connection(ours.detach()))

    def alive(self) -> bool:
        with self._reaping:
            if self.exit_status is None:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
                if pid:
                    self.exit_status = status
            return self.exit_status is None

    def stop(self) -> None:
        """Ask the child to leave, then make sure it has: no zombie, no orphan."""
        if self.exit_status is None:
            with suppress(OSError):
                self.conn.send(("exit",))
            self.reap(wait_s=_CLOSE_S)
        self.conn.close()
        if self._exited is not None:
            os.close(self._exited)
            self._exited = None

    def kill(self) -> None:
        # Under the lock that guards reaping: a pid is only signalled while it is
        # still ours (a zombie at worst), never after it was reaped and reused.
        with self._reaping:
            if self.exit_status is None:
                with suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)

    def reap(self, wait_s: float) -> None:
        """Wait for the child to exit, killing it once ``wait_s`` has passed.

        The wait ends as soon as the child does: the kernel marks its pidfd readable
        at exit. A fixed sleep here cost a whole poll interval per file, more than the
        rest of a small file's ingest.
        """
        deadline = time.monotonic() + wait_s
        pause = _FIRST_PAUSE_S
        while True:
            with self._reaping:
                if self.exit_status is not None:
                    return
                pid, status = os.waitpid(self.pid, os.WNOHANG)
                if pid:
                    self.exit_status = status
                    return
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()  # SIGKILL cannot be caught: the next wait sees it gone
                left = _POLL_S
            if self._exited is not None:
                select.select([self._exited], [], [], min(left, _POLL_S))
            else:
                time.sleep(min(left, pause))
                pause = min(pause * 2, _POLL_S)


class _Child:
    """One workbook served by a parser process: the parent's side of the session."""

    def __init__(self, process: _Process, info: ObjectInfo, limits: ReaderLimits) -> None:
        self.process = process
        self._conn = process.conn
        self._info = info
        self._limits = limits
        self.scratch = _Scratch(f"{scratch_prefix()}{uuid.uuid4().hex[:12]}-")
        self._lock = threading.Lock()  # one request at a time on the socket
        # A request sent ahead (start), whose answer the next call of it takes.
        self._pending: tuple[Any, ...] | None = None
        # Set by the extent scan when a sheet is too big to parse.
        self._refusal: UnreadableFileError | None = None
        self._scan: threading.Thread | None = None
        self._unstarted_scan: threading.Thread | None = None

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

        # Started by the next request sent (_send), not here: started before it, the
        # scan's thread held the GIL while the request waited to be sent, and the
        # child began a warm 891-row file's preview 0.4-1.6 ms after it was asked
        # for, against 0.1-0.3 ms sent first. The child parses while the scan runs.
        self._unstarted_scan = threading.Thread(target=scan, name="datalakep-extent", daemon=True)

    def open_workbook(self, file: LocalFile) -> Workbook:
        names = self.call("open", file, self._info, self.scratch.prefix)
        return _ChildWorkbook(self, tuple(names))

    def stop(self) -> bool:
        """End this workbook's session; True when the process may serve another.

        Otherwise the process has left, or been killed, and is reaped: no zombie,
        no orphan.
        """
        process = self.process
        answer = None
        if self._pending is not None:
            # A read started ahead and not wanted after all (the ledger already had the
            # table): killed rather than waited for, and replaced by the next workbook.
            self._pending = None
            self._kill()
            process.reap(wait_s=_CLOSE_S)
        if process.exit_status is None:
            with suppress(OSError):
                self._conn.send(("close",))
            answer = self._closing_answer()
        if self._scan is not None:
            # Finished here, not left running into the next workbook: it may kill the
            # process, and a fork while this thread is inside Arrow or an allocator can
            # leave the next child waiting forever on a lock no thread of its own holds.
            self._scan.join()
        closed = answer is not None and answer[0] == "closed" and self._refusal is None
        kept = closed and answer is not None and answer[1] is True
        if not kept:
            process.stop()
        # A read answered but never mapped (the parent gave up on the child first),
        # or a write the child was killed in the middle of. A child that closed the
        # workbook answered every request and the parent took every answer (one
        # request at a time; one sent ahead was taken or settled, or the child was
        # killed), so nothing of its is left: no directory listing then, which cost a
        # small file more than its reap.
        if not closed:
            self.scratch.remove_all()
        return kept

    def _closing_answer(self) -> tuple[Any, ...] | None:
        """The child's answer to "close": ("closed", whether it stays), or None if it
        died or said nothing in time (it is then killed)."""
        try:
            if self._conn.poll(_CLOSE_S):
                answer: tuple[Any, ...] = self._conn.recv()
                return answer
        except (EOFError, OSError):
            return None
        self._kill()
        return None

    def start(self, *request: Any) -> None:
        """Send ``request`` now; the next ``call`` of the same request takes its answer."""
        with self._lock:
            self._settle()
            self._send(request)
            self._pending = request

    def call(self, *request: Any) -> Any:
        with self._lock:
            if self._pending == request:
                self._pending = None
            else:
                self._settle()
                self._send(request)
            kind, payload = self._receive(request)
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
            sheet=_sheet_of(request),
        )

    def _send(self, request: tuple[Any, ...]) -> None:
        if self.process.exit_status is not None:
            raise self._death(request)
        try:
            self._conn.send(request)
        except OSError:
            self.process.reap(wait_s=_CLOSE_S)
            raise self._death(request) from None
        if self._unstarted_scan is not None:
            self._scan, self._unstarted_scan = self._unstarted_scan, None
            self._scan.start()

    def _receive(self, request: tuple[Any, ...]) -> tuple[str, Any]:
        budget = self._limits.parser_cpu_seconds * 2
        waited = 0.0
        while not self._conn.poll(_POLL_S):
            waited += _POLL_S
            if self._refusal is not None or waited > budget:
                self._kill()
                raise self._death(request)
        try:
            answer: tuple[str, Any] = self._conn.recv()
        except (EOFError, OSError):
            self.process.reap(wait_s=_CLOSE_S)
            raise self._death(request) from None
        return answer

    def _settle(self) -> None:
        """Take the answer to a request sent ahead that no call came for, and drop it."""
        pending, self._pending = self._pending, None
        if pending is None:
            return
        kind, payload = self._receive(pending)
        if kind == "ok" and isinstance(payload, dict) and "path" in payload:
            Path(payload["path"]).unlink(missing_ok=True)

    def _kill(self) -> None:
        self.process.kill()

    def _death(self, request: tuple[Any, ...]) -> UnreadableFileError:
        self.process.reap(wait_s=_CLOSE_S)
        if self._scan is not None:
            # The child may have died of the very sheet the scan is about to name.
            self._scan.join(timeout=self._limits.parser_cpu_seconds)
        if self._refusal is not None:
            return self._refusal
        status = self.process.exit_status or 0
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
            sheet=_sheet_of(request),
            how=how,
            memory_limit_mb=limits.parser_memory_mb,
            cpu_limit_s=limits.parser_cpu_seconds,
        )


def _sheet_of(request: tuple[Any, ...]) -> str | None:
    """The sheet a request is about: previews and reads name one."""
    return str(request[1]) if request[0] in ("preview", "read") else None


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

    def _read_request(self, sheet: str, header_row: int) -> tuple[Any, ...]:
        return ("read", sheet, header_row, [str(p) for p in self._child.scratch.places])

    def prefetch(self, sheet: str, header_row: int) -> None:
        self._child.start(*self._read_request(sheet, header_row))

    def read(self, sheet: str, header_row: int) -> RawSheet:
        meta = self._child.call(*self._read_request(sheet, header_row))
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


def _child_main(conn: Connection, reader: WorkbookReader, limits: ReaderLimits) -> None:
    """Serve workbooks one at a time while fit, then leave with os._exit: never unwind
    into the parent's stack."""
    code = 0
    try:
        born = _limit_self(limits)
        while True:
            request = conn.recv()
            if request[0] != "open":
                break  # "exit"
            _, file, info, prefix = request
            _limit_workbook(limits)
            fit = _serve(conn, reader, limits, file, info, _Scratch(prefix))
            fit = fit and _fit_for_another(born, limits)
            conn.send(("closed", fit))
            if not fit:
                break
    except EOFError:
        pass  # the parent went away; nothing is left to answer
    except BaseException:  # noqa: BLE001 - a child must report, never unwind
        code = 1
        with suppress(OSError):
            conn.send(("crash", traceback.format_exc()))
    finally:
        os._exit(code)


def _serve(
    conn: Connection,
    reader: WorkbookReader,
    limits: ReaderLimits,
    file: LocalFile,
    info: ObjectInfo,
    scratch: _Scratch,
) -> bool:
    """One workbook's requests until the parent closes it.

    False when this process should serve no other: it ran out of memory, or the
    parent said something other than "close" after a refusal.
    """
    fit = True
    try:
        with reader.open(file, info) as workbook:
            conn.send(("ok", list(workbook.sheet_names)))
            while True:
                request = conn.recv()
                if request[0] == "close":
                    return fit
                try:
                    conn.send(("ok", _answer(workbook, request, scratch)))
                except DatalakepError as error:
                    conn.send(("error", _state(error)))
                except MemoryError:
                    fit = False
                    conn.send(("error", _out_of_memory(info, limits, request)))
    except DatalakepError as error:
        conn.send(("error", _state(error)))
    # Refused: the parent closes the workbook all the same.
    return bool(conn.recv()[0] == "close") and fit


@functools.cache
def _load_pyarrow_lazies() -> None:
    """Have pyarrow import, in this process, what it imports at its first conversion.

    pyarrow's first array built from Python objects probes for pandas (and numpy.ma
    where numpy is to be had), importing what it finds. Done before the first fork,
    every child inherits them; else the first file's child and the parent's extent
    scan each import them on their own, adding to a cold start (pandas alone is
    0.2 s of CPU in the development environment).
    """
    pa.array([0])


def _pidfd(pid: int) -> int | None:
    """A descriptor that becomes readable when ``pid`` exits, where the kernel has them."""
    open_pidfd = getattr(os, "pidfd_open", None)
    if open_pidfd is None:
        return None
    try:
        fd: int = open_pidfd(pid)
    except OSError:
        return None
    return fd


def _die_with(parent: int) -> None:
    """Have the kernel kill this child when the parent dies, even by SIGKILL.

    A worker killed mid-parse must not leave an orphan parsing on for seconds
    with a gigabyte of memory. Linux only (prctl PR_SET_PDEATHSIG); elsewhere the
    child ends at its next message, when it finds the socket closed.
    """
    try:
        _libc().prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _limit_self(limits: ReaderLimits) -> int:
    """The limits for the process's life; returns its address-space size at its start."""
    # SIGXCPU at each workbook's soft limit (_limit_workbook), SIGKILL at this hard one
    # if that is caught.
    cpu = limits.parser_cpu_seconds
    lifetime = _CPU_BUDGETS * (cpu + _CPU_GRACE_S)
    _, cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)
    new_hard = lifetime if cpu_hard == resource.RLIM_INFINITY else min(cpu_hard, lifetime)
    resource.setrlimit(resource.RLIMIT_CPU, (min(cpu, new_hard), new_hard))
    # An aborting parser must not leave a core file of gigabytes behind.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return _virtual_size()


def _limit_workbook(limits: ReaderLimits) -> None:
    """One workbook's budgets, whole, on top of what the process holds and has used.

    The child starts as a copy of the parent's address space; the memory budget is on
    top of its size now. RLIMIT_CPU counts the process's whole life in whole seconds,
    so it moves up by one budget from the seconds already used: a workbook gets its
    budget less the part second before it (a new child's start costs it a little too),
    and never more, which the parent's own deadline of twice the budget relies on.
    _fit_for_another keeps the limit under the hard one with the grace.
    """
    budget = limits.parser_memory_mb * MB
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    wanted = _virtual_size() + budget
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    resource.setrlimit(resource.RLIMIT_AS, (wanted, hard))
    _, cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = math.floor(_cpu_used_s()) + limits.parser_cpu_seconds
    if cpu_hard != resource.RLIM_INFINITY:
        soft = min(soft, cpu_hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, cpu_hard))


def _fit_for_another(born: int, limits: ReaderLimits) -> bool:
    """Whether the next workbook can have what a new child would give it."""
    if _virtual_size() - born > _REUSE_GROWTH:
        return False
    _, cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)
    need = _cpu_used_s() + limits.parser_cpu_seconds + _CPU_GRACE_S
    return cpu_hard == resource.RLIM_INFINITY or need <= cpu_hard


def _cpu_used_s() -> float:
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


def _virtual_size() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * resource.getpagesize()


def _answer(workbook: Workbook, request: tuple[Any, ...], scratch: _Scratch) -> Any:
    what = request[0]
    if what == "preview":
        return workbook.preview(request[1], request[2])
    if what == "read":
        sheet = workbook.read(request[1], request[2])
        answer = _hand_over(sheet, scratch, tuple(Path(p) for p in request[3]))
        large = sheet.cells.nbytes >= _GIVE_BACK_FROM_BYTES
        del sheet
        if large:
            _give_back_memory()
        return answer
    raise ValueError(f"unknown request {what!r}")


def _give_back_memory() -> None:
    """Return the read's freed heap to the OS once its rows are handed over.

    The parse's memory is freed by then, but glibc keeps it in the arenas of the
    threads that parsed (one per part of a large sheet) and pyarrow in its pool, so
    the child's RSS stayed at its peak while the worker validated and loaded the
    same rows: the two peaks added up.
    """
    pa.default_memory_pool().release_unused()
    with suppress(OSError, AttributeError):  # AttributeError: not glibc
        _libc().malloc_trim(0)


@functools.cache
def _libc() -> ctypes.CDLL:
    """The C library this process is linked with, looked up once per process."""
    return ctypes.CDLL(None, use_errno=True)


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
        # sent with each read (the child opened the workbook before).
        self.places: tuple[Path, ...] = ()

    @property
    def prefix(self) -> str:
        return self._prefix

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
