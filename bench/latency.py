"""Small-file latency: Kaggle's train.csv (891 rows) as .xlsx, warm in Lambda and cold in the CLI.

Small files are the common case in Lambda, where start-up is paid once per
container and every later invocation pays only the ingest itself. Two figures:

- **warm**: one child process imports ``entrypoints.lambda_handler`` (which builds
  its container, as Lambda's init phase does), swaps its S3 file source and S3
  reports for the local ones, and runs the container's ingest use case on the
  workbook again and again, timing each call with ``perf_counter``. Every call
  gets a copy of the file under a new path: the ledger keys on path and content,
  so the same path would be skipped as already loaded. The first call pays what a
  container's first invocation pays (the connection, CREATE TABLE, lazy imports)
  and is reported apart; the median is over the rest, each an upsert of the 891
  rows into the table the earlier calls filled, which is the steady state of a
  warm container. The handler's event parsing is not in the loop: an S3 event
  names an object, which a local file source cannot fetch.
- **cold**: ``datalakep ingest`` of the same workbook as a fresh process into a
  fresh database, wall time from spawn to exit, as for the big contenders.

``python -m bench.latency profile`` runs the warm loop under pyinstrument (wall
time, waits on the parser child included) or, with ``--cpu``, under cProfile on
CPU time in the parent and in every parser child, and prints where the time goes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, Protocol

from bench.contenders import (
    RESULT_PREFIX,
    Measurement,
    Setup,
    cli_into_duckdb,
    cli_into_postgres,
    count_and_drop,
    count_duckdb,
    new_database,
    python_child,
)
from bench.workbooks import ROOT, Workbook

CONFIG = ROOT / "config" / "datalakep.yaml"
WARM_RUNS = 20
COLD_RUNS = 5
# pyinstrument's sampling interval: fine enough for a 50 ms call.
PROFILE_INTERVAL_S = 0.0005


# ------------------------------------------------------------------ child side


def child_warm(args: dict[str, Any]) -> dict[str, Any]:
    """The warm loop in this process; see the module docstring."""
    os.environ["DATALAKEP_WAREHOUSE"] = args["url"]
    os.environ["DATALAKEP_CONFIG"] = args["config"]
    # The handler's container refuses to start without an allow-list; the warm loop
    # reads local files, so the bucket it names is never consulted.
    os.environ["DATALAKEP_ALLOWED_SOURCES"] = "bench-latency/"
    start = time.perf_counter()
    import entrypoints.lambda_handler as handler

    init_s = time.perf_counter() - start
    from dependency_injector import providers

    from application.results import IngestFile
    from entrypoints.containers import build_local_files, build_local_reports

    container = handler.container
    container.files.override(providers.Singleton(build_local_files))
    container.reports.override(providers.Singleton(build_local_reports, args["reports"]))
    profiler: _Profile | None = None
    seconds: list[float] = []
    cpu: list[float] = []
    # The parent's share and the parser child's (reaped within the call).
    own: list[float] = []
    children: list[float] = []
    loaded: list[int] = []
    problems: list[str] = []
    for number, path in enumerate(args["copies"]):
        if number == 1 and args.get("profile"):
            # The child kept since the first call runs unprofiled code: the next is forked.
            container.reader().close()
            profiler = _CpuProfile() if args.get("profile_cpu") else _WallProfile()
        # Sampled outside each other: reading /proc for the children costs the parent CPU.
        start_children = _children_cpu_s()
        start_own, start = _own_cpu_s(), time.perf_counter()
        result = container.ingest().execute(IngestFile(path))
        seconds.append(time.perf_counter() - start)
        own.append(_own_cpu_s() - start_own)
        children.append(_children_cpu_s() - start_children)
        cpu.append(own[-1] + children[-1])
        loaded.append(sum(s.rows_loaded for s in result.sheets))
        problems += [f"{s.sheet}: {s.status} {s.error or ''}" for s in result.sheets
                     if s.status != "loaded"]  # fmt: skip
    # First: the parser child kept between calls leaves, and dumps its profile, here.
    container.shutdown_resources()
    if profiler is not None:
        Path(args["profile"]).write_text(profiler.stop())
    return {
        "init_s": init_s,
        "runs_s": seconds,
        "cpu_s": cpu,
        "parent_cpu_s": own,
        "child_cpu_s": children,
        "loaded": loaded,
        "problems": problems,
    }


class _Profile(Protocol):
    def stop(self) -> str: ...


class _WallProfile:
    """pyinstrument over the calls: where the wall time goes, waits on the child included."""

    def __init__(self) -> None:
        from pyinstrument import Profiler

        self._profiler = Profiler(interval=PROFILE_INTERVAL_S)
        self._profiler.start()

    def stop(self) -> str:
        self._profiler.stop()
        return str(self._profiler.output_text(unicode=False, show_all=False))


class _CpuProfile:
    """cProfile on CPU time, in this process and in every parser child forked meanwhile.

    The child leaves with ``os._exit``, so each one dumps its statistics just
    before (a child kept between files, when the container shuts down); the report
    merges them. CPU time is what a call costs when a core is
    free, whatever else the machine is doing.
    """

    def __init__(self) -> None:
        import cProfile

        import infrastructure.readers.isolated as isolated

        self._folder = Path(tempfile.mkdtemp(prefix="child-profiles-"))
        serve = isolated._child_main
        folder = self._folder

        def profiled(*args: Any) -> None:
            profile = cProfile.Profile(time.process_time)
            leave = os._exit

            def dump_and_leave(status: int) -> NoReturn:
                profile.disable()
                profile.dump_stats(str(folder / f"{os.getpid()}.prof"))
                leave(status)

            # Patched in the child only: it is the forked copy's os module.
            setattr(os, "_exit", dump_and_leave)  # noqa: B010
            profile.enable()
            serve(*args)

        setattr(isolated, "_child_main", profiled)  # noqa: B010
        self._parent = cProfile.Profile(time.process_time)
        self._parent.enable()

    def stop(self) -> str:
        import io
        import pstats

        self._parent.disable()
        out = io.StringIO()
        out.write("parent (cumulative CPU seconds over all calls)\n")
        pstats.Stats(self._parent, stream=out).sort_stats("cumulative").print_stats(45)
        pstats.Stats(self._parent, stream=out).sort_stats("tottime").print_stats(25)
        children = sorted(self._folder.glob("*.prof"))
        out.write(f"parser children ({len(children)}, merged)\n")
        if children:
            merged = pstats.Stats(str(children[0]), stream=out)
            for child in children[1:]:
                merged.add(str(child))
            merged.sort_stats("cumulative").print_stats(30)
        shutil.rmtree(self._folder, ignore_errors=True)
        return out.getvalue()


def _own_cpu_s() -> float:
    """CPU seconds of this process so far.

    On a machine shared with other work, wall time includes waiting for a core;
    CPU time does not, so it says what a call costs when a core is free.
    """
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def _children_cpu_s() -> float:
    """CPU seconds of this process's children so far: the reaped ones, and the live
    ones (the parser child the reader keeps between files)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return children.ru_utime + children.ru_stime + sum(map(_live_cpu_s, _live_children()))


