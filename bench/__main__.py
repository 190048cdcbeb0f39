"""``python -m bench``: datalakep ingest against its peers, the pandas baseline and the floor.

One invocation measures every contender on the same cached workbook, in rounds
(each round runs each contender once, in turn), so a machine that slows down
or speeds up mid-run skews them all alike rather than one. Targets are printed
as PASS/MISS and never fail the run; a contender that failed or loaded the wrong
number of rows does (exit 1), so a broken load can never pass for a fast one.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import latency
from bench.contenders import WORK_BASIS, Measurement, Setup, contenders, noop
from bench.contenders import postgres_version as postgres_version_of
from bench.report import (
    Figures,
    environment,
    issue_targets,
    print_footer,
    print_latency,
    print_table,
    print_targets,
    summarise,
    summarise_latency,
)
from bench.workbooks import CACHE, ensure_kaggle_train, ensure_workbook
from devtools.postgres import start_postgres, stop_postgres

DEFAULT_ROWS = 100_000
FULL_ROWS = 1_000_000
SMOKE_ROWS = 20_000
SMOKE_BASELINE_ROWS = 5_000
SMOKE_TIMEOUT_S = 120.0
# The smoke run checks that the warm Lambda path loads every row; the cold CLI
# is the datalakep contenders' code path on a smaller file, already covered.
SMOKE_WARM_RUNS = 1
SMOKE_COLD_RUNS = 0
# From this many rows the baseline runs in the first round only: it alone takes
# about 6 minutes at 1M rows.
MANY_ROWS = 500_000
XLSX_MAX_ROWS = 1_048_575
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scripts/bench",
        description="Time datalakep ingest (PostgreSQL, DuckDB) against the fastest scripts a "
        "user could write (polars + ADBC, polars -> DuckDB), pandas+to_sql and the floor "
        "(fastexcel read + COPY), each contender in its own process; then the 891-row "
        "latency, warm in a Lambda container and cold through the CLI.",
    )
    parser.add_argument("--rows", type=int, help=f"rows in the workbook (default {DEFAULT_ROWS:,})")
    parser.add_argument(
        "--full", action="store_true", help=f"{DEFAULT_ROWS:,} rows, then {FULL_ROWS:,} rows"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        help=f"rounds; the median counts (default 3; from {MANY_ROWS:,} rows the baseline "
        "runs in the first round only)",
    )
    parser.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    parser.add_argument("--skip-baseline", action="store_true", help="do not run pandas+to_sql")
    parser.add_argument(
        "--baseline-rows",
        type=int,
        metavar="K",
        help="time the baseline on the first K rows and extrapolate (default: all rows)",
    )
    parser.add_argument(
        "--skip-latency", action="store_true", help="do not measure the 891-row latency"
    )
    parser.add_argument(
        "--warm-runs",
        type=int,
        metavar="N",
        help=f"warm Lambda calls per warehouse, after a first one (default {latency.WARM_RUNS})",
    )
    parser.add_argument(
        "--cold-runs",
        type=int,
        metavar="N",
        help=f"cold CLI runs per warehouse, 0 for none (default {latency.COLD_RUNS})",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help=f"CI check: {SMOKE_ROWS:,} rows, 1 round, baseline on {SMOKE_BASELINE_ROWS:,} rows, "
        f"{SMOKE_WARM_RUNS} warm small-file call after the first, no cold CLI; fails only if "
        "a contender fails or loads a wrong row count",
    )
    parser.add_argument(
        "--timeout", type=float, metavar="S", help="kill a child after S seconds (smoke: 120)"
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object on stdout (tables on stderr)"
    )
    return parser


@dataclass(frozen=True)
class _Plan:
    """The run's settings, each resolved once from the flags and the mode's defaults."""

    sizes: list[int]
    repeat: int
    baseline_rows: int | None
    timeout: float | None
    warm_runs: int
    cold_runs: int


def _plan(parser: argparse.ArgumentParser, args: argparse.Namespace) -> _Plan:
    if args.full and args.rows is not None:
        parser.error("--full and --rows are exclusive")
    if args.full:
        sizes = [DEFAULT_ROWS, FULL_ROWS]
    else:
        sizes = [args.rows or (SMOKE_ROWS if args.smoke else DEFAULT_ROWS)]
    smoke = args.smoke
    baseline_rows = args.baseline_rows
    if baseline_rows is None and smoke:
        baseline_rows = SMOKE_BASELINE_ROWS
    cold_runs = args.cold_runs
    if cold_runs is None:
        cold_runs = SMOKE_COLD_RUNS if smoke else latency.COLD_RUNS
    plan = _Plan(
        sizes=sizes,
        repeat=args.repeat or (1 if smoke else 3),
        baseline_rows=baseline_rows,
        timeout=args.timeout or (SMOKE_TIMEOUT_S if smoke else None),
        warm_runs=args.warm_runs or (SMOKE_WARM_RUNS if smoke else latency.WARM_RUNS),
        cold_runs=cold_runs,
    )
    if not all(1 <= rows <= XLSX_MAX_ROWS for rows in sizes):
        parser.error(f"--rows must be between 1 and {XLSX_MAX_ROWS:,} (one xlsx sheet)")
    if min(plan.repeat, plan.warm_runs) < 1 or cold_runs < 0:
        parser.error("--repeat and --warm-runs must be at least 1, --cold-runs at least 0")
    if baseline_rows is not None and not 1 <= baseline_rows <= max(sizes):
        parser.error("--baseline-rows must be between 1 and --rows")
    return plan


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    plan = _plan(parser, args)
    sizes, repeat, baseline_rows = plan.sizes, plan.repeat, plan.baseline_rows
    timeout, warm_runs, cold_runs = plan.timeout, plan.warm_runs, plan.cold_runs
    with_baseline = not args.skip_baseline

    inputs = []
    for rows in sizes:
        workbook = ensure_workbook(rows, args.seed)
        baseline_workbook = workbook
        if with_baseline and baseline_rows is not None and baseline_rows < rows:
            baseline_workbook = ensure_workbook(baseline_rows, args.seed, prefix_of=rows)
        inputs.append((workbook, baseline_workbook))
    small = None if args.skip_latency else ensure_kaggle_train()
    # Every contender then reads from the page cache, the first one included.
    for workbook, baseline_workbook in inputs:
        for path in {workbook.xlsx, workbook.csv, baseline_workbook.xlsx}:
            _warm(path)

    server = start_postgres()
    scratch = Path(tempfile.mkdtemp(prefix="runs-", dir=CACHE))
    sizes_out: list[dict[str, Any]] = []
    all_figures: list[dict[str, Figures]] = []
    latency_out: dict[str, Any] | None = None
    try:
        first = Setup(server, *inputs[0], scratch, timeout)
        postgres_version = postgres_version_of(first)
        calibration = noop(first, 0)
        for workbook, baseline_workbook in inputs:
            setup = Setup(server, workbook, baseline_workbook, scratch, timeout)
            figures = _rounds(setup, with_baseline, repeat)
            settings = {
                "repeat": repeat,
                "baseline_rows": baseline_workbook.rows if with_baseline else None,
                "workbook": workbook.xlsx.name,
                "workbook_bytes": workbook.stats.get("xlsx_bytes"),
                "workbook_stats": {k: v for k, v in workbook.stats.items() if k != "xlsx_bytes"},
            }
            sizes_out.append(summarise(workbook.rows, figures, calibration, settings))
            all_figures.append(figures)
        if small is not None:
            print(f"bench: small file {small.xlsx.name}, {small.rows} rows", file=sys.stderr)
            setup = Setup(server, small, small, scratch, timeout)
            found = []
            for name, run, measure in latency.plan(setup, small, warm_runs, cold_runs):
                found.append(_run(measure, name, run))
                _progress(found[-1], run, cold_runs if name.startswith("cold") else 1)
            latency_out = summarise_latency(found)
    finally:
        stop_postgres(server)
        shutil.rmtree(scratch, ignore_errors=True)

    parent_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    summary: dict[str, Any] = {
        "targets": issue_targets(sizes_out, latency_out),
        "sizes": sizes_out,
        "latency": latency_out,
        "failures": [f for s in sizes_out for f in s["failures"]]
        + (latency_out["failures"] if latency_out else []),
        "settings": {
            "seed": args.seed,
            "smoke": args.smoke,
            "skip_baseline": args.skip_baseline,
            "warm_runs": warm_runs if small else None,
            "cold_runs": cold_runs if small else None,
        },
        **environment(postgres_version, parent_rss_mb),
    }
    table_out = sys.stderr if args.json else sys.stdout
    for size, figures in zip(sizes_out, all_figures, strict=True):
        print(file=table_out)
        print_table(size, figures, table_out)
    if latency_out is not None:
        print_latency(latency_out, table_out)
    print_targets("the performance issue's targets (reported, never asserted)",
                  summary["targets"], table_out)  # fmt: skip
    print_footer(summary, table_out)
    if args.json:
        print(json.dumps(summary, indent=1))
    return EXIT_FAILED if summary["failures"] else EXIT_OK


def _rounds(setup: Setup, with_baseline: bool, repeat: int) -> dict[str, Figures]:
    """Every contender once per round, in turn; the medians over the rounds."""
    rows = setup.workbook.rows
    print(f"bench: {rows:,} rows, {repeat} round(s), {setup.workbook.xlsx.name}", file=sys.stderr)
    chosen = contenders(setup, with_baseline, baseline_once=rows >= MANY_ROWS)
    runs: dict[str, list[Measurement]] = {c.name: [] for c in chosen}
    for round_number in range(1, repeat + 1):
        for contender in chosen:
            if contender.first_round_only and round_number > 1:
                continue
            measurement = _run(contender.run, contender.name, round_number)
            runs[contender.name].append(measurement)
            _progress(measurement, round_number, repeat)
    return {c.name: Figures(c, runs[c.name]) for c in chosen}


def _run(run: Callable[[int], Measurement], name: str, round_number: int) -> Measurement:
    try:
        return run(round_number)
    # A contender that crashes the harness (a database that would not be
    # created, a child that could not start) is recorded as failed, and the
    # others still run: the report then says which one broke and why.
    except Exception as error:  # noqa: BLE001
        return Measurement(name, round_number, 0, error=f"{type(error).__name__}: {error}")


def _progress(m: Measurement, round_number: int, repeat: int) -> None:
    seconds = m.work_s if m.contender in WORK_BASIS else m.wall_s
    what = f"{seconds:.2f} s" if seconds is not None else "-"
    rss = f"{m.peak_rss_mb:.0f} MB" if m.peak_rss_mb is not None else "-"
    rows = f"{m.rows_loaded:,} rows" if m.rows_loaded is not None else "no rows"
    status = "ok" if m.ok else f"FAILED: {m.error}"
    where = f"round {round_number}/{repeat} {m.contender:<18}"
    print(f"bench: {where} {what:>9} {rss:>8} {rows} {status}", file=sys.stderr, flush=True)


def _warm(path: Path) -> None:
    with path.open("rb") as handle:
        while handle.read(1 << 20):
            pass


if __name__ == "__main__":
    raise SystemExit(main())
