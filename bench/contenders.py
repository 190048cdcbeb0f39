"""The contenders, each run in a child process of its own.

Why child processes: peak RSS must be the contender's own, taken from the OS for
the whole process (interpreter, imports, buffers), and one contender's heap must
not warm up or inflate the next. The parent starts each child with ``Popen`` and
reaps it with ``os.wait4``, whose ``ru_maxrss`` is exactly that child's peak.

Two kinds of child:

- ``datalakep ingest`` itself, as a black box through its console script: its time
  is the process's wall time, start-up and imports included, as a user sees it.
- ``python bench/peers/SCRIPT ARGS``: the fastest scripts a user could write (polars
  into PostgreSQL through ADBC, polars into DuckDB), whole programs timed like
  datalakep's, their rows counted from the database afterwards.
- ``python -m bench.contenders NAME ARGS``: the baseline a user writes, the reader
  alone and COPY alone. Each times its own work with ``perf_counter`` (imports and
  connection set-up outside the timer) and prints one ``BENCH-RESULT {json}`` line;
  the parent also records its process wall time.

This module imports only the standard library at module level: a child imports
what its contender needs and nothing else, so the reader's RSS is the reader's.
The parent imports no driver at all (database chores run in ``pg`` children):
Linux's exec carries the parent's RSS high-water mark into every child's
``ru_maxrss``, so a fat parent would raise every child's reading.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.memory import TreeSampler
from bench.workbooks import ROOT, TABLE, Workbook

if TYPE_CHECKING:
    from devtools.postgres import PostgresServer

RESULT_PREFIX = "BENCH-RESULT "
# The contenders whose timed work counts rather than their process's wall time.
WORK_BASIS = frozenset({"reader", "parallel_reader", "reader_parts", "copy"})
PEERS = ROOT / "bench" / "peers"
# The floor's target table: the train_data contract of config/datalakep.yaml with
# the same types, NOT NULLs and primary key, so COPY writes what datalakep writes
# (less datalakep's own lineage columns).
TRAIN_DATA_DDL = f"""
CREATE TABLE "{TABLE}" (
    "PassengerId" integer NOT NULL,
    "Survived" smallint NOT NULL,
    "Pclass" smallint NOT NULL,
    "Name" varchar(256) NOT NULL,
    "Sex" varchar(6) NOT NULL,
    "Age" decimal(5,2),
    "SibSp" smallint NOT NULL,
    "Parch" smallint NOT NULL,
    "Ticket" varchar(64) NOT NULL,
    "Fare" decimal(10,4),
    "Cabin" varchar(64),
    "Embarked" char(1),
    PRIMARY KEY ("PassengerId")
)
"""
_COPY_CHUNK = 1 << 20


# ------------------------------------------------------------------ child side


def _child_noop(_args: dict[str, Any]) -> dict[str, Any]:
    """Nothing: the interpreter's own start-up time and RSS, to calibrate the others."""
    return {"work_s": 0.0}


def _cpu_s() -> float:
    """CPU time of this process and of its children reaped so far."""
    import resource

    own, children = (resource.getrusage(who) for who in (resource.RUSAGE_SELF,
                                                          resource.RUSAGE_CHILDREN))  # fmt: skip
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _child_spin(args: dict[str, Any]) -> dict[str, Any]:
    """A fixed pure-Python loop: one core's CPU and almost no memory (host_cores' unit)."""
    start = time.perf_counter()
    total = 0
    for i in range(int(args["loops"])):
        total += i
    return {"work_s": time.perf_counter() - start, "total": total}


def _child_reader(args: dict[str, Any]) -> dict[str, Any]:
    """The fastest reader alone: fastexcel (calamine) straight to an Arrow table."""
    import fastexcel

    start, cpu = time.perf_counter(), _cpu_s()
    table = fastexcel.read_excel(args["xlsx"]).load_sheet(0).to_arrow()
    work = time.perf_counter() - start
    return {"work_s": work, "cpu_s": _cpu_s() - cpu, "rows": table.num_rows}


