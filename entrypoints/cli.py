"""The `datalakep` command. Thin: parse, call a use case, print, choose the exit code."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import logging
import os
import re
import socket
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from domain.errors import (
    ConfigurationError,
    DatalakepError,
    TransientError,
    WarehouseAuthenticationError,
)
from domain.ledger import LoadStatus
from domain.printable import printable

if TYPE_CHECKING:
    from application.results import IngestResult, SheetResult
    from application.tables import HistoryQuery
    from domain.ledger import LedgerEntry
    from entrypoints.cli_output import TerminalProgress
    from entrypoints.containers import CliContainer

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# As a shell reports a process ended by SIGINT or SIGPIPE.
EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 130, 141
SUPPORTED = (".xlsx", ".xlsm", ".xls", ".ods", ".csv")


# Services log for machines; the other commands for the person at the terminal.
JSON_LOG_COMMANDS = frozenset({"worker", "reconcile"})


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; Ctrl-C and a closed pipe end it with one line, or none.

    Without ``argv`` the command is this process's own command line (the console
    script, ``python -m entrypoints.cli``), and the process ends here: see _leave.
    """
    code = _command(argv)
    if argv is None:
        _leave(code)
    return code


def _command(argv: Sequence[str] | None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:
        # Nothing is half-written: loads are one transaction, reports are renamed
        # into place; the parser child dies with us.
        print("datalakep: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `datalakep validate ... | head -1`: the reader has what it wanted.
        _drop_stdout()
        return EXIT_BROKEN_PIPE


def _leave(code: int) -> None:
    """End the process now, without Python tearing its modules down.

    That teardown frees numpy's, pyarrow's and the drivers' module state, memory the
    OS takes back at exit anyway: 0.13 s of CPU and 0.2 s of wall on this machine
    (import-only processes, five alternating runs), a sixth of a cold ingest.
    Everything a command writes is finished before this point (loads committed, the
    container's warehouse closed, reports renamed into place); the exit handlers
    still run (logging's flush among them) and the streams are flushed. While another
    thread is alive (none should be) the ordinary exit, which waits for it, is kept.
    """
    if threading.active_count() > 1:
        return
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def _drop_stdout() -> None:
    # Python flushes stdout once more at exit and would report the broken pipe
    # again; pointing the descriptor at /dev/null makes that flush a no-op.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass  # stdout is not a file descriptor (a test's capture): nothing to flush


def _main(argv: Sequence[str] | None) -> int:
    from infrastructure.observability.logs import configure_logging

    parser = _parser()
    args = parser.parse_args(argv)
    args.log_format = args.log_format or ("json" if args.command in JSON_LOG_COMMANDS else "text")
    # JSON logs are read by machines, which want every file's INFO outcome line.
    verbose = args.verbose or args.log_format == "json"
    # Static, not bound in a context: the worker's heartbeat threads log too.
    static = {"worker": f"{socket.gethostname()}:{os.getpid()}"} if args.command == "worker" else {}
    level = logging.INFO if verbose else logging.WARNING
    configure_logging(args.log_format, level, "stderr", static)
    try:
        code: int = args.run(args)
    except (ConfigurationError, WarehouseAuthenticationError) as error:
        # A refused password is the settings' fault as far as a person can tell.
        print(f"datalakep: configuration error: {printable(error)}", file=sys.stderr)
        return EXIT_USAGE
    except TransientError as error:
        print(f"datalakep: temporary failure, try again: {printable(error)}", file=sys.stderr)
        return EXIT_FAILED
    except DatalakepError as error:
        print(f"datalakep: {printable(error)}", file=sys.stderr)
        return EXIT_FAILED
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="datalakep",
        description="Spreadsheets to validated warehouse rows, exactly once.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress (INFO)")
    parser.add_argument("--version", action=_Version, help="print the version and exit")
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        help="stderr log lines: text, or one JSON object per line at INFO "
        "(default: json for worker and reconcile, text otherwise)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", metavar="FILE", help="config YAML (default: $DATALAKEP_CONFIG)")

    def with_warehouse(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--warehouse",
            metavar="URL",
            help="duckdb:///file.duckdb, postgresql://user@host:port/db or "
            "redshift://user@host:5439/db (default: $DATALAKEP_WAREHOUSE, then config)",
        )

    ingest = commands.add_parser("ingest", help="load files into the warehouse")
    ingest.add_argument("sources", nargs="+", metavar="SOURCE", help="files or directories")
    with_config(ingest)
    with_warehouse(ingest)
    ingest.add_argument("--json", action="store_true", help="one JSON object per sheet")
    ingest.set_defaults(run=_ingest)

    validate = commands.add_parser(
        "validate", help="dry run: check files, load nothing (exit codes as ingest)"
    )
    validate.add_argument("sources", nargs="+", metavar="SOURCE")
    with_config(validate)
    validate.add_argument("--json", action="store_true")
    validate.add_argument(
        "--report",
        metavar="DIR",
        type=Path,
        help="write the annotated rejects workbook (and CSV) into DIR",
    )
    validate.set_defaults(run=_validate)

    init = commands.add_parser(
        "init", help="start a project: config/datalakep.yaml and a .gitignore for data/"
    )
    init.add_argument("directory", nargs="?", default=".", type=Path, metavar="DIR")
    init.set_defaults(run=_init)

    init_tables = commands.add_parser("init-tables", help="create missing tables, report drift")
    with_config(init_tables)
    with_warehouse(init_tables)
    init_tables.set_defaults(run=_init_tables)

    history = commands.add_parser("history", help="the load ledger, newest first")
    with_config(history)
    with_warehouse(history)
    history.add_argument("--json", action="store_true")
    history.add_argument("--limit", type=int, default=50, help="rows to show (default 50)")
    history.add_argument("--source", metavar="GLOB", help="source URIs matching (* and ?)")
    history.add_argument("--status", choices=[s.value for s in LoadStatus])
    history.add_argument("--table", metavar="T")
    history.add_argument(
        "--since",
        metavar="DURATION|TIMESTAMP",
        help="finished since: 90m, 2h, 7d, or 2026-12-01T08:00 (UTC unless an offset is given)",
    )
    history.set_defaults(run=_history)

    show = commands.add_parser("show", help="one load of the ledger in full")
    show.add_argument("load_id", metavar="LOAD_ID")
    with_config(show)
    with_warehouse(show)
    show.add_argument("--json", action="store_true")
    show.set_defaults(run=_show)

    worker = commands.add_parser("worker", help="EC2 mode: long-poll an SQS queue and ingest")
    worker.add_argument("--queue-url", required=True, metavar="URL")
    worker.add_argument(
        "--until-empty", action="store_true", help="exit once a long poll comes back empty"
    )
    with_config(worker)
    with_warehouse(worker)
    worker.set_defaults(run=_worker)

    reconcile = commands.add_parser(
        "reconcile",
        help="list the objects in S3 that are neither in the ledger nor in the DLQ",
    )
    reconcile.add_argument("--bucket", required=True)
    reconcile.add_argument("--prefix", default="", help="only keys starting with this")
    reconcile.add_argument(
        "--enqueue",
        action="store_true",
        help="send each missing object to the worker queue as an ObjectCreated event",
    )
    reconcile.add_argument("--json", action="store_true", help="one JSON object per missing one")
    reconcile.add_argument(
        "--dlq-url", metavar="URL", help="the dead-letter queue (default: config worker.dlq_url)"
    )
    reconcile.add_argument(
        "--queue-url",
        metavar="URL",
        help="for --enqueue (default: $DATALAKEP_WORKER_QUEUE_URL, then config "
        "aws.worker_queue_url)",
    )
    with_config(reconcile)
    with_warehouse(reconcile)
    reconcile.set_defaults(run=_reconcile)

    contract = commands.add_parser("contract", help="table contracts")
    contract_commands = contract.add_subparsers(dest="contract_command", required=True)
    infer = contract_commands.add_parser(
        "infer",
        help="print a table contract inferred from a file's cells (YAML, as in the config)",
    )
    infer.add_argument("file", metavar="FILE")
    infer.add_argument("--sheet", metavar="S", help="the sheet to infer from (default: the first)")
    infer.add_argument("--table", metavar="NAME", help="table name (default: from the file name)")
    infer.add_argument(
        "--write",
        action="store_true",
        help="add the table and a routing rule for the file name to the config file",
    )
    infer.add_argument(
        "--allowed", action="store_true", help="list the values of low-cardinality text columns"
    )
    with_config(infer)
    infer.set_defaults(run=_contract_infer)

    return parser