def _live_children() -> list[int]:
    return [
        int(pid)
        for task in Path("/proc/self/task").iterdir()
        for pid in (task / "children").read_text().split()
    ]


def _live_cpu_s(pid: int) -> float:
    """A live process's CPU seconds, to the nanosecond (/proc/PID/stat counts in ticks)."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0  # gone meanwhile: reaped, and counted by getrusage from now on


# ----------------------------------------------------------------- parent side


@dataclass(frozen=True)
class ProfileRequest:
    """Profile the warm calls after the first into ``report``: wall (pyinstrument) or CPU."""

    report: Path
    cpu: bool = False


def _copies(setup: Setup, workbook: Workbook, count: int) -> list[str]:
    folder = Path(tempfile.mkdtemp(prefix="warm-", dir=setup.scratch))
    copies = []
    for number in range(count):
        target = folder / f"{number:03d}" / workbook.xlsx.name
        target.parent.mkdir()
        shutil.copyfile(workbook.xlsx, target)
        copies.append(str(target))
    return copies


def _warm(
    setup: Setup,
    workbook: Workbook,
    name: str,
    url: str,
    runs: int,
    profile: ProfileRequest | None,
) -> Measurement:
    measurement = Measurement(name, 1, workbook.rows)
    args = {
        "url": url,
        "config": str(CONFIG),
        "copies": _copies(setup, workbook, runs + 1),
        "reports": str(setup.scratch / "warm-rejects"),
        "profile": str(profile.report) if profile else None,
        "profile_cpu": profile.cpu if profile else False,
    }
    process = python_child(setup, "warm", args, module="bench.latency")
    measurement.peak_rss_mb = process.peak_rss_mb
    measurement.major_faults = process.major_faults
    measurement.error = process.failure()
    result = process.result()
    if result is None:
        measurement.error = measurement.error or "the child printed no result"
        return measurement
    first, *warm = result["runs_s"]
    measurement.wall_s = statistics.median(warm)
    measurement.parts = {
        "first_s": first,
        "init_s": result["init_s"],
        "min_s": min(warm),
        "max_s": max(warm),
        "cpu_s": statistics.median(result["cpu_s"][1:]),
        "parent_cpu_s": statistics.median(result["parent_cpu_s"][1:]),
        "child_cpu_s": statistics.median(result["child_cpu_s"][1:]),
    }
    wrong = [n for n in result["loaded"] if n != workbook.rows]
    if result["problems"] or wrong:
        measurement.error = f"runs not loaded in full: {result['problems'] or wrong}"
    return measurement


def warm_duckdb(
    setup: Setup, workbook: Workbook, runs: int, profile: ProfileRequest | None = None
) -> Measurement:
    path = setup.scratch / f"warm-{uuid.uuid4().hex[:10]}.duckdb"
    measurement = _warm(setup, workbook, "warm_lambda_duckdb", f"duckdb:///{path}", runs, profile)
    # Every run upserted the same 891 keys: the table holds them once.
    count_duckdb(setup, measurement, path)
    return measurement


def warm_postgres(
    setup: Setup, workbook: Workbook, runs: int, profile: ProfileRequest | None = None
) -> Measurement:
    database, url = new_database(setup, "warm")
    measurement = _warm(setup, workbook, "warm_lambda_pg", url, runs, profile)
    count_and_drop(setup, measurement, database, url)
    return measurement


def cold_duckdb(setup: Setup, workbook: Workbook, run: int) -> Measurement:
    return cli_into_duckdb(setup, "cold_cli_duckdb", run, workbook)


def cold_postgres(setup: Setup, workbook: Workbook, run: int) -> Measurement:
    return cli_into_postgres(setup, "cold_cli_pg", run, workbook)


def plan(
    setup: Setup, workbook: Workbook, warm_runs: int, cold_runs: int
) -> list[tuple[str, int, Callable[[int], Measurement]]]:
    """(name, run, measure) in order: warm DuckDB and PostgreSQL, then the cold CLI
    alternating between them."""
    steps: list[tuple[str, int, Callable[[int], Measurement]]] = [
        ("warm_lambda_duckdb", 1, lambda _: warm_duckdb(setup, workbook, warm_runs)),
        ("warm_lambda_pg", 1, lambda _: warm_postgres(setup, workbook, warm_runs)),
    ]
    for run in range(1, cold_runs + 1):
        steps.append(("cold_cli_duckdb", run, lambda n: cold_duckdb(setup, workbook, n)))
        steps.append(("cold_cli_pg", run, lambda n: cold_postgres(setup, workbook, n)))
    return steps


# ------------------------------------------------------------- entry points


def _profile(argv: list[str]) -> int:
    """Where a warm call's time goes: the warm loop under a profiler, printed."""
    from bench.workbooks import CACHE, ensure_kaggle_train
    from devtools.postgres import start_postgres, stop_postgres

    parser = argparse.ArgumentParser(prog="python -m bench.latency profile")
    parser.add_argument("--warehouse", choices=("duckdb", "postgresql"), default="duckdb")
    parser.add_argument("--runs", type=int, default=WARM_RUNS)
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="cProfile on CPU time, the parser children included, instead of pyinstrument",
    )
    args = parser.parse_args(argv)
    workbook = ensure_kaggle_train()
    scratch = Path(tempfile.mkdtemp(prefix="profile-", dir=CACHE))
    server = start_postgres()
    try:
        setup = Setup(server, workbook, workbook, scratch, None)
        report = scratch / "profile.txt"
        warm = warm_postgres if args.warehouse == "postgresql" else warm_duckdb
        measurement = warm(setup, workbook, args.runs, ProfileRequest(report, args.cpu))
        print(report.read_text() if report.exists() else "(no profile written)")
        print(f"median {measurement.wall_s}, {measurement.parts}, error={measurement.error}")
    finally:
        stop_postgres(server)
        shutil.rmtree(scratch, ignore_errors=True)
    return 0 if measurement.ok else 1


