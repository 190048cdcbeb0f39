"""Medians, targets, the printed table and the JSON object.

The figures' bases, stated once:

- ``datalakep_s``, ``duckdb_s`` and ``baseline_s`` are whole-process wall times
  (start-up and imports included): each is a program a user runs.
- ``reader_s`` and ``copy_s`` are the timed work inside their child (no interpreter
  start, no imports, no connection set-up): ``floor_s = reader_s + copy_s`` is a
  lower bound no loader can beat, so ``ratio_to_floor`` includes datalakep's own
  start-up cost, which matters at 100k rows and much less at 1M.
- Times are medians over the runs; peak RSS is the largest over the runs, in MiB:
  each child's own ``ru_maxrss``, or for a program that forks (datalakep parses in
  a child process) the sampled PSS sum of its process tree when that is larger
  (bench/memory.py). Linux's exec carries the parent's RSS
  high-water mark into the child's, so the parent stays small (about 25 MB: no
  pyarrow, pandas or psycopg in it) and reports its own peak beside the figures.
- A baseline measured on a prefix of K rows is extrapolated as its fixed cost
  (process wall minus timed work) plus its timed work scaled by rows / K.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from typing import Any, TextIO

from bench.contenders import Contender, Measurement
from bench.workbooks import ROOT

SPEEDUP_TARGET = 25.0
FLOOR_RATIO_TARGET = 1.5
RSS_VS_READER_TARGET = 1.2
RSS_SMALL_ROWS = 100_000
RSS_SMALL_TARGET_MB = 300.0


@dataclass(frozen=True)
class Figures:
    """One contender's summary over its successful runs."""

    contender: Contender
    runs: list[Measurement]

    @property
    def good(self) -> list[Measurement]:
        return [m for m in self.runs if m.ok]

    def _median(self, values: Sequence[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return statistics.median(present) if present else None

    @property
    def seconds(self) -> float | None:
        """The figure that counts, on this contender's basis."""
        if self.contender.basis == "work":
            return self.work_s
        return self.wall_s

    @property
    def wall_s(self) -> float | None:
        return self._median([m.wall_s for m in self.good])

    @property
    def work_s(self) -> float | None:
        return self._median([m.work_s for m in self.good])

    @property
    def peak_rss_mb(self) -> float | None:
        values = [m.peak_rss_mb for m in self.good if m.peak_rss_mb is not None]
        return max(values) if values else None

    def part(self, name: str) -> float | None:
        return self._median([m.parts.get(name) for m in self.good])


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _git() -> str | None:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return None
    return f"{rev}{'+dirty' if dirty else ''}" if rev else None


def _versions() -> dict[str, str]:
    found: dict[str, str] = {}
    for package in ("datalakep", "fastexcel", "pyarrow", "duckdb", "psycopg", "pandas",
                    "openpyxl", "sqlalchemy"):  # fmt: skip
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return found


def summarise(
    rows: int,
    figures: dict[str, Figures],
    calibration: Measurement | None,
    settings: dict[str, Any],
    postgres_version: str | None,
    parent_rss_mb: float,
) -> dict[str, Any]:
    """The JSON object: the required keys first, then everything needed to trust them."""

    def get(name: str) -> Figures | None:
        return figures.get(name)

    pg, duck, read, copy, base = (get(n) for n in ("datalakep_pg", "datalakep_duckdb", "reader",
                                                   "copy", "baseline"))  # fmt: skip
    datalakep_s = pg.seconds if pg else None
    duckdb_s = duck.seconds if duck else None
    reader_s = read.seconds if read else None
    copy_s = copy.seconds if copy else None
    floor_s = reader_s + copy_s if reader_s is not None and copy_s is not None else None

    baseline_s = baseline_measured_s = None
    baseline_rows = None
    extrapolated = False
    if base and base.wall_s is not None:
        baseline_rows = base.contender.rows
        baseline_measured_s = base.wall_s
        baseline_s = base.wall_s
        if baseline_rows < rows and base.work_s is not None:
            extrapolated = True
            fixed = base.wall_s - base.work_s
            baseline_s = fixed + base.work_s * rows / baseline_rows

    peak = pg.peak_rss_mb if pg else None
    reader_peak = read.peak_rss_mb if read else None
    summary: dict[str, Any] = {
        "rows": rows,
        "datalakep_s": _round(datalakep_s),
        "baseline_s": _round(baseline_s),
        "floor_s": _round(floor_s),
        "speedup_vs_baseline": _round(_ratio(baseline_s, datalakep_s), 2),
        "ratio_to_floor": _round(_ratio(datalakep_s, floor_s), 2),
        "peak_rss_mb": _round(peak, 1),
        "reader_peak_rss_mb": _round(reader_peak, 1),
        "duckdb_s": _round(duckdb_s),
        "duckdb_peak_rss_mb": _round(duck.peak_rss_mb if duck else None, 1),
        "baseline_peak_rss_mb": _round(base.peak_rss_mb if base else None, 1),
        "reader_s": _round(reader_s),
        "copy_s": _round(copy_s),
        "baseline_extrapolated": extrapolated,
        "baseline_measured_rows": baseline_rows,
        "baseline_measured_s": _round(baseline_measured_s),
        "baseline_read_s": _round(base.part("read_s") if base else None),
        "baseline_write_s": _round(base.part("write_s") if base else None),
        "reader_process_s": _round(read.wall_s if read else None),
        "copy_process_s": _round(copy.wall_s if copy else None),
        "python_start_s": _round(calibration.wall_s if calibration else None),
        "python_start_rss_mb": _round(calibration.peak_rss_mb if calibration else None, 1),
        "bench_parent_rss_mb": _round(parent_rss_mb, 1),
        "rows_per_s": {
            name: round(f.contender.rows / f.seconds) for name, f in figures.items() if f.seconds
        },
        "runs": {
            name: [
                {
                    "wall_s": _round(m.wall_s),
                    "work_s": _round(m.work_s),
                    "peak_rss_mb": _round(m.peak_rss_mb, 1),
                    "rows_loaded": m.rows_loaded,
                    "error": m.error,
                }
                for m in f.runs
            ]
            for name, f in figures.items()
        },
        "failures": [
            f"{m.contender} run {m.run}: {m.error}"
            for f in figures.values()
            for m in f.runs
            if not m.ok
        ],
        "settings": settings,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "postgres": postgres_version,
        },
        "versions": _versions(),
        "git": _git(),
    }
    summary["targets"] = _targets(summary)
    return summary


def _target(value: float | None, limit: float, at_least: bool) -> str:
    if value is None:
        return "n/a"
    ok = value >= limit if at_least else value <= limit
    return "PASS" if ok else "MISS"


def _targets(s: dict[str, Any]) -> list[dict[str, Any]]:
    rss_vs_reader = _ratio(s["peak_rss_mb"], s["reader_peak_rss_mb"])
    duck_vs_pg = _ratio(s["duckdb_s"], s["datalakep_s"])
    targets = [
        {
            "target": f"speed vs baseline >= {SPEEDUP_TARGET:g}x",
            "value": s["speedup_vs_baseline"],
            "unit": "x" + (" (baseline extrapolated)" if s["baseline_extrapolated"] else ""),
            "status": _target(s["speedup_vs_baseline"], SPEEDUP_TARGET, at_least=True),
        },
        {
            "target": f"time vs floor <= {FLOOR_RATIO_TARGET:g}x",
            "value": s["ratio_to_floor"],
            "unit": "x",
            "status": _target(s["ratio_to_floor"], FLOOR_RATIO_TARGET, at_least=False),
        },
        {
            "target": f"peak RSS vs reader's <= {RSS_VS_READER_TARGET:g}x",
            "value": _round(rss_vs_reader, 2),
            "unit": "x",
            "status": _target(rss_vs_reader, RSS_VS_READER_TARGET, at_least=False),
        },
    ]
    if s["rows"] <= RSS_SMALL_ROWS:
        targets.append(
            {
                "target": f"peak RSS < {RSS_SMALL_TARGET_MB:g} MB (<= {RSS_SMALL_ROWS:,} rows)",
                "value": s["peak_rss_mb"],
                "unit": "MB",
                "status": _target(s["peak_rss_mb"], RSS_SMALL_TARGET_MB, at_least=False),
            }
        )
    targets.append(
        {
            "target": "DuckDB time vs PostgreSQL's <= 1x",
            "value": _round(duck_vs_pg, 2),
            "unit": "x",
            "status": _target(duck_vs_pg, 1.0, at_least=False),
        }
    )
    return targets


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_table(summary: dict[str, Any], figures: dict[str, Figures], out: TextIO) -> None:
    rows = summary["rows"]
    headers = ("contender", "rows", "runs", "seconds", "rows/s", "peak RSS MB", "notes")
    lines: list[tuple[str, ...]] = []
    for name, f in figures.items():
        c = f.contender
        seconds = f.seconds
        failed = len(f.runs) - len(f.good)
        if c.basis == "work":
            note = f"timed work; process {_fmt(f.wall_s, '.2f')} s"
        else:
            note = "process wall"
        if name == "baseline":
            read, write = _fmt(f.part("read_s"), ".2f"), _fmt(f.part("write_s"), ".2f")
            note += f"; read_excel {read} s, to_sql {write} s"
        if failed:
            note += f"; {failed} FAILED"
        lines.append(
            (
                c.label,
                f"{c.rows:,}",
                str(len(f.good)) + (f"/{len(f.runs)}" if failed else ""),
                _fmt(seconds, ".2f"),
                _fmt(c.rows / seconds if seconds else None, ",.0f"),
                _fmt(f.peak_rss_mb, ".0f"),
                note,
            )
        )
    if summary["floor_s"] is not None:
        floor = summary["floor_s"]
        lines.append(
            ("floor = read + COPY", f"{rows:,}", "", f"{floor:.2f}", f"{rows / floor:,.0f}", "",
             "lower bound")
        )  # fmt: skip
    if summary["baseline_extrapolated"]:
        est = summary["baseline_s"]
        lines.append(
            (
                "baseline, EXTRAPOLATED",
                f"{rows:,}",
                "",
                f"{est:.2f}",
                f"{rows / est:,.0f}",
                "",
                f"extrapolated from {summary['baseline_measured_rows']:,} rows",
            )
        )
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(headers)]
    numeric = {1, 2, 3, 4, 5}

    def render(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
            for i, cell in enumerate(cells)
        ).rstrip()

    print(render(headers), file=out)
    print(render(["-" * w for w in widths]), file=out)
    for line in lines:
        print(render(line), file=out)
    print(file=out)
    # On Linux exec carries the parent's RSS high-water mark into the child's
    # ru_maxrss: no child can read below the bench parent's own peak.
    print(
        f"python -c pass: {_fmt(summary['python_start_s'], '.3f')} s, "
        f"{_fmt(summary['python_start_rss_mb'], '.0f')} MB peak; bench parent peak "
        f"{summary['bench_parent_rss_mb']:.0f} MB (no child's peak RSS can read below it)",
        file=out,
    )
    print(file=out)
    print("targets (reported, never asserted)", file=out)
    for t in summary["targets"]:
        value = "-" if t["value"] is None else f"{t['value']:g} {t['unit']}"
        print(f"  {t['status']:<5} {t['target']:<40} {value}", file=out)
    for failure in summary["failures"]:
        print(f"FAILED: {failure}", file=out)