def _expand(sources: Sequence[str]) -> list[str]:
    """Every file named, as the URI its results and ledger rows carry.

    A local path becomes its file:// URI here, before anything opens it, so a
    missing or unreadable file is reported under the same name as a good one.
    """
    from infrastructure.files.local import file_uri

    files: list[str] = []
    for source in sources:
        path = Path(source)
        if "://" in source:
            files.append(source)
        elif path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED
            )
            if not found:
                raise ConfigurationError(f"{source}: no {', '.join(SUPPORTED)} files inside")
            files.extend(file_uri(p) for p in found)
        else:
            files.append(file_uri(path))
    return files


def _ingest(args: argparse.Namespace) -> int:
    from application.results import IngestFile
    from entrypoints.containers import cli_container

    container = cli_container(args.config, args.warehouse)
    progress = _terminal_progress(container)
    use_case = container.ingest()
    return _each_file(
        args, container, progress, lambda uri: use_case.execute(IngestFile(uri)), dry_run=False
    )


def _validate(args: argparse.Namespace) -> int:
    """The dry run; its container never resolves the warehouse or any secret."""
    from application.results import CheckFile
    from entrypoints.containers import cli_container

    container = cli_container(args.config)
    write_report = args.report is not None
    if write_report:
        container.config.rejects.directory.from_value(str(args.report))
    progress = _terminal_progress(container)
    use_case = container.validate()
    return _each_file(
        args,
        container,
        progress,
        lambda uri: use_case.execute(CheckFile(uri, write_report=write_report)),
        dry_run=True,
    )


