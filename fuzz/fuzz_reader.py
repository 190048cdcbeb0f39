"""atheris fuzz target: arbitrary bytes through the production workbook reader.

The first input byte picks the file name's extension (.xlsx, .xls, .ods, .csv);
the remaining bytes are the file. It is opened and every sheet previewed and
read by one of two readers, chosen by ``DATALAKEP_FUZZ_READER``:

- ``isolated`` (default): exactly what the entrypoints wire,
  ``entrypoints.containers.build_reader`` with the shipped config's ``limits``;
  spreadsheets are parsed in a forked child under memory and CPU limits.
- ``inprocess``: the guards and parsers that child runs, in this process.
  Coverage feedback then reaches the parsing code, and a parser that aborts
  kills the fuzzer, which is how such inputs are found.

Expected outcome for a bad file: ``domain.errors.TerminalError`` (the file is
reported as unreadable). Any other exception is a finding; so is a process that
dies (a Rust abort in calamine, or memory beyond -rss_limit_mb).

Run (see fuzz/README.md)::

    .venv/bin/python fuzz/fuzz_reader.py -max_total_time=600 fuzz/corpus/

An empty or missing corpus directory is seeded first with small valid
workbooks built at run time (fuzz/seeds.py), so no binary is committed.
"""

from __future__ import annotations

import ctypes
import faulthandler
import os
import resource
import signal
import sys
import tempfile
from pathlib import Path

import atheris  # type: ignore[import-untyped, unused-ignore]

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODES = ("isolated", "inprocess")
MODE = os.environ.get("DATALAKEP_FUZZ_READER", "isolated")
if MODE not in MODES:
    raise SystemExit(f"DATALAKEP_FUZZ_READER must be one of {MODES}, not {MODE!r}")

# Coverage feedback comes from Python code only; calamine and Arrow are native
# and are reached through the seeds' structure rather than instrumentation.
# The readers are built inside the hook: build_reader imports their modules, and
# the .csv and .xls parsers, which dispatch.py imports at their first file, are
# imported here so that they are instrumented too.
with atheris.instrument_imports(include=["infrastructure.readers", "zipfile", "csv"]):
    import yaml

    import infrastructure.readers.parsers.csv_reader
    import infrastructure.readers.parsers.xls  # noqa: F401 - instrumented, see above
    from application.ports import LocalFile, WorkbookReader
    from domain.errors import TerminalError
    from domain.source import ObjectInfo
    from entrypoints.containers import DEFAULT_CONFIG, build_reader
    from fuzz.seeds import KINDS, write_seeds
    from infrastructure.readers.dispatch import FileTypeWorkbookReader
    from infrastructure.readers.limits import ReaderLimits

    LIMITS = yaml.safe_load(DEFAULT_CONFIG.read_text()).get("limits")
    READER: WorkbookReader = (
        build_reader(LIMITS)
        if MODE == "isolated"
        else FileTypeWorkbookReader(ReaderLimits.from_mapping(LIMITS))
    )

# A subset of KINDS, to fuzz on past a known crash in one parser
# (e.g. DATALAKEP_FUZZ_KINDS=.xlsx,.ods,.csv: calamine aborts on looping .xls).
FUZZED_KINDS = frozenset(
    kind.strip() for kind in os.environ.get("DATALAKEP_FUZZ_KINDS", ",".join(KINDS)).split(",")
)
if not FUZZED_KINDS.issubset(KINDS):
    raise SystemExit(f"DATALAKEP_FUZZ_KINDS must name some of {KINDS}")

# The header search depth the use case previews with (config ingest.header_search_rows).
PREVIEW_ROWS = 30
_WORKDIR = Path(tempfile.mkdtemp(prefix="datalakep-fuzz-"))