def _child_parallel_reader(args: dict[str, Any]) -> dict[str, Any]:
    """datalakeP's reader as ingest runs it: guards, the parser child, the extent scan.

    The production IsolatedWorkbookReader with the repository's limits, timed from
    opening the file to the sheet's rows mapped in this process (header found,
    every cell as validation takes it); a sheet past ``split_sheet_bytes`` is parsed
    in parts on every core. CPU time includes the parser child's, reaped on close.
    The entrypoints package is imported first, as in every entrypoint process: what
    it keeps out (numpy) stays out of this one too.
    """
    import entrypoints  # noqa: F401  (first: see the docstring)
    from application.ports import LocalFile
    from domain.source import ObjectInfo
    from entrypoints.containers import build_reader, load_config_file

    path = Path(args["xlsx"]).resolve()
    reader = build_reader(load_config_file(ROOT / "config" / "datalakep.yaml").get("limits"))
    size = path.stat().st_size
    start, cpu = time.perf_counter(), _cpu_s()
    with reader.open(LocalFile(path, size), ObjectInfo(path.as_uri(), size)) as workbook:
        rows = workbook.read(workbook.sheet_names[0], 1).cells.num_rows
    work = time.perf_counter() - start
    return {"work_s": work, "cpu_s": _cpu_s() - cpu, "rows": rows}


def _child_reader_parts(args: dict[str, Any]) -> dict[str, Any]:
    """Where a parallel read's time goes: each stage of every part, one after another.

    The stages the parallel reader overlaps (parsers/xlsx_split.py, excel.py), run
    here in one thread so each is timed alone (CPU seconds, summed over parts): the
    inflate and cut (one thread, ahead of the parts), and per part the check (with the
    extent scan, in the same pass), the package, calamine's parse and fastexcel's
    Arrow conversion; then the join of the parts' columns and their conversion to
    what validation takes, as the reader does them (its own functions, with the
    sheet's first row as the header).
    """
    import fastexcel

    from infrastructure.readers.limits import ReaderLimits
    from infrastructure.readers.parsers import excel
    from infrastructure.readers.parsers.xlsx_split import SheetSplitter

    limits = ReaderLimits()
    splitter = SheetSplitter(
        Path(args["xlsx"]), "xl/worksheets/sheet1.xml", limits.max_cells_per_sheet
    )
    size = splitter.inflated_bytes
    plan = excel.part_plan(
        size, splitter.shared_bytes, int(args["workers"]), limits.split_sheet_bytes
    )
    assert plan is not None, "the bench workbook is not cut into parts"
    stages = dict.fromkeys(("inflate_cut_s", "check_s", "package_s", "parse_s", "arrow_s"), 0.0)
    loads = []
    count = 0
    clock = time.process_time
    mark = clock()
    for part in splitter.parts(plan):
        count += 1
        stages["inflate_cut_s"] += clock() - mark
        mark = clock()
        package = splitter.package(part)
        stages["package_s"] += clock() - mark
        mark = clock()
        splitter.check(part, package)
        stages["check_s"] += clock() - mark
        mark = clock()
        start = max(part.first_row, 2)
        span = None if part.end_row is None else part.end_row - start
        reader = fastexcel.read_excel(package.path)
        if part.first_row < start or start < 3:
            loaded = reader.load_sheet(0, header_row=None, skip_rows=start - 1, **excel._STRICT)
            height = loaded.total_height
        else:
            loaded = reader.load_sheet(0, header_row=start - 2, **excel._STRICT)
            height = start - 1 + loaded.total_height
        del reader
        package.close()
        stages["parse_s"] += clock() - mark
        mark = clock()
        typed = excel._typed(loaded)
        rows = len(typed.columns[0]) if typed.columns else 0
        loads.append(excel._PartLoad(typed, rows if span is None else span, height))
        stages["arrow_s"] += clock() - mark
        mark = clock()
    mark = clock()
    joined = excel._joined(loads, 0)
    assert joined is not None, "the bench workbook's parts do not join"
    rows = len(joined.columns[0])
    stages["join_s"] = clock() - mark
    return {**stages, "work_s": sum(stages.values()), "parts": count, "rows": rows,
            "sheet_xml_mb": size / 1e6}  # fmt: skip


