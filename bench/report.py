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
- ``parallel_reader_s`` is datalakeP's production reader (guards, the forked parser
  child, the parent's extent scan, the rows handed back as Arrow) reading the
  sheet, timed in its own process like ``reader_s``, one fastexcel call (the
  floor's reader); ``parallel_speedup`` is the second over the first. CPU seconds
  beside both include child processes. ``parallel_stages`` times the parallel
  reader's stages one after another in one thread (CPU seconds summed over the
  parts), to reason how the speedup scales with cores.
- The peers (polars into PostgreSQL through ADBC, polars into DuckDB) are whole
  processes like datalakep; ``vs_polars_adbc`` is datalakep's time over theirs.
- The small-file latency (bench/latency.py) is reported in milliseconds for the
  warm Lambda container and in seconds for the cold CLI, medians either way.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from typing import Any, TextIO

from bench.contenders import Contender, Measurement
from bench.workbooks import ROOT

SPEEDUP_TARGET = 25.0
PEER_RATIO_TARGET = 1.0
PARALLEL_READER_TARGET = 1.6
WARM_TARGET_MS = {"warm_lambda_duckdb": 50.0, "warm_lambda_pg": 80.0}
COLD_CLI_TARGET_S = 0.8
FLOOR_RATIO_TARGET = 1.5
RSS_VS_READER_TARGET = 1.2
ISSUE_LARGE_ROWS = 1_000_000
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
                    "openpyxl", "sqlalchemy", "polars", "adbc-driver-postgresql"):  # fmt: skip
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
) -> dict[str, Any]:
    """One workbook size's object: the required keys first, then what is needed to trust them."""

    def get(name: str) -> Figures | None:
        return figures.get(name)

    pg, duck, read, copy, base = (get(n) for n in ("datalakep_pg", "datalakep_duckdb", "reader",
                                                   "copy", "baseline"))  # fmt: skip
    polars_pg, polars_duck = get("polars_adbc"), get("polars_duckdb")
    polars_pg_s = polars_pg.seconds if polars_pg else None
    polars_duck_s = polars_duck.seconds if polars_duck else None
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

    parallel, stages, host = get("parallel_reader"), get("reader_parts"), get("host_cores")
    parallel_s = parallel.seconds if parallel else None
    peak = pg.peak_rss_mb if pg else None
    reader_peak = read.peak_rss_mb if read else None
    summary: dict[str, Any] = {
        "rows": rows,
        "datalakep_s": _round(datalakep_s),
        "baseline_s": _round(baseline_s),
        "floor_s": _round(floor_s),
        "speedup_vs_baseline": _round(_ratio(baseline_s, datalakep_s), 2),
        "polars_adbc_s": _round(polars_pg_s),
        "vs_polars_adbc": _round(_ratio(datalakep_s, polars_pg_s), 2),
        "polars_duckdb_s": _round(polars_duck_s),
        "duckdb_vs_polars_duckdb": _round(_ratio(duckdb_s, polars_duck_s), 2),
        "ratio_to_floor": _round(_ratio(datalakep_s, floor_s), 2),
        "peak_rss_mb": _round(peak, 1),
        "reader_peak_rss_mb": _round(reader_peak, 1),
        "duckdb_s": _round(duckdb_s),
        "duckdb_peak_rss_mb": _round(duck.peak_rss_mb if duck else None, 1),
        "baseline_peak_rss_mb": _round(base.peak_rss_mb if base else None, 1),
        "polars_adbc_peak_rss_mb": _round(polars_pg.peak_rss_mb if polars_pg else None, 1),
        "polars_duckdb_peak_rss_mb": _round(polars_duck.peak_rss_mb if polars_duck else None, 1),
        "reader_s": _round(reader_s),
        "reader_cpu_s": _round(read.part("cpu_s") if read else None),
        "parallel_reader_s": _round(parallel_s),
        "parallel_reader_cpu_s": _round(parallel.part("cpu_s") if parallel else None),
        "parallel_speedup": _round(_ratio(reader_s, parallel_s), 2),
        "parallel_reader_peak_rss_mb": _round(parallel.peak_rss_mb if parallel else None, 1),
        "parallel_stages": _stages(stages),
        # 2 x one busy process alone / two at once, median and per round (host_cores).
        "host_cores": _round(host.part("cores") if host else None, 2),
        "host_cores_per_round": [_round(m.parts.get("cores"), 2) for m in host.good]
        if host
        else None,
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
        "rows_per_s": {
            name: round(f.contender.rows / f.seconds)
            for name, f in figures.items()
            if f.seconds and f.contender.rows
        },
        "runs": {name: [_run(m) for m in f.runs] for name, f in figures.items()},
        "failures": _failures(f.runs for f in figures.values()),
        "settings": settings,
    }
    summary["targets"] = _targets(summary)
    return summary