def _terminal_progress(container: CliContainer) -> TerminalProgress:
    from entrypoints.cli_output import TerminalProgress

    progress = TerminalProgress()
    container.progress.override(progress)
    return progress


def _each_file(
    args: argparse.Namespace,
    container: CliContainer,
    progress: TerminalProgress,
    execute: Callable[[str], IngestResult],
    *,
    dry_run: bool,
) -> int:
    """Run ``execute`` on every source, print the sheets and choose the exit code."""
    from entrypoints.cli_output import print_json_lines, print_results, sheet_json

    results: list[SheetResult] = []
    try:
        for source in _expand(args.sources):
            progress.start_file()
            result = execute(source)
            progress.finish()
            if args.json:
                print_json_lines(sheet_json(s, dry_run=dry_run) for s in result.sheets)
                sys.stdout.flush()
            results.extend(result.sheets)
    finally:
        progress.finish()
        container.shutdown_resources()
    if not args.json:
        print_results(results, sys.stdout, dry_run=dry_run)
    # One rule for ingest and validate: rejected rows alone are no failure.
    return EXIT_FAILED if any(r.refused for r in results) else EXIT_OK


def _init_tables(args: argparse.Namespace) -> int:
    from application.tables import InitTables
    from entrypoints.cli_output import print_init
    from entrypoints.containers import cli_container

    container = cli_container(args.config, args.warehouse)
    try:
        result = container.init_tables().execute(InitTables())
    finally:
        container.shutdown_resources()
    print_init(result, sys.stdout)
    return EXIT_OK if result.ok else EXIT_FAILED