def _child_copy(args: dict[str, Any]) -> dict[str, Any]:
    """COPY alone: the same rows as CSV into an empty typed table, one transaction."""
    import psycopg

    # The CSV is read before the timer: the floor is the server's COPY, not disk.
    data = Path(args["csv"]).read_bytes()
    with psycopg.connect(args["url"]) as con:
        con.execute(TRAIN_DATA_DDL)
        con.commit()
        start = time.perf_counter()
        with con.cursor() as cur:
            with cur.copy(f'COPY "{TABLE}" FROM STDIN (FORMAT csv, HEADER true)') as copy:
                view = memoryview(data)
                for offset in range(0, len(view), _COPY_CHUNK):
                    copy.write(view[offset : offset + _COPY_CHUNK])
            rows = cur.rowcount
        con.commit()
        work = time.perf_counter() - start
    return {"work_s": work, "rows": rows}


def _child_baseline(args: dict[str, Any]) -> dict[str, Any]:
    """What a user writes: pandas + openpyxl, then ``to_sql`` through SQLAlchemy."""
    import pandas as pd
    import sqlalchemy

    start = time.perf_counter()
    frame = pd.read_excel(args["xlsx"], engine="openpyxl")
    read = time.perf_counter() - start
    engine = sqlalchemy.create_engine(args["url"].replace("postgresql://", "postgresql+psycopg://"))
    try:
        # index=False: the same 12 columns as the other contenders load, not a
        # 13th with pandas' row numbers.
        frame.to_sql(TABLE, engine, method="multi", chunksize=1000, if_exists="append", index=False)
    finally:
        engine.dispose()
    work = time.perf_counter() - start
    return {"work_s": work, "read_s": read, "write_s": work - read, "rows": len(frame)}


def _child_pg(args: dict[str, Any]) -> dict[str, Any]:
    """Database chores (create, count + drop, version), in a child to keep the parent lean.

    On Linux ``exec`` carries the parent's RSS high-water mark into the child's
    ``ru_maxrss``; importing psycopg in the parent would raise every child's floor.
    """
    import psycopg

    from devtools.postgres import PostgresServer, create_database

    server = PostgresServer(
        args["host"], args["port"], args["user"], args["database"], Path(args["data_dir"])
    )
    op = args["op"]
    if op == "create":
        return {"url": create_database(server, args["name"])}
    if op == "version":
        with psycopg.connect(server.dsn) as con:
            row = con.execute("SHOW server_version").fetchone()
        return {"version": str(row[0]).split()[0] if row else None}
    if op == "count-drop":
        result: dict[str, Any] = {"rows": None}
        try:
            with psycopg.connect(args["url"]) as con:
                row = con.execute(f'SELECT count(*) FROM "{TABLE}"').fetchone()
            result["rows"] = int(row[0]) if row else 0
        except psycopg.Error as error:
            # A failed load may have left no table: that is a count of nothing,
            # reported as such, and the database is dropped all the same.
            result["count_error"] = str(error).strip()
        # Dropped once counted: a 1M-row database is ~200 MB of disk per run.
        with psycopg.connect(server.dsn, autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{args["name"]}" WITH (FORCE)')
        return result
    raise ValueError(f"unknown op {op!r}")


def _child_count_duckdb(args: dict[str, Any]) -> dict[str, Any]:
    import duckdb

    con = duckdb.connect(args["path"], read_only=True)
    try:
        row = con.execute(f'SELECT count(*) FROM "{TABLE}"').fetchone()
    finally:
        con.close()
    return {"rows": int(row[0]) if row else 0}


CHILDREN: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "noop": _child_noop,
    "spin": _child_spin,
    "reader": _child_reader,
    "parallel_reader": _child_parallel_reader,
    "reader_parts": _child_reader_parts,
    "copy": _child_copy,
    "baseline": _child_baseline,
    "count-duckdb": _child_count_duckdb,
    "pg": _child_pg,
}


def _child_main(argv: list[str]) -> int:
    name, raw = argv
    result = CHILDREN[name](json.loads(raw))
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