def _stages(stages: Figures | None) -> dict[str, Any] | None:
    """The parallel reader's stages timed alone (CPU s summed over the parts), one run."""
    if stages is None or not stages.good:
        return None
    parts = stages.good[0].parts
    found: dict[str, Any] = {k: _round(v) for k, v in parts.items() if k.endswith("_s")}
    found["parts"] = int(parts.get("parts", 0))
    found["sheet_xml_mb"] = _round(parts.get("sheet_xml_mb"), 1)
    return found


def _run(m: Measurement) -> dict[str, Any]:
    return {
        "wall_s": _round(m.wall_s),
        "work_s": _round(m.work_s),
        "peak_rss_mb": _round(m.peak_rss_mb, 1),
        "major_faults": m.major_faults,
        "rows_loaded": m.rows_loaded,
        "error": m.error,
    }


def _failures(runs: Iterable[Sequence[Measurement]]) -> list[str]:
    return [f"{m.contender} run {m.run}: {m.error}" for group in runs for m in group if not m.ok]


def summarise_latency(measurements: Sequence[Measurement]) -> dict[str, Any]:
    """The 891-row figures: the warm Lambda call in ms, the cold CLI in s, medians."""
    warm = [m for m in measurements if m.contender.startswith("warm_")]
    cold: dict[str, list[Measurement]] = {}
    for m in measurements:
        if m.contender.startswith("cold_"):
            cold.setdefault(m.contender, []).append(m)
    found: dict[str, Any] = {"rows": measurements[0].rows_expected if measurements else None}
    for m in warm:
        parts = m.parts
        found[m.contender] = {
            "median_ms": _ms(m.wall_s if m.ok else None),
            "min_ms": _ms(parts.get("min_s")),
            "max_ms": _ms(parts.get("max_s")),
            "cpu_median_ms": _ms(parts.get("cpu_s")),
            "parent_cpu_median_ms": _ms(parts.get("parent_cpu_s")),
            "child_cpu_median_ms": _ms(parts.get("child_cpu_s")),
            "first_call_ms": _ms(parts.get("first_s")),
            "handler_import_s": _round(parts.get("init_s")),
            "peak_rss_mb": _round(m.peak_rss_mb, 1),
            "rows_loaded": m.rows_loaded,
            "error": m.error,
        }
    for name, runs in cold.items():
        good = [m.wall_s for m in runs if m.ok and m.wall_s is not None]
        found[name] = {
            "median_s": _round(statistics.median(good) if good else None),
            "runs_s": [_round(m.wall_s) for m in runs],
            # Per run: pages read from disk again (see Process.major_faults).
            "major_faults": [m.major_faults for m in runs],
            "peak_rss_mb": _round(max((m.peak_rss_mb or 0.0) for m in runs), 1),
        }
    found["failures"] = _failures([[*warm], *cold.values()])
    return found


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def environment(postgres_version: str | None, parent_rss_mb: float) -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "postgres": postgres_version,
        },
        "versions": _versions(),
        "git": _git(),
        "bench_parent_rss_mb": _round(parent_rss_mb, 1),
    }


