"""Titanic-shaped benchmark workbooks, generated once and cached in ``bench/.cache/``.

Two kinds: generated ones of any size (below), and Kaggle's own train.csv (891
rows) written as .xlsx, the small file whose latency the benchmark measures.

The generator is datalakeP's own (``devtools.sample``): realistic null
ratios (Age ~20%, Cabin ~77%), names full of commas, quotes and parentheses. A
1M-row workbook takes about a minute to write, so each file is cached under a
name that carries the row count, the seed and a digest of the generator's source:
a change to the generator makes a new file rather than silently reusing an old one.

Generation runs in a child process (``python -m bench.workbooks``): building a
million rows takes hundreds of MB, and on Linux a child started by ``exec`` inherits
the parent's RSS high-water mark in its ``ru_maxrss``, so the benchmark's parent
must stay small for the children's peaks to mean anything.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "bench" / ".cache"
GENERATOR = ROOT / "infrastructure" / "sample.py"
TABLE = "train_data"
# The Kaggle files live outside the repository, in the shared/ folder beside the
# checkout (CI lays a copy there too); $DATALAKEP_TITANIC names another place.
TITANIC_ENV = "DATALAKEP_TITANIC"


@dataclass(frozen=True)
class Workbook:
    """One cached benchmark input: the .xlsx, the same rows as CSV (for COPY), and facts."""

    xlsx: Path
    csv: Path
    rows: int
    seed: int
    # Generated with this many rows and cut to ``rows`` (a prefix), else None.
    prefix_of: int | None
    stats: dict[str, Any]


def _digest() -> str:
    return hashlib.sha256(GENERATOR.read_bytes()).hexdigest()[:10]


def _stem(rows: int, seed: int, prefix_of: int | None) -> str:
    size = f"{rows}of{prefix_of}" if prefix_of else str(rows)
    return f"{TABLE}-{size}-seed{seed}-{_digest()}"


def ensure_workbook(rows: int, seed: int = 0, prefix_of: int | None = None) -> Workbook:
    """The cached workbook of ``rows`` rows, generating it in a child process if missing.

    With ``prefix_of`` the rows are the first ``rows`` of the ``prefix_of``-row
    workbook (the baseline's sample when its time is extrapolated).
    """
    if prefix_of is not None and prefix_of <= rows:
        prefix_of = None
    stem = _stem(rows, seed, prefix_of)
    xlsx, csv, meta = (CACHE / f"{stem}{ext}" for ext in (".xlsx", ".csv", ".json"))
    # The metadata is written last, so its presence means the other two are complete.
    if not (meta.exists() and xlsx.exists() and csv.exists()):
        CACHE.mkdir(parents=True, exist_ok=True)
        what = f"{rows:,} rows" + (f" (first rows of {prefix_of:,})" if prefix_of else "")
        print(f"bench: generating {xlsx.name}: {what}", file=sys.stderr, flush=True)
        command = [sys.executable, "-m", "bench.workbooks", "--rows", str(rows)]
        command += ["--seed", str(seed), "--xlsx", str(xlsx), "--csv", str(csv)]
        command += ["--meta", str(meta)]
        if prefix_of:
            command += ["--prefix-of", str(prefix_of)]
        subprocess.run(command, check=True, cwd=ROOT)
    stats = json.loads(meta.read_text())
    return Workbook(xlsx, csv, rows, seed, prefix_of, stats)


def titanic_dir() -> Path:
    """Where Kaggle's CSVs are: $DATALAKEP_TITANIC, else shared/data/titanic beside the
    checkout or one level up (a git worktree under a folder of worktrees)."""
    explicit = os.environ.get(TITANIC_ENV)
    candidates = [Path(explicit)] if explicit else []
    candidates += [base / "shared" / "data" / "titanic" for base in ROOT.parents[:2]]
    for candidate in candidates:
        if (candidate / "train.csv").is_file():
            return candidate
    searched = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(
        f"Kaggle's train.csv not found (looked in {searched}); set {TITANIC_ENV}"
    )


def ensure_kaggle_train() -> Workbook:
    """Kaggle's train.csv as a one-sheet .xlsx, cached under the CSV's digest."""
    csv = titanic_dir() / "train.csv"
    digest = hashlib.sha256(csv.read_bytes()).hexdigest()[:10]
    xlsx, meta = (CACHE / f"kaggle-train-{digest}{ext}" for ext in (".xlsx", ".json"))
    if not (meta.exists() and xlsx.exists()):
        CACHE.mkdir(parents=True, exist_ok=True)
        print(f"bench: writing {xlsx.name} from {csv}", file=sys.stderr, flush=True)
        command = [sys.executable, "-m", "bench.workbooks", "--from-csv", str(csv)]
        command += ["--xlsx", str(xlsx), "--meta", str(meta)]
        subprocess.run(command, check=True, cwd=ROOT)
    stats = json.loads(meta.read_text())
    return Workbook(xlsx, csv, int(stats["rows"]), 0, None, stats)


def _from_csv(csv: Path, xlsx: Path, meta: Path) -> None:
    import pyarrow.csv as pa_csv

    from devtools.sample import write_workbook

    table = pa_csv.read_csv(csv)
    tmp_xlsx = xlsx.with_name(xlsx.stem + ".tmp.xlsx")
    write_workbook(table, tmp_xlsx)
    os.replace(tmp_xlsx, xlsx)
    stats = {"rows": table.num_rows, "source": csv.name, "xlsx_bytes": xlsx.stat().st_size}
    tmp_meta = meta.with_name(meta.name + ".tmp")
    tmp_meta.write_text(json.dumps(stats, indent=1) + "\n")
    os.replace(tmp_meta, meta)


def _generate(
    rows: int, seed: int, prefix_of: int | None, xlsx: Path, csv: Path, meta: Path
) -> None:
    import pyarrow.compute as pc
    import pyarrow.csv as pa_csv

    from devtools.sample import generate_passengers, write_workbook

    table = generate_passengers(TABLE, prefix_of or rows, seed=seed)
    if prefix_of:
        table = table.slice(0, rows)
    # Write beside the target and rename, so an interrupted run leaves no
    # truncated file under the cached name.
    for path in (xlsx, csv, meta):
        path.with_name(path.name + ".tmp").unlink(missing_ok=True)
    tmp_xlsx = xlsx.with_name(xlsx.stem + ".tmp.xlsx")
    write_workbook(table, tmp_xlsx)
    tmp_csv = csv.with_name(csv.name + ".tmp")
    # Nulls as empty unquoted fields: COPY's CSV format reads those as NULL.
    pa_csv.write_csv(table, tmp_csv)
    names = table.column("Name")
    stats: dict[str, Any] = {
        "rows": table.num_rows,
        "seed": seed,
        "prefix_of": prefix_of,
        "xlsx_bytes": tmp_xlsx.stat().st_size,
        "generator_digest": _digest(),
        "null_share": {
            name: round(table.column(name).null_count / max(table.num_rows, 1), 4)
            for name in table.column_names
            if table.column(name).null_count
        },
        "names_with_comma": int(pc.sum(pc.match_substring(names, ",")).as_py() or 0),
        "names_with_quote": int(pc.sum(pc.match_substring(names, '"')).as_py() or 0),
        "names_with_apostrophe": int(pc.sum(pc.match_substring(names, "'")).as_py() or 0),
        "longest_name": int(pc.max(pc.utf8_length(names)).as_py() or 0),
    }
    os.replace(tmp_xlsx, xlsx)
    os.replace(tmp_csv, csv)
    tmp_meta = meta.with_name(meta.name + ".tmp")
    tmp_meta.write_text(json.dumps(stats, indent=1) + "\n")
    os.replace(tmp_meta, meta)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="write one benchmark workbook (child process)")
    parser.add_argument("--rows", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prefix-of", type=int)
    parser.add_argument("--from-csv", type=Path, help="write this CSV as the .xlsx instead")
    parser.add_argument("--xlsx", type=Path, required=True)
    parser.add_argument("--csv", type=Path)
    parser.add_argument("--meta", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.from_csv:
        _from_csv(args.from_csv, args.xlsx, args.meta)
    elif args.rows is None or args.csv is None:
        parser.error("--rows and --csv are required unless --from-csv is given")
    else:
        _generate(args.rows, args.seed, args.prefix_of, args.xlsx, args.csv, args.meta)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