# ----------------------------------------------------------------- parent side


@dataclass(frozen=True)
class Process:
    """One finished child: its wall time, its own peak RSS and what it printed."""

    wall_s: float
    # max(the largest process's ru_maxrss, the tree's sampled PSS sum): see bench/memory.py.
    peak_rss_mb: float
    # Pages the process and the children it reaped waited on the disk for: library code
    # and data no longer in the page cache, which this VM empties within seconds.
    major_faults: int
    returncode: int
    stdout: str
    stderr: str

    def result(self) -> dict[str, Any] | None:
        for line in reversed(self.stdout.splitlines()):
            if line.startswith(RESULT_PREFIX):
                found: dict[str, Any] = json.loads(line.removeprefix(RESULT_PREFIX))
                return found
        return None

    def failure(self) -> str | None:
        if self.returncode == 0:
            return None
        tail = (self.stderr.strip() or self.stdout.strip()).splitlines()[-3:]
        return f"exit {self.returncode}: " + " | ".join(tail)


def run_process(
    argv: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float | None = None
) -> Process:
    """Run ``argv`` to completion; wall time from spawn to reap.

    Peak memory is the larger of ``wait4``'s ``ru_maxrss`` (one process, or its
    largest descendant) and the sampled PSS sum of the whole process tree, so a
    program that forks (datalakep parses in a child) is charged for both halves.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        # Output goes to files, not pipes: nothing in the parent has to read
        # while the child runs, and communicate() would reap the child before
        # wait4 could read its rusage.
        child = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err
        )
        killer = threading.Timer(timeout, child.kill) if timeout else None
        if killer:
            killer.start()
        try:
            with TreeSampler(child.pid) as tree:
                _, status, usage = os.wait4(child.pid, 0)
        finally:
            if killer:
                killer.cancel()
        wall = time.perf_counter() - start
        # Popen did not reap it; tell it the exit status so it does not try.
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Process(
            wall_s=wall,
            # Linux reports ru_maxrss in KiB.
            peak_rss_mb=max(usage.ru_maxrss / 1024, tree.peak_pss_mb),
            major_faults=usage.ru_majflt,
            returncode=child.returncode,
            stdout=out.read().decode(errors="replace"),
            stderr=err.read().decode(errors="replace"),
        )


@dataclass
class Measurement:
    """One run of one contender; ``error`` set means it must not count as a result."""

    contender: str
    run: int
    rows_expected: int
    wall_s: float | None = None
    work_s: float | None = None
    peak_rss_mb: float | None = None
    major_faults: int | None = None
    rows_loaded: int | None = None
    error: str | None = None
    parts: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Setup:
    """What every contender needs: the server, the inputs, a scratch directory."""

    server: PostgresServer
    workbook: Workbook
    baseline_workbook: Workbook
    scratch: Path
    timeout: float | None


@dataclass(frozen=True)
class Contender:
    name: str
    label: str
    # "wall": the process's wall time counts (a whole program a user runs);
    # "work": the child's timed section counts (a floor component).
    basis: str
    rows: int
    run: Callable[[int], Measurement]
    # Run in the first round only (the baseline at 1M rows takes 6 minutes a run).
    first_round_only: bool = False


def python_child(
    setup: Setup, name: str, args: dict[str, Any], module: str = "bench.contenders"
) -> Process:
    """``python -m MODULE NAME ARGS``: a child that prints one BENCH-RESULT line."""
    argv = [sys.executable, "-m", module, name, json.dumps(args)]
    return run_process(argv, cwd=ROOT, timeout=setup.timeout)


def _pg(setup: Setup, op: str, **extra: Any) -> dict[str, Any]:
    server = setup.server
    args = {"op": op, "host": server.host, "port": server.port, "user": server.user}
    args |= {"database": server.database, "data_dir": str(server.data_dir), **extra}
    process = python_child(setup, "pg", args)
    result = process.result()
    if result is None:
        raise RuntimeError(f"database {op} failed: {process.failure()}")
    return result


def postgres_version(setup: Setup) -> str | None:
    version = _pg(setup, "version").get("version")
    return None if version is None else str(version)


def new_database(setup: Setup, prefix: str) -> tuple[str, str]:
    name = f"bench_{prefix}_{uuid.uuid4().hex[:10]}"
    return name, str(_pg(setup, "create", name=name)["url"])


def count_and_drop(setup: Setup, measurement: Measurement, name: str, url: str) -> None:
    result = _pg(setup, "count-drop", name=name, url=url)
    if result["rows"] is None:
        measurement.error = measurement.error or f"count failed: {result.get('count_error')}"
    else:
        _check_rows(measurement, int(result["rows"]))


def _check_rows(measurement: Measurement, counted: int) -> None:
    """A load that lost rows must never look fast: the count is the verdict."""
    measurement.rows_loaded = counted
    if measurement.error is None and counted != measurement.rows_expected:
        measurement.error = f"loaded {counted:,} rows, expected {measurement.rows_expected:,}"


# The project's packages, compiled once before any run of the CLI is timed.
_PACKAGES = ("application", "domain", "entrypoints", "infrastructure")
_compiled = False


def _cli_env() -> dict[str, str]:
    """The CLI's environment, with the project's bytecode compiled as in the image.

    The image's pip compiles every module at install, and its task root is
    read-only. A development tree run with PYTHONDONTWRITEBYTECODE (as the image
    and this machine set it) has no bytecode for the project's own modules, so
    every start would compile them from source: about half a second that no
    deployed cold start pays. compileall writes their ``__pycache__`` once
    (ignored by git); imports then read it as the image's do.
    """
    global _compiled
    env = dict(os.environ)
    # The URL is given on the command line; the config is the repository's.
    env.pop("DATALAKEP_WAREHOUSE", None)
    env["DATALAKEP_CONFIG"] = str(ROOT / "config" / "datalakep.yaml")
    if not _compiled:
        packages = [str(ROOT / name) for name in _PACKAGES]
        subprocess.run([sys.executable, "-m", "compileall", "-q", *packages], check=True)
        _compiled = True
    return env


def _datalakep() -> list[str]:
    script = Path(sys.executable).with_name("datalakep")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "entrypoints.cli"]


def run_cli(setup: Setup, measurement: Measurement, xlsx: Path, url: str) -> None:
    """``datalakep ingest XLSX`` as a fresh process; the sheet must report every row loaded."""
    # Its own working directory per run: rejects reports land there, not in data/.
    workdir = Path(tempfile.mkdtemp(prefix="cli-", dir=setup.scratch))
    try:
        argv = [*_datalakep(), "ingest", str(xlsx), "--warehouse", url, "--json"]
        process = run_process(argv, cwd=workdir, env=_cli_env(), timeout=setup.timeout)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    measurement.wall_s = process.wall_s
    measurement.peak_rss_mb = process.peak_rss_mb
    measurement.major_faults = process.major_faults
    measurement.error = process.failure()
    sheets = [json.loads(line) for line in process.stdout.splitlines() if line.startswith("{")]
    if measurement.error is None:
        loaded = [s for s in sheets if s.get("table") == TABLE and s.get("status") == "loaded"]
        if len(sheets) != 1 or len(loaded) != 1:
            measurement.error = f"expected one loaded {TABLE} sheet, got {sheets}"
        elif loaded[0].get("rows_loaded") != measurement.rows_expected:
            measurement.error = f"CLI reported rows_loaded={loaded[0].get('rows_loaded')}"


def cli_into_postgres(setup: Setup, name: str, run: int, workbook: Workbook) -> Measurement:
    """``datalakep ingest`` of ``workbook`` into a fresh PostgreSQL database, counted."""
    measurement = Measurement(name, run, workbook.rows)
    database, url = new_database(setup, "dlp")
    run_cli(setup, measurement, workbook.xlsx, url)
    count_and_drop(setup, measurement, database, url)
    return measurement


def cli_into_duckdb(setup: Setup, name: str, run: int, workbook: Workbook) -> Measurement:
    """``datalakep ingest`` of ``workbook`` into a fresh DuckDB file, counted."""
    measurement = Measurement(name, run, workbook.rows)
    with _fresh_duckdb(setup) as path:
        run_cli(setup, measurement, workbook.xlsx, f"duckdb:///{path}")
        count_duckdb(setup, measurement, path)
    return measurement


def datalakep_postgres(setup: Setup, run: int) -> Measurement:
    return cli_into_postgres(setup, "datalakep_pg", run, setup.workbook)


def datalakep_duckdb(setup: Setup, run: int) -> Measurement:
    return cli_into_duckdb(setup, "datalakep_duckdb", run, setup.workbook)


@contextmanager
def _fresh_duckdb(setup: Setup) -> Iterator[Path]:
    """A DuckDB file no run has used, deleted afterwards (a 1M-row file is ~100 MB)."""
    path = setup.scratch / f"run-{uuid.uuid4().hex[:10]}.duckdb"
    try:
        yield path
    finally:
        for leftover in (path, path.with_name(path.name + ".wal")):
            leftover.unlink(missing_ok=True)


def count_duckdb(setup: Setup, measurement: Measurement, path: Path) -> None:
    counted = python_child(setup, "count-duckdb", {"path": str(path)})
    result = counted.result()
    if result is None:
        measurement.error = measurement.error or f"count failed: {counted.failure()}"
    else:
        _check_rows(measurement, int(result["rows"]))


def _peer(setup: Setup, measurement: Measurement, script: str, *args: str) -> None:
    """A user's script as a whole process: its wall time counts, and its exit status."""
    argv = [sys.executable, str(PEERS / script), *args]
    process = run_process(argv, cwd=ROOT, timeout=setup.timeout)
    measurement.wall_s = process.wall_s
    measurement.peak_rss_mb = process.peak_rss_mb
    measurement.major_faults = process.major_faults
    measurement.error = process.failure()


