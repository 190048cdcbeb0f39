"""How the CLI shows results: JSON lines for machines, aligned tables for people."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from domain.printable import printable

if TYPE_CHECKING:  # annotations only: `ingest` need not import reconciliation to print
    from application.reconcile import MissingObject, ReconcileResult
    from application.results import SheetResult
    from application.tables import InitTablesResult
    from domain.ledger import LedgerEntry

# How many rejects `validate` prints per sheet before summarising the rest.
SHOWN_REJECTS = 10


def sheet_json(result: SheetResult, *, dry_run: bool = False) -> dict[str, Any]:
    return {
        "source": result.source,
        "sheet": result.sheet,
        "table": result.table,
        "status": result.status.value,
        "rows_read": result.rows_read,
        "rows_loaded": result.rows_loaded,
        "rows_rejected": result.rows_rejected,
        "load_id": result.load_id,
        "rejects_report": result.rejects_report,
        "error": result.error,
        "error_code": result.error_code,
        **({"rejects": [_reject_json(r) for r in result.rejects]} if dry_run else {}),
    }


def _reject_json(reject: Any) -> dict[str, Any]:
    return {
        "sheet": reject.sheet,
        "row": reject.row,
        "column": reject.column,
        "value": reject.value,
        "reason": reject.reason.value,
        "message": reject.message,
    }


def ledger_json(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "load_id": entry.load_id,
        "source": entry.source_uri,
        "version": entry.source_version,
        "table": entry.table,
        "sheets": list(entry.sheets),
        "status": entry.status.value,
        "rows_read": entry.rows_read,
        "rows_loaded": entry.rows_loaded,
        "rows_rejected": entry.rows_rejected,
        "started_at": entry.started_at.isoformat(sep=" "),
        "finished_at": entry.finished_at.isoformat(sep=" "),
        "error": entry.error,
        "rejects_report": entry.rejects_report,
    }


def print_json_lines(objects: Iterable[dict[str, Any]], out: TextIO | None = None) -> None:
    out = out or sys.stdout
    for obj in objects:
        out.write(json.dumps(obj, ensure_ascii=False, default=str) + "\n")


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], out: TextIO) -> None:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    numeric = [all(_is_number(r[i]) for r in cells) and bool(cells) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out.write(line(headers) + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    for row in cells:
        out.write(line(row) + "\n")


def print_results(results: Sequence[SheetResult], out: TextIO, *, dry_run: bool) -> None:
    headers = ["source", "sheet", "table", "status", "read", "loaded", "rejected"]
    if dry_run:
        headers.remove("loaded")
    rows = []
    for r in results:
        row: list[object] = [_short(r.source), r.sheet or "-", r.table or "-", r.status.value]
        row += [r.rows_read] + ([] if dry_run else [r.rows_loaded]) + [r.rows_rejected]
        rows.append(row)
    table(headers, rows, out)
    for r in results:
        if dry_run:
            _print_verdict(r, out)
        elif r.error:
            out.write(f"\n{r.status.value.upper()}: {printable(r.error)}\n")
    reports = sorted({r.rejects_report for r in results if r.rejects_report})
    for report in reports:
        out.write(f"\nrejects report: {printable(report)}\n")
    rejected = sum(r.rows_rejected for r in results)
    refused = sum(1 for r in results if r.refused)
    set_aside = sum(1 for r in results if r.set_aside)
    aside = f", {set_aside} sheet(s) empty or ignored" if set_aside else ""
    if dry_run:
        would_load = sum(r.rows_read - r.rows_rejected for r in results if not r.refused)
        out.write(
            f"\nwould load {would_load} rows, would reject {rejected} rows, "
            f"would refuse {refused} sheet(s) or file(s){aside}\n"
        )
    else:
        loaded = sum(r.rows_loaded for r in results)
        out.write(
            f"\n{loaded} rows loaded, {rejected} rows rejected, "
            f"{refused} sheet(s) or file(s) refused{aside}\n"
        )


def _print_verdict(r: SheetResult, out: TextIO) -> None:
    """What ingest would do with one sheet: refuse it whole, or load it less some rows."""
    where = printable(f"{_short(r.source)}" + (f" [{r.sheet}]" if r.sheet else ""))
    if r.refused:
        out.write(f"\n{where}: would refuse the sheet: {printable(r.error)}\n")
    elif r.rows_rejected:
        out.write(
            f"\n{where}: would reject {r.rows_rejected} rows "
            f"and load the other {r.rows_read - r.rows_rejected}:\n"
        )
    else:
        return
    for reject in r.rejects[:SHOWN_REJECTS]:
        out.write(printable(f"  row {reject.row}, {reject.column}: {reject.message}") + "\n")
    if len(r.rejects) > SHOWN_REJECTS:
        out.write(f"  ... and {len(r.rejects) - SHOWN_REJECTS} more\n")


def print_init(result: InitTablesResult, out: TextIO) -> None:
    table(
        ["table", "state"],
        [[t.table, "ready" if t.ready else "DRIFT"] for t in result.tables],
        out,
    )
    for t in result.tables:
        if t.error:
            out.write(f"\n{printable(t.error)}\n")


def print_history(entries: Sequence[LedgerEntry], out: TextIO) -> None:
    table(
        ["finished (UTC)", "status", "table", "source", "loaded", "rejected", "load id"],
        [
            [
                e.finished_at.isoformat(sep=" ", timespec="seconds"),
                e.status.value,
                e.table or "-",
                _short(e.source_uri),
                e.rows_loaded,
                e.rows_rejected,
                e.load_id,
            ]
            for e in entries
        ],
        out,
    )


def print_load(entry: LedgerEntry, out: TextIO) -> None:
    """One ledger row in full, a field a line, for `datalakep show`."""
    fields = ledger_json(entry)
    fields["sheets"] = ", ".join(entry.sheets) or "-"
    width = max(len(k) for k in fields)
    for key, value in fields.items():
        out.write(f"{key.replace('_', ' '):<{width}}  {'-' if value is None else value}\n")


def missing_json(missing: MissingObject, *, enqueued: bool) -> dict[str, Any]:
    return {
        "source": missing.uri,
        "version": missing.version,
        "size": missing.size,
        "enqueued": enqueued,
    }


def reconcile_summary(result: ReconcileResult) -> str:
    parts = [
        f"{len(result.missing)} of {result.listed} object(s) missing",
        f"{result.in_ledger} in the ledger",
        f"{result.in_dlq} in the DLQ ({result.dlq_messages} message(s), "
        f"{result.poison} naming no object)",
    ]
    if result.outside_sources:
        parts.append(
            f"{result.outside_sources} outside aws.sources, not checked: the worker ignores them"
        )
    if result.enqueued:
        parts.append(f"{result.enqueued} sent to the worker queue")
    elif result.missing:
        parts.append("none sent (--enqueue sends them)")
    return "; ".join(parts)


def print_reconcile(result: ReconcileResult, out: TextIO) -> None:
    if result.missing:
        table(
            ["missing object", "version", "size"],
            [[_short(m.uri), m.version, m.size] for m in result.missing],
            out,
        )
        out.write("\n")
    out.write(reconcile_summary(result) + "\n")


# Where the progress bar stands when a stage begins: reading is most of the time.
_STAGE_STARTS = {"routing": 0.0, "reading": 0.05, "validating": 0.7, "loading": 0.8, "loaded": 1.0}


class TerminalProgress:
    """A progress line on stderr, only when it is a terminal: a bar, rows read and loaded.

    The bar fills through a file's stages (routing, reading, validating, loading);
    a worker thread redraws it every quarter second so the elapsed time moves
    while a long stage runs, such as a million-row read. Nothing is shown for a
    file done within half a second, and nothing at all when stderr is a pipe or
    a file: a log must not fill with carriage returns.
    """

    DELAY_S = 0.5
    REFRESH_S = 0.25
    WIDTH = 24

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self._enabled = self._stream.isatty()
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._line: tuple[str, float] | None = None  # what the current stage shows, bar fill
        self._rows_read = 0
        self._rows_loaded = 0
        self._shown = False
        self._ticker: threading.Thread | None = None
        self._done = threading.Event()

    def start_file(self) -> None:
        with self._lock:
            self._started = time.monotonic()
            self._rows_read = self._rows_loaded = 0
            self._line = None
        if self._enabled and self._ticker is None:
            self._done.clear()
            self._ticker = threading.Thread(target=self._tick, name="progress", daemon=True)
            self._ticker.start()

    def stage(self, source: str, sheet: str | None, stage: str, done: int, total: int) -> None:
        if not self._enabled:
            return
        kind, _, table = stage.partition(" ")
        where = printable(_short(source).rsplit("/", 1)[-1] + (f" [{sheet}]" if sheet else ""))
        with self._lock:
            if kind not in _STAGE_STARTS:  # any other long job: done of total rows
                self._line = (f"{where}: {stage} {done:,} of {total:,} rows", done / (total or 1))
            else:
                self._line = self._ingest_line(where, kind, table, done, total)
        self._draw()

    def _ingest_line(
        self, where: str, kind: str, table: str, done: int, total: int
    ) -> tuple[str, float]:
        if kind == "validating":
            self._rows_read += done
        if kind == "loaded":
            self._rows_loaded += done
        fill = _STAGE_STARTS[kind]
        if kind == "routing" and total:
            fill = 0.05 * done / total
        if not self._rows_read:
            return f"{where}: {kind}", fill
        rows = f"{self._rows_read:,} rows read"
        if kind in ("loading", "loaded"):
            rows += f", {self._rows_loaded:,} of {total:,} loaded into {table}"
        return f"{where}: {kind}; {rows}", fill

    def finish(self) -> None:
        self._done.set()
        if self._ticker is not None:
            self._ticker.join()
            self._ticker = None
        with self._lock:
            if self._shown:
                self._stream.write("\r\x1b[K")
                self._stream.flush()
                self._shown = False

    def _tick(self) -> None:
        while not self._done.wait(self.REFRESH_S):
            self._draw()

    def _draw(self) -> None:
        with self._lock:
            elapsed = time.monotonic() - self._started
            if self._line is None or elapsed < self.DELAY_S or self._done.is_set():
                return
            text, fill = self._line
            filled = round(self.WIDTH * fill)
            bar = "█" * filled + "░" * (self.WIDTH - filled)
            self._stream.write(f"\r{bar} {text} ({elapsed:.0f}s)\x1b[K")
            self._stream.flush()
            self._shown = True


def _short(uri: str) -> str:
    return uri.removeprefix("file://")


def _cell(value: object) -> str:
    return "" if value is None else printable(value)


def _is_number(text: str) -> bool:
    return text.isdigit()
