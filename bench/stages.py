"""Where one ``datalakep ingest`` spends its time, stage by stage, beside the polars peer.

``python -m bench.stages [--rows N] [--warehouse postgresql|duckdb] [--runs N]``
runs ``datalakep ingest`` of the benchmark's workbook as a fresh process (start-up
included, bytecode compiled as the benchmark has it) with a timer around each stage
of the parent and of the parser child, then the polars peer the same way (import,
read, write). Each line is one stage: the process, when it started (seconds since
the process was spawned), its wall time and the CPU time the process spent during
it (all threads; the parent's extent scan, which runs on its own thread beside the
parse, is timed on that thread). Nested stages overlap their parents.

The timers wrap the stages from outside (as tests/support/crashing_worker.py
patches its seams): production code has no timing hooks. Installing them imports
both warehouse drivers, which the CLI would import later, for one of them: that
import is its own line. A stage whose function is renamed is reported missing,
never silently dropped.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.contenders import Setup, _cli_env, new_database, run_process
from bench.workbooks import CACHE, ROOT, TABLE, ensure_workbook

STAGE_PREFIX = "BENCH-STAGE "
# (module, attribute path, label): the stages timed in the parent and the child.
STAGES = (
    ("infrastructure.warehouse.factory", "warehouse_from_url", "warehouse adapter built"),
    ("infrastructure.readers.isolated", "_Process.fork", "fork the parser child"),
    ("infrastructure.readers.isolated", "_Child.open_workbook", "child opens the workbook"),
    ("infrastructure.readers.isolated", "_ChildWorkbook.preview", "preview (asks the child)"),
    ("infrastructure.readers.isolated", "check_extent", "extent scan (parent thread)"),
    ("application.ingest", "IngestPassengerFile._ingest_workbook", "route, read, validate, load"),
    ("infrastructure.warehouse.sql_warehouse", "SqlWarehouse.loaded_tables", "ledger: loaded?"),
    ("infrastructure.readers.isolated", "_ChildWorkbook.read", "read (asks the child), mapped"),
    ("infrastructure.readers.isolated", "_answer", "child: answer a request"),
    ("infrastructure.readers.isolated", "_hand_over", "child: Arrow IPC hand-over"),
    ("application.pipeline", "validate_sheet", "validation"),
    ("application.pipeline", "reject_duplicate_keys", "duplicate keys"),
    ("infrastructure.warehouse.sql_warehouse", "SqlWarehouse.ensure_table", "ensure_table"),
    ("infrastructure.warehouse.sql_warehouse", "SqlWarehouse.load", "load: lock, ledger, write"),
    ("infrastructure.warehouse.postgres_warehouse", "PostgresEngine.write_rows", "rows in (PG)"),
    ("infrastructure.warehouse.duckdb_warehouse", "DuckDbEngine.write_rows", "rows in (DuckDB)"),
    ("infrastructure.readers.isolated", "_Child.stop", "stop the child"),
    ("infrastructure.warehouse.sql_warehouse", "SqlWarehouse.close", "close the warehouse"),
)


# ------------------------------------------------------------------ child side


def _cpu(thread: bool) -> float:
    usage = resource.getrusage(resource.RUSAGE_THREAD if thread else resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _emit(t0: float, label: str, started: float, cpu: float, thread: bool) -> None:
    record = {
        "pid": os.getpid(),
        "stage": label,
        "start": round(started - t0, 4),
        "wall": round(time.time() - started, 4),
        "cpu": round(_cpu(thread) - cpu, 4),
    }
    print(STAGE_PREFIX + json.dumps(record), file=sys.stderr, flush=True)


def _timed(t0: float, label: str, f: Callable[..., Any]) -> Callable[..., Any]:
    thread = label.endswith("(parent thread)")

    @functools.wraps(f)
    def timed(*args: Any, **kwargs: Any) -> Any:
        started, cpu = time.time(), _cpu(thread)
        try:
            return f(*args, **kwargs)
        finally:
            _emit(t0, label, started, cpu, thread)

    return timed


def _install(t0: float) -> None:
    import importlib

    for module_name, path, label in STAGES:
        owner: Any = importlib.import_module(module_name)
        *parents, name = path.split(".")
        for parent in parents:
            owner = getattr(owner, parent, None)
        if owner is None or not hasattr(owner, name):
            print(f"{STAGE_PREFIX}{json.dumps({'stage': label, 'missing': path})}", file=sys.stderr)
            continue
        setattr(owner, name, _timed(t0, label, getattr(owner, name)))


def run_ingest(argv: list[str]) -> int:
    """``datalakep ingest ARGV`` in this process, its stages timed."""
    t0 = float(os.environ["BENCH_T0"])
    started, cpu = time.time(), _cpu(False)
    import entrypoints.cli as cli
    import entrypoints.containers  # noqa: F401 - timed here: the CLI imports it lazily

    _emit(t0, "import the CLI and its container", started, cpu, False)
    started, cpu = time.time(), _cpu(False)
    _install(t0)
    # Patching imports every module it patches, the warehouse drivers too (which
    # the CLI would import when it opens the warehouse): their import is here.
    _emit(t0, "timers installed (drivers imported)", started, cpu, False)
    started, cpu = time.time(), _cpu(False)
    code = cli.main(argv)
    _emit(t0, "cli.main", started, cpu, False)
    _emit(t0, "process so far", t0, 0.0, False)
    return code


def run_peer(argv: list[str]) -> int:
    """bench/peers' polars scripts, their three steps timed: import, read, write."""
    t0 = float(os.environ["BENCH_T0"])
    xlsx, target, table, engine = argv
    started, cpu = time.time(), _cpu(False)
    import polars as pl

    _emit(t0, "peer: import polars", started, cpu, False)
    started, cpu = time.time(), _cpu(False)
    frame = pl.read_excel(xlsx, engine="calamine")
    _emit(t0, "peer: read_excel (calamine)", started, cpu, False)
    started, cpu = time.time(), _cpu(False)
    if engine == "postgresql":
        frame.write_database(table, target, engine="adbc")
    else:
        import duckdb

        with duckdb.connect(target) as con:
            con.execute(f'CREATE TABLE "{table}" AS SELECT * FROM frame')
    _emit(t0, f"peer: write ({engine})", started, cpu, False)
    _emit(t0, "process so far", t0, 0.0, False)
    return 0