def polars_postgres(setup: Setup, run: int) -> Measurement:
    measurement = Measurement("polars_adbc", run, setup.workbook.rows)
    name, url = new_database(setup, "polars")
    _peer(setup, measurement, "polars_postgres.py", str(setup.workbook.xlsx), url, TABLE)
    count_and_drop(setup, measurement, name, url)
    return measurement


def polars_duckdb(setup: Setup, run: int) -> Measurement:
    measurement = Measurement("polars_duckdb", run, setup.workbook.rows)
    with _fresh_duckdb(setup) as path:
        _peer(setup, measurement, "polars_duckdb.py", str(setup.workbook.xlsx), str(path), TABLE)
        count_duckdb(setup, measurement, path)
    return measurement


def _python_contender(
    setup: Setup, measurement: Measurement, name: str, args: dict[str, Any]
) -> None:
    process = python_child(setup, name, args)
    measurement.wall_s = process.wall_s
    measurement.peak_rss_mb = process.peak_rss_mb
    measurement.major_faults = process.major_faults
    measurement.error = process.failure()
    result = process.result()
    if measurement.error is None and result is None:
        measurement.error = "the child printed no result"
    if result is not None:
        measurement.work_s = float(result["work_s"])
        measurement.parts = {
            k: float(v) for k, v in result.items() if k.endswith(("_s", "_mb")) or k == "parts"
        }
        if "rows" in result:
            _check_rows(measurement, int(result["rows"]))