def _measure(argv: list[str]) -> int:
    """The warm and cold figures alone, without the big contenders: for before/after."""
    from bench.workbooks import CACHE, ensure_kaggle_train
    from devtools.postgres import start_postgres, stop_postgres

    parser = argparse.ArgumentParser(prog="python -m bench.latency measure")
    parser.add_argument("--runs", type=int, default=WARM_RUNS)
    parser.add_argument("--cold", type=int, default=COLD_RUNS)
    args = parser.parse_args(argv)
    workbook = ensure_kaggle_train()
    scratch = Path(tempfile.mkdtemp(prefix="measure-", dir=CACHE))
    server = start_postgres()
    failed = False
    try:
        setup = Setup(server, workbook, workbook, scratch, None)
        for name, run, measure in plan(setup, workbook, args.runs, args.cold):
            measurement = measure(run)
            failed = failed or not measurement.ok
            print(f"{name} #{run}: {measurement.wall_s} {measurement.parts or ''} "
                  f"error={measurement.error}", flush=True)  # fmt: skip
    finally:
        stop_postgres(server)
        shutil.rmtree(scratch, ignore_errors=True)
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["warm"]:
        result = child_warm(json.loads(argv[1]))
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return 0
    if argv[:1] == ["profile"]:
        return _profile(argv[1:])
    if argv[:1] == ["measure"]:
        return _measure(argv[1:])
    print("usage: python -m bench.latency profile [--warehouse duckdb|postgresql] [--runs N] "
          "[--cpu]\n       python -m bench.latency measure [--runs N] [--cold N]",
          file=sys.stderr)  # fmt: skip
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