def _init(args: argparse.Namespace) -> int:
    from entrypoints.containers import DEFAULT_CONFIG, LOCAL_CONFIG

    config = args.directory / LOCAL_CONFIG
    if config.exists():
        raise ConfigurationError(f"{config} exists already; init leaves it as it is")
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(DEFAULT_CONFIG.read_text(encoding="utf-8"), encoding="utf-8")
    ignore = args.directory / ".gitignore"
    lines = ignore.read_text().splitlines() if ignore.exists() else []
    if "data/" not in lines:
        # The warehouse, rejects reports and demo output land in data/.
        ignore.write_text("".join(f"{line}\n" for line in [*lines, "data/"]))
    print(f"wrote {config} (the Titanic tables as examples) and {ignore}")
    print("next: datalakep contract infer YOUR_FILE --write, then datalakep ingest YOUR_FILE")
    return EXIT_OK


def _history(args: argparse.Namespace) -> int:
    from application.tables import HistoryQuery, parse_since
    from domain.clock import utc_now
    from domain.ledger import LedgerFilter
    from entrypoints.cli_output import ledger_json, print_history, print_json_lines

    where = LedgerFilter(
        source=args.source,
        status=None if args.status is None else LoadStatus(args.status),
        table=args.table,
        since=None if args.since is None else parse_since(args.since, utc_now()),
    )
    entries = _ledger(args, HistoryQuery(limit=args.limit, where=where))
    if args.json:
        print_json_lines(ledger_json(e) for e in entries)
    else:
        print_history(entries, sys.stdout)
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    from application.tables import HistoryQuery
    from domain.ledger import LedgerFilter
    from entrypoints.cli_output import ledger_json, print_json_lines, print_load

    entries = _ledger(args, HistoryQuery(where=LedgerFilter(load_id=args.load_id)))
    if not entries:
        print(f"datalakep: no load {args.load_id!r} in the ledger", file=sys.stderr)
        return EXIT_FAILED
    for entry in entries:
        if args.json:
            print_json_lines([ledger_json(entry)])
        else:
            print_load(entry, sys.stdout)
    return EXIT_OK


def _ledger(args: argparse.Namespace, query: HistoryQuery) -> Sequence[LedgerEntry]:
    from entrypoints.containers import cli_container

    container = cli_container(args.config, args.warehouse)
    _require_existing_database(str(container.config.warehouse.url()))
    try:
        return container.history().execute(query)
    finally:
        container.shutdown_resources()


def _require_existing_database(url: str) -> None:
    """A read-only command must not create the DuckDB file it was pointed at.

    Opening a DuckDB path creates the file, its directory and the ledger; a
    mistyped --warehouse would leave all three behind and answer "no loads".
    """
    from infrastructure.warehouse.urls import parse_warehouse_url

    parsed = parse_warehouse_url(url)
    if parsed.scheme == "duckdb" and parsed.path != ":memory:" and not Path(parsed.path).is_file():
        raise ConfigurationError(
            f"no ledger at {parsed.redacted()}: {parsed.path} does not exist "
            "(nothing was ever loaded there)"
        )