def reader(setup: Setup, run: int) -> Measurement:
    measurement = Measurement("reader", run, setup.workbook.rows)
    _python_contender(setup, measurement, "reader", {"xlsx": str(setup.workbook.xlsx)})
    return measurement


def parallel_reader(setup: Setup, run: int) -> Measurement:
    measurement = Measurement("parallel_reader", run, setup.workbook.rows)
    _python_contender(setup, measurement, "parallel_reader", {"xlsx": str(setup.workbook.xlsx)})
    return measurement


def reader_parts(setup: Setup, run: int) -> Measurement:
    measurement = Measurement("reader_parts", run, setup.workbook.rows)
    args = {"xlsx": str(setup.workbook.xlsx), "workers": len(os.sched_getaffinity(0))}
    _python_contender(setup, measurement, "reader_parts", args)
    return measurement


def copy(setup: Setup, run: int) -> Measurement:
    measurement = Measurement("copy", run, setup.workbook.rows)
    name, url = new_database(setup, "copy")
    _python_contender(setup, measurement, "copy", {"csv": str(setup.workbook.csv), "url": url})
    count_and_drop(setup, measurement, name, url)
    return measurement


def baseline(setup: Setup, run: int) -> Measurement:
    workbook = setup.baseline_workbook
    measurement = Measurement("baseline", run, workbook.rows)
    name, url = new_database(setup, "base")
    _python_contender(setup, measurement, "baseline", {"xlsx": str(workbook.xlsx), "url": url})
    count_and_drop(setup, measurement, name, url)
    return measurement


