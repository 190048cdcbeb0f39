"""How the CLI shows results: JSON lines for machines, aligned tables for people."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

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
        if r.error:
            out.write(f"\n{r.status.value.upper()}: {r.error}\n")
        if dry_run and r.rejects:
            out.write(f"\n{_short(r.source)} [{r.sheet}] would reject:\n")
            for reject in r.rejects[:SHOWN_REJECTS]:
                out.write(f"  row {reject.row}, {reject.column}: {reject.message}\n")
            if len(r.rejects) > SHOWN_REJECTS:
                out.write(f"  ... and {len(r.rejects) - SHOWN_REJECTS} more\n")
    reports = sorted({r.rejects_report for r in results if r.rejects_report})
    for report in reports:
        out.write(f"\nrejects report: {report}\n")
    loaded = sum(r.rows_loaded for r in results)
    rejected = sum(r.rows_rejected for r in results)
    refused = sum(1 for r in results if r.refused)
    if not dry_run:
        out.write(
            f"\n{loaded} rows loaded, {rejected} rows rejected, "
            f"{refused} sheet(s) or file(s) refused\n"
        )


def print_init(result: InitTablesResult, out: TextIO) -> None:
    table(
        ["table", "state"],
        [[t.table, "ready" if t.ready else "DRIFT"] for t in result.tables],
        out,
    )
    for t in result.tables:
        if t.error:
            out.write(f"\n{t.error}\n")


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


class TerminalProgress:
    """A one-line progress display on stderr, shown only once a file takes a moment."""

    DELAY_S = 0.5

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self._enabled = self._stream.isatty()
        self._started = time.monotonic()
        self._shown = False

    def start_file(self) -> None:
        self._started = time.monotonic()

    def stage(self, source: str, sheet: str | None, stage: str, done: int, total: int) -> None:
        if not self._enabled or time.monotonic() - self._started < self.DELAY_S:
            return
        width = 20
        filled = int(width * done / total) if total else 0
        bar = "#" * filled + "." * (width - filled)
        where = f"{_short(source)}" + (f" [{sheet}]" if sheet else "")
        elapsed = time.monotonic() - self._started
        self._stream.write(f"\r[{bar}] {where}: {stage} ({elapsed:.0f}s)\x1b[K")
        self._stream.flush()
        self._shown = True

    def finish(self) -> None:
        if self._shown:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
            self._shown = False


def _short(uri: str) -> str:
    return uri.removeprefix("file://")


def _cell(value: object) -> str:
    return "" if value is None else str(value)


def _is_number(text: str) -> bool:
    return text.isdigit()