def issue_targets(
    sizes: Sequence[dict[str, Any]], latency: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """Every ratio the performance issue names, in its order, from one run."""
    found: list[dict[str, Any]] = []
    for s in sizes:
        found += [
            t for t in s["targets"] if t["target"].startswith(("datalakep vs", "DuckDB vs polars"))
        ]
    # The issue sets the reader's speed-up and the memory ratio at a million rows; at
    # smaller sizes they stay in each size's own list.
    large = [s for s in sizes if s["rows"] >= ISSUE_LARGE_ROWS]
    found += [t for s in large for t in s["targets"] if t["target"].startswith("parallel reader")]
    if latency is not None:
        for name, limit in WARM_TARGET_MS.items():
            value = (latency.get(name) or {}).get("median_ms")
            found.append(_at_most(f"{name} 891 rows <= {limit:g} ms (median)", value, limit, "ms"))
        for name in ("cold_cli_duckdb", "cold_cli_pg"):
            value = (latency.get(name) or {}).get("median_s")
            title = f"{name} 891 rows <= {COLD_CLI_TARGET_S:g} s (median)"
            found.append(_at_most(title, value, COLD_CLI_TARGET_S, "s"))
    memory = "peak RSS vs reader"
    found += [t for s in large for t in s["targets"] if t["target"].startswith(memory)]
    return found


def _entry(
    title: str, value: float | None, limit: float, unit: str, at_least: bool
) -> dict[str, Any]:
    if value is None:
        status = "n/a"
    else:
        status = "PASS" if (value >= limit if at_least else value <= limit) else "MISS"
    return {"target": title, "value": value, "unit": unit, "status": status}


def _at_most(title: str, value: float | None, limit: float, unit: str = "x") -> dict[str, Any]:
    return _entry(title, value, limit, unit, at_least=False)


def _targets(s: dict[str, Any]) -> list[dict[str, Any]]:
    rss_vs_reader = _round(_ratio(s["peak_rss_mb"], s["reader_peak_rss_mb"]), 2)
    duck_vs_pg = _round(_ratio(s["duckdb_s"], s["datalakep_s"]), 2)
    at = f" at {s['rows']:,} rows"
    extrapolated = " (baseline extrapolated)" if s["baseline_extrapolated"] else ""
    targets = [
        _at_most(f"datalakep vs polars+ADBC <= {PEER_RATIO_TARGET:g}x{at}", s["vs_polars_adbc"],
                 PEER_RATIO_TARGET),
        _at_most(f"DuckDB vs polars->DuckDB <= {PEER_RATIO_TARGET:g}x{at}",
                 s["duckdb_vs_polars_duckdb"], PEER_RATIO_TARGET),
        _entry(f"speed vs baseline >= {SPEEDUP_TARGET:g}x{at}", s["speedup_vs_baseline"],
               SPEEDUP_TARGET, "x" + extrapolated, at_least=True),
        _at_most(f"time vs floor <= {FLOOR_RATIO_TARGET:g}x{at}", s["ratio_to_floor"],
                 FLOOR_RATIO_TARGET),
        _entry(f"parallel reader vs one fastexcel call >= {PARALLEL_READER_TARGET:g}x{at}",
               s["parallel_speedup"], PARALLEL_READER_TARGET, "x", at_least=True),
        _at_most(f"peak RSS vs reader's <= {RSS_VS_READER_TARGET:g}x{at}", rss_vs_reader,
                 RSS_VS_READER_TARGET),
    ]  # fmt: skip
    if s["rows"] <= RSS_SMALL_ROWS:
        title = f"peak RSS < {RSS_SMALL_TARGET_MB:g} MB (<= {RSS_SMALL_ROWS:,} rows)"
        targets.append(_at_most(title, s["peak_rss_mb"], RSS_SMALL_TARGET_MB, "MB"))
    targets.append(_at_most(f"DuckDB time vs PostgreSQL's <= 1x{at}", duck_vs_pg, 1.0))
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
        if (cpu := f.part("cpu_s")) is not None:
            note += f"; CPU {cpu:.2f} s"
        if name == "reader_parts" and f.good:
            parts = f.good[0].parts
            note = f"{int(parts.get('parts', 0))} parts of {parts.get('sheet_xml_mb', 0):.0f} MB: "
            note += ", ".join(
                f"{k[:-2]} {v:.2f}" for k, v in parts.items() if k.endswith("_s") and k != "work_s"
            )
        if name == "host_cores":
            cores, pair = _fmt(f.part("cores"), ".2f"), _fmt(f.part("pair_s"), ".2f")
            note = f"{cores} cores: a loop alone {_fmt(seconds, '.2f')} s, two at once {pair} s"
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
                _fmt(c.rows / seconds if seconds and c.rows else None, ",.0f"),
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
    print(
        f"python -c pass: {_fmt(summary['python_start_s'], '.3f')} s, "
        f"{_fmt(summary['python_start_rss_mb'], '.0f')} MB peak",
        file=out,
    )
    print(file=out)
    print_targets("targets (reported, never asserted)", summary["targets"], out)


def print_latency(latency: dict[str, Any], out: TextIO) -> None:
    print(f"small file: Kaggle train.xlsx, {latency['rows']} rows", file=out)
    for name, found in latency.items():
        if not isinstance(found, dict):
            continue
        if "median_ms" in found:
            print(
                f"  {name:<20} median {_fmt(found['median_ms'], '.1f')} ms "
                f"(min {_fmt(found['min_ms'], '.1f')}, max {_fmt(found['max_ms'], '.1f')}; "
                f"CPU {_fmt(found['cpu_median_ms'], '.1f')} ms = parent "
                f"{_fmt(found['parent_cpu_median_ms'], '.1f')} + parser child "
                f"{_fmt(found['child_cpu_median_ms'], '.1f')}; first call "
                f"{_fmt(found['first_call_ms'], '.0f')} ms; handler import "
                f"{_fmt(found['handler_import_s'], '.2f')} s)",
                file=out,
            )
        else:
            runs = ", ".join(_fmt(r, ".2f") for r in found["runs_s"])
            faults = ", ".join("-" if f is None else str(f) for f in found["major_faults"])
            print(
                f"  {name:<20} median {_fmt(found['median_s'], '.2f')} s ({runs}; "
                f"major page faults {faults})",
                file=out,
            )
    print(file=out)


def print_targets(title: str, targets: Sequence[dict[str, Any]], out: TextIO) -> None:
    print(title, file=out)
    width = max((len(t["target"]) for t in targets), default=0)
    for t in targets:
        value = "-" if t["value"] is None else f"{t['value']:g} {t['unit']}"
        print(f"  {t['status']:<12} {t['target']:<{width}} {value}", file=out)
    print(file=out)


def print_footer(summary: dict[str, Any], out: TextIO) -> None:
    # On Linux exec carries the parent's RSS high-water mark into the child's
    # ru_maxrss: no child can read below the bench parent's own peak.
    print(
        f"bench parent peak {summary['bench_parent_rss_mb']:.0f} MB "
        "(no child's peak RSS can read below it)",
        file=out,
    )
    for failure in summary["failures"]:
        print(f"FAILED: {failure}", file=out)