def noop(setup: Setup, run: int) -> Measurement:
    measurement = Measurement("python", run, 0)
    _python_contender(setup, measurement, "noop", {})
    return measurement


# host_cores' loop: about 0.4 s alone on this machine at its fastest.
SPIN_LOOPS = 8_000_000


def host_cores(setup: Setup, run: int) -> Measurement:
    """The cores this host gave two busy processes in this round: 2 x one alone / two at once.

    2.0 when the two vCPUs are two idle cores; less when they share a physical
    core or the host's other guests take its time. This host's speed wanders
    (bench/HISTORY.md), and the parallel reader cannot beat one fastexcel call by
    more than this: read beside it, a round's ratios say whether the host or the
    code moved.
    """
    measurement = Measurement("host_cores", run, 0)
    args = {"loops": SPIN_LOOPS}
    alone = python_child(setup, "spin", args)
    pair: list[Process] = []
    threads = [
        threading.Thread(target=lambda: pair.append(python_child(setup, "spin", args)))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    failed = [failure for p in (alone, *pair) if (failure := p.failure())]
    found = [result for p in (alone, *pair) if (result := p.result()) is not None]
    if failed or len(found) != 3:
        measurement.error = "; ".join(failed) or "a spin child printed no result"
        return measurement
    alone_s, *pair_s = (float(r["work_s"]) for r in found)
    measurement.work_s = alone_s
    measurement.wall_s = alone.wall_s
    measurement.parts = {"pair_s": max(pair_s), "cores": 2 * alone_s / max(pair_s)}
    return measurement


def contenders(setup: Setup, with_baseline: bool, baseline_once: bool) -> list[Contender]:
    """In the order they alternate within a round; the long baseline last."""
    rows = setup.workbook.rows

    def bind(function: Callable[[Setup, int], Measurement]) -> Callable[[int], Measurement]:
        return lambda run: function(setup, run)

    chosen = [
        Contender("datalakep_pg", "datalakep ingest -> PostgreSQL", "wall", rows,
                  bind(datalakep_postgres)),
        Contender("datalakep_duckdb", "datalakep ingest -> DuckDB", "wall", rows,
                  bind(datalakep_duckdb)),
        Contender("polars_adbc", "peer: polars(calamine) + write_database(adbc)", "wall", rows,
                  bind(polars_postgres)),
        Contender("polars_duckdb", "peer: polars(calamine) -> DuckDB", "wall", rows,
                  bind(polars_duckdb)),
        Contender("reader", "floor: fastexcel -> Arrow (read only)", "work", rows, bind(reader)),
        Contender("parallel_reader", "datalakeP's reader (isolated; parts on every core)", "work",
                  rows, bind(parallel_reader)),
        Contender("reader_parts", "its stages one after another (CPU s)", "work", rows,
                  bind(reader_parts), first_round_only=True),
        Contender("copy", "floor: psycopg COPY of the CSV", "work", rows, bind(copy)),
        Contender("host_cores", "host: cores two busy processes got", "work", 0,
                  bind(host_cores)),
    ]  # fmt: skip
    if with_baseline:
        label = "baseline: pandas(openpyxl) + to_sql(multi, 1000)"
        chosen.append(
            Contender("baseline", label, "wall", setup.baseline_workbook.rows, bind(baseline),
                      first_round_only=baseline_once)
        )  # fmt: skip
    return chosen


if __name__ == "__main__":
    raise SystemExit(_child_main(sys.argv[1:]))
