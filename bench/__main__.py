"""``python -m bench``: datalakep ingest against the pandas baseline and the floor.

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
from pathlib import Path

from bench.contenders import Measurement, Setup, contenders, noop
from bench.contenders import postgres_version as postgres_version_of
from bench.report import Figures, print_table, summarise
from bench.workbooks import CACHE, ensure_workbook

DEFAULT_ROWS = 100_000
FULL_ROWS = 1_000_000
SMOKE_ROWS = 20_000
SMOKE_BASELINE_ROWS = 5_000
SMOKE_TIMEOUT_S = 120.0
# Above this many rows one round is the default: the baseline alone takes
# about 6 minutes at 1M rows.
MANY_ROWS = 500_000
XLSX_MAX_ROWS = 1_048_575
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scripts/bench",
        description="Time datalakep ingest (PostgreSQL, DuckDB) against pandas+to_sql and "
        "the floor (fastexcel read + COPY); each contender in its own process.",
    )
    parser.add_argument("--rows", type=int, help=f"rows in the workbook (default {DEFAULT_ROWS:,})")
    parser.add_argument("--full", action="store_true", help=f"--rows {FULL_ROWS:,}")
    parser.add_argument(
        "--repeat", type=int, help=f"rounds; the median counts (default 3, 1 from {MANY_ROWS:,})"
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
        "--smoke",
        action="store_true",
        help=f"CI check: {SMOKE_ROWS:,} rows, 1 round, baseline on {SMOKE_BASELINE_ROWS:,} rows; "
        "fails only if a contender fails or loads a wrong row count",
    )
    parser.add_argument(
        "--timeout", type=float, metavar="S", help="kill a child after S seconds (smoke: 120)"
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object on stdout (table on stderr)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.full and args.rows is not None:
        parser.error("--full and --rows are exclusive")
    rows = FULL_ROWS if args.full else args.rows
    if rows is None:
        rows = SMOKE_ROWS if args.smoke else DEFAULT_ROWS
    repeat = args.repeat or (1 if args.smoke or rows >= MANY_ROWS else 3)
    baseline_rows = args.baseline_rows
    if baseline_rows is None and args.smoke:
        baseline_rows = SMOKE_BASELINE_ROWS
    timeout = args.timeout or (SMOKE_TIMEOUT_S if args.smoke else None)
    if not 1 <= rows <= XLSX_MAX_ROWS:
        parser.error(f"--rows must be between 1 and {XLSX_MAX_ROWS:,} (one xlsx sheet)")
    if repeat < 1:
        parser.error("--repeat must be at least 1")
    if baseline_rows is not None and not 1 <= baseline_rows <= rows:
        parser.error("--baseline-rows must be between 1 and --rows")
    with_baseline = not args.skip_baseline

    workbook = ensure_workbook(rows, args.seed)
    baseline_workbook = workbook
    if with_baseline and baseline_rows is not None and baseline_rows < rows:
        baseline_workbook = ensure_workbook(baseline_rows, args.seed, prefix_of=rows)
    # Every contender then reads from the page cache, the first one included.
    for path in {workbook.xlsx, workbook.csv, baseline_workbook.xlsx}:
        _warm(path)

    from tests.support.postgres import start_postgres, stop_postgres

    print(f"bench: {rows:,} rows, {repeat} round(s), {workbook.xlsx.name}", file=sys.stderr)
    server = start_postgres()
    scratch = Path(tempfile.mkdtemp(prefix="runs-", dir=CACHE))
    try:
        setup = Setup(server, workbook, baseline_workbook, scratch, timeout)
        postgres_version = postgres_version_of(setup)
        calibration = noop(setup, 0)
        chosen = contenders(setup, with_baseline)
        runs: dict[str, list[Measurement]] = {c.name: [] for c in chosen}
        for round_number in range(1, repeat + 1):
            for contender in chosen:
                measurement = _run(contender.run, contender.name, round_number)
                runs[contender.name].append(measurement)
                _progress(measurement, round_number, repeat)
    finally:
        stop_postgres(server)
        shutil.rmtree(scratch, ignore_errors=True)

    figures = {c.name: Figures(c, runs[c.name]) for c in chosen}
    settings = {
        "repeat": repeat,
        "seed": args.seed,
        "smoke": args.smoke,
        "skip_baseline": args.skip_baseline,
        "baseline_rows": baseline_workbook.rows if with_baseline else None,
        "workbook": workbook.xlsx.name,
        "workbook_bytes": workbook.stats.get("xlsx_bytes"),
        "workbook_stats": {k: v for k, v in workbook.stats.items() if k != "xlsx_bytes"},
    }
    parent_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    summary = summarise(rows, figures, calibration, settings, postgres_version, parent_rss_mb)
    table_out = sys.stderr if args.json else sys.stdout
    print(file=table_out)
    print_table(summary, figures, table_out)
    if args.json:
        print(json.dumps(summary, indent=1))
    return EXIT_FAILED if summary["failures"] else EXIT_OK


def _run(run: Callable[[int], Measurement], name: str, round_number: int) -> Measurement:
    try:
        return run(round_number)
    # A contender that crashes the harness (a database that would not be
    # created, a child that could not start) is recorded as failed, and the
    # others still run: the report then says which one broke and why.
    except Exception as error:  # noqa: BLE001
        return Measurement(name, round_number, 0, error=f"{type(error).__name__}: {error}")


def _progress(m: Measurement, round_number: int, repeat: int) -> None:
    seconds = m.work_s if m.contender in {"reader", "copy"} else m.wall_s
    what = f"{seconds:.2f} s" if seconds is not None else "-"
    rss = f"{m.peak_rss_mb:.0f} MB" if m.peak_rss_mb is not None else "-"
    rows = f"{m.rows_loaded:,} rows" if m.rows_loaded is not None else "no rows"
    status = "ok" if m.ok else f"FAILED: {m.error}"
    where = f"round {round_number}/{repeat} {m.contender:<16}"
    print(f"bench: {where} {what:>9} {rss:>8} {rows} {status}", file=sys.stderr, flush=True)


def _warm(path: Path) -> None:
    with path.open("rb") as handle:
        while handle.read(1 << 20):
            pass


if __name__ == "__main__":
    raise SystemExit(main())