# ----------------------------------------------------------------- parent side


def _stages(argv: list[str], env: dict[str, str], cwd: Path) -> list[dict[str, Any]]:
    env = {**env, "PYTHONPATH": str(ROOT), "BENCH_T0": repr(time.time())}
    process = run_process([sys.executable, "-m", "bench.stages", *argv], cwd=cwd, env=env)
    if process.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed: {process.failure()}")
    found = [
        json.loads(line.removeprefix(STAGE_PREFIX))
        for line in process.stderr.splitlines()
        if line.startswith(STAGE_PREFIX)
    ]
    parent = os.getpid()
    pids = sorted({r["pid"] for r in found if "pid" in r} - {parent})
    names = {pid: ("parent" if n == 0 else "child") for n, pid in enumerate(pids)}
    for record in found:
        record["process"] = names.get(record.get("pid", 0), "?")
    found.append({"stage": "process wall (spawn to reap)", "process": "all",
                  "start": 0.0, "wall": round(process.wall_s, 4), "cpu": None})  # fmt: skip
    return found


def _print(title: str, records: list[dict[str, Any]]) -> None:
    print(f"\n{title}")
    print(f"{'stage':<36} {'process':<7} {'start s':>8} {'wall s':>7} {'CPU s':>7}")
    for r in sorted(records, key=lambda r: (r.get("start", 0.0), -r.get("wall", 0.0))):
        if "missing" in r:
            print(f"{r['stage']:<36} missing: {r['missing']}")
            continue
        cpu = "-" if r["cpu"] is None else f"{r['cpu']:.3f}"
        print(f"{r['stage']:<36} {r['process']:<7} {r['start']:>8.3f} {r['wall']:>7.3f} {cpu:>7}")


def main(argv: list[str]) -> int:
    if argv[:1] == ["ingest"]:
        return run_ingest(argv)
    if argv[:1] == ["peer"]:
        return run_peer(argv[1:])
    from devtools.postgres import start_postgres, stop_postgres

    parser = argparse.ArgumentParser(prog="python -m bench.stages")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--warehouse", choices=("postgresql", "duckdb"), default="postgresql")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args(argv)
    workbook = ensure_workbook(args.rows)
    scratch = Path(tempfile.mkdtemp(prefix="stages-", dir=CACHE))
    server = start_postgres() if args.warehouse == "postgresql" else None
    try:
        for run in range(1, args.runs + 1):
            print(f"\nrun {run}, load average {os.getloadavg()[0]:.2f}")
            if server is not None:
                setup = Setup(server, workbook, workbook, scratch, None)
                target = new_database(setup, "stages")[1]
                peer_target = new_database(setup, "stages_peer")[1]
            else:
                target = f"duckdb:///{scratch / f'dlp-{run}.duckdb'}"
                peer_target = str(scratch / f"peer-{run}.duckdb")
            ingest = ["ingest", str(workbook.xlsx), "--warehouse", target, "--json"]
            _print("datalakep ingest", _stages(ingest, _cli_env(), scratch))
            peer = ["peer", str(workbook.xlsx), peer_target, TABLE, args.warehouse]
            _print("polars peer", _stages(peer, dict(os.environ), scratch))
    finally:
        if server is not None:
            stop_postgres(server)
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