class _Version(argparse.Action):
    """--version, reading the installed metadata only when asked (50 ms of imports)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help=str(kwargs.get("help")))

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            installed = version("datalakep")
        except PackageNotFoundError:
            installed = "(not installed)"
        print(f"datalakep {installed}")
        parser.exit()


def _worker(args: argparse.Namespace) -> int:
    import signal

    from entrypoints.aws_containers import worker_container
    from infrastructure.observability.logs import json_line
    from infrastructure.scratch import sweep_dead

    container = worker_container(args.queue_url, args.config, args.warehouse)
    try:
        _claim_single_writer(container.warehouse())
        worker = container.worker()
        sweep_dead()  # downloads and parsed rows that killed workers left behind
        # Forked before the poller's heartbeat and validation threads exist; kept between files.
        container.reader().prestart()
    except BaseException:
        container.shutdown_resources()
        raise

    def stop(signum: int, _frame: object) -> None:
        # Finish the message in hand, stop polling, exit 0: no row or message lost.
        logging.getLogger("datalakep.worker").warning(
            "%s received: finishing the current message", signal.Signals(signum).name
        )
        worker.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        stats = worker.run(until_empty=args.until_empty)
    finally:
        container.shutdown_resources()
    summary = (
        f"worker: {stats.received} messages, {stats.deleted} deleted, {stats.retried} "
        f"left for retry, {stats.files} files, {stats.rows_loaded} rows loaded"
    )
    # stdout also carries the EMF metric lines: in JSON mode every line there is JSON.
    print(json_line("datalakep.worker", summary) if args.log_format == "json" else summary)
    return EXIT_OK


def _claim_single_writer(warehouse: object) -> None:
    """A worker on DuckDB holds the file from the start: a second one stops before polling."""
    # Not imported here: a worker on another warehouse never loads duckdb, and a
    # DuckDbWarehouse exists only once its module has been imported.
    duckdb_adapter = sys.modules.get("infrastructure.warehouse.duckdb_warehouse")
    if duckdb_adapter is not None and isinstance(warehouse, duckdb_adapter.DuckDbWarehouse):
        warehouse.claim_writer()


def _reconcile(args: argparse.Namespace) -> int:
    from application.reconcile import ReconcileBucket
    from entrypoints.aws_containers import reconcile_container
    from entrypoints.cli_output import (
        missing_json,
        print_json_lines,
        print_reconcile,
        reconcile_summary,
    )

    container = reconcile_container(args.config, args.warehouse, args.dlq_url, args.queue_url)
    try:
        command = ReconcileBucket(args.bucket, args.prefix, enqueue=args.enqueue)
        result = container.reconcile().execute(command)
    finally:
        container.shutdown_resources()
    sent = result.enqueued > 0
    if args.json:
        print_json_lines(missing_json(m, enqueued=sent) for m in result.missing)
        # stderr: stdout stays one kind of object, one per line.
        print(reconcile_summary(result), file=sys.stderr)
    else:
        print_reconcile(result, sys.stdout)
    # Non-zero while something is missing and not yet sent again: cron can alert on it.
    return EXIT_FAILED if result.missing and not sent else EXIT_OK


def _contract_infer(args: argparse.Namespace) -> int:
    from application.infer import InferContract
    from entrypoints.containers import cli_container, user_config_path
    from entrypoints.contract_yaml import add_table, table_lines

    table = args.table or _table_name(args.file)
    container = cli_container(args.config)
    inferred = container.infer().execute(
        InferContract(args.file, table, sheet=args.sheet, allowed=args.allowed)
    )
    if not args.write:
        print("# under `tables:` in the config (or run again with --write):")
        print("\n".join(table_lines(inferred, Path(args.file).name)))
        return EXIT_OK
    path = user_config_path(args.config)
    if path is None:
        raise ConfigurationError(
            "no config file to add the table to: run `datalakep init` first, or pass --config FILE"
        )
    updated = add_table(path.read_text(), inferred, args.file, args.sheet, str(path))
    _write_atomically(path, updated)
    print(
        f"added table {table} ({len(inferred.contract.columns)} columns) and a routing rule "
        f"for {Path(args.file).name} to {path}"
    )
    return EXIT_OK


def _table_name(file: str) -> str:
    """``Titanic 3 (final).xls`` -> ``titanic_3_final``: a name no one has to quote."""
    stem = Path(file).stem.lower()
    name = "_".join(part for part in re.split(r"[^a-z0-9]+", stem) if part)
    return name if name and not name[0].isdigit() else f"t_{name}"


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


if __name__ == "__main__":
    raise SystemExit(main())