def read_everything(data: bytes) -> None:
    """Open ``data`` as the file kind its first byte names and read every sheet."""
    if not data:
        return
    suffix = KINDS[data[0] % len(KINDS)]
    if suffix not in FUZZED_KINDS:
        return
    body = data[1:]
    path = _WORKDIR / f"input{suffix}"
    path.write_bytes(body)
    info = ObjectInfo(uri=f"s3://fuzz/input{suffix}", size=len(body), version="fuzz")
    try:
        with READER.open(LocalFile(path, len(body)), info) as workbook:
            for sheet in workbook.sheet_names:
                preview = workbook.preview(sheet, PREVIEW_ROWS)
                workbook.read(sheet, _header_row(preview.rows))
    except TerminalError:
        pass  # the documented way to refuse a file


def _header_row(rows: tuple[tuple[str | None, ...], ...]) -> int:
    # Where the router would look first: the first row with any text in it.
    for number, row in enumerate(rows, start=1):
        if any(cell is not None and cell.strip() for cell in row):
            return number
    return 1


def _corpus_args(argv: list[str]) -> list[str]:
    """argv for libFuzzer, with the first corpus directory seeded if it is empty."""
    inputs = [Path(arg) for arg in argv[1:] if not arg.startswith("-")]
    if any(path.is_file() for path in inputs):
        return argv  # replaying given inputs (a crash file), not fuzzing
    if not inputs:
        seeded = Path(tempfile.mkdtemp(prefix="datalakep-corpus-"))
        write_seeds(seeded)
        return [*argv, str(seeded)]
    corpus = inputs[0]
    corpus.mkdir(parents=True, exist_ok=True)
    if not any(corpus.iterdir()):
        write_seeds(corpus)
    return argv


def _cap_memory() -> None:
    """In-process mode: fail runaway allocations early, as the isolated child would.

    calamine asking for gigabytes then aborts this process at once (a "deadly
    signal" finding) instead of inviting the kernel's OOM killer onto a shared
    machine; libFuzzer's -rss_limit_mb only samples once a second.
    """
    budget = int(os.environ.get("DATALAKEP_FUZZ_MEMORY_MB", "2048")) << 20
    with open("/proc/self/statm") as statm:
        current = int(statm.read().split()[0]) * resource.getpagesize()
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    wanted = current + budget if hard == resource.RLIM_INFINITY else min(current + budget, hard)
    resource.setrlimit(resource.RLIMIT_AS, (wanted, hard))


def _plain_deaths_in_children() -> None:
    """Restore default handlers for fatal signals in a forked child.

    The isolated reader forks its parser from this process, and the child
    inherits libFuzzer's crash handlers: a parser that aborts would be reported
    as the fuzzer's own crash. In production that child dies plainly and the
    parent turns its death into a terminal error, which is what is fuzzed here.
    """
    for fatal in (signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE):
        signal.signal(fatal, signal.SIG_DFL)


def _leave_now(status: int, _: object) -> None:
    """Exit at once with ``status``, before any other exit handler runs.

    libFuzzer ends a finished run with C exit() from inside a Python call,
    without finalizing Python; the native thread pools' destructors that exit()
    then ran sometimes waited forever on a thread that needed the GIL (seen as
    "Done 300 runs" followed by a hang). libFuzzer's own exit handler, which
    turns an exit during an input into a finding, is registered later and so
    still runs first.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


# A module global: C calls it at exit, when nothing else refers to it.
_LEAVE_NOW = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_void_p)(_leave_now)


def main() -> None:
    ctypes.CDLL(None).on_exit(_LEAVE_NOW, None)
    stall = os.environ.get("DATALAKEP_FUZZ_STALL_DUMP_S")
    if stall:
        # Every thread's Python stack on stderr if the run is still going then:
        # what a bounded run that overstays was doing.
        faulthandler.dump_traceback_later(float(stall), repeat=True)
    argv = _corpus_args(sys.argv)
    if MODE == "isolated":
        os.register_at_fork(after_in_child=_plain_deaths_in_children)
    if MODE == "inprocess":
        _cap_memory()
    atheris.Setup(argv, read_everything)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
