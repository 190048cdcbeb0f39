"""`datalakep worker` that SIGKILLs itself at a chosen point: the crash half of the fault suite.

    python -m tests.support.crashing_worker PHASE[:N] -- worker --queue-url URL ...

PHASE picks the seam; the process dies at its N-th use (default 1):

- ``parse``: the sheet has just been parsed for this process (``application.pipeline``
  calls ``validate_sheet`` on what ``Workbook.read`` returned). Patched in the use case,
  not in the readers, because parsing may move into a forked child; killing the child
  would test the isolation, not a crash of the worker.
- ``copy``: half of a COPY's CSV is on the wire and the COPY is still open.
- ``commit``: the rows are merged, the ledger row is not written, nothing is committed
  (the ``on_merged`` hook every ``PostgresWarehouse`` is built with).
- ``delete``: everything is committed and the rejects report written, but the SQS
  message is not deleted.
- ``report``: between the rejects report's CSV upload and its workbook upload.
- ``random:SECONDS``: SECONDS after the first batch of messages arrives, wherever
  the worker is by then (the line on stderr names the function it was in).

Only SIGKILL: no ``finally``, no atexit, no signal handler runs, as when the OOM
killer or a lost instance ends a worker. Before dying it writes one line to stderr,
``crashing_worker: SIGKILL at <phase> #<n>``, so a test can tell which seam fired.
Nothing here is imported by the service: the seams are patched from outside.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

PHASES = ("parse", "copy", "commit", "delete", "report", "random")
KILL_MARK = "crashing_worker: SIGKILL at"


def die(where: str) -> None:
    sys.stderr.write(f"{KILL_MARK} {where}\n")
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _on_nth_call(
    original: Callable[..., Any], nth: int, phase: str, before: bool = True
) -> Callable[..., Any]:
    """``original``, except that its ``nth`` call kills the process (before or after it runs)."""
    calls = 0
    guard = threading.Lock()

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        with guard:
            calls += 1
            fire = calls == nth
        if fire and before:
            die(f"{phase} #{nth}")
        result = original(*args, **kwargs)
        if fire:
            die(f"{phase} #{nth}")
        return result

    return wrapper


def _arm_parse(nth: int) -> None:
    import application.pipeline as pipeline

    pipeline.validate_sheet = _on_nth_call(pipeline.validate_sheet, nth, "parse")  # type: ignore[attr-defined]


def _arm_copy(nth: int) -> None:
    import psycopg

    import infrastructure.warehouse.postgres_warehouse as pg

    original_copy_csv = pg._copy_csv
    original_write = psycopg.Copy.write
    calls = 0

    def torn_write(self: psycopg.Copy, buffer: Any) -> None:
        data = bytes(buffer)
        # Half a buffer ends mid-row: the server holds a torn COPY when the client dies.
        original_write(self, data[: len(data) // 2])
        die(f"copy #{nth}")

    @functools.wraps(original_copy_csv)
    def copy_csv(*args: Any, **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == nth:
            psycopg.Copy.write = torn_write  # type: ignore[method-assign]
        original_copy_csv(*args, **kwargs)

    pg._copy_csv = copy_csv


def _arm_commit(nth: int) -> None:
    from infrastructure.warehouse.postgres_warehouse import PostgresWarehouse

    def merged(request: Any) -> None:
        return None

    killer = _on_nth_call(merged, nth, "commit")
    original_init = PostgresWarehouse.__init__

    @functools.wraps(original_init)
    def init(self: PostgresWarehouse, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **{**kwargs, "on_merged": killer})

    PostgresWarehouse.__init__ = init  # type: ignore[method-assign]


def _arm_delete(nth: int) -> None:
    from infrastructure.aws.sqs_messages import SqsMessageSource

    SqsMessageSource.delete = _on_nth_call(  # type: ignore[method-assign]
        SqsMessageSource.delete, nth, "delete"
    )


def _arm_report(nth: int) -> None:
    from infrastructure.aws.s3_reports import S3RejectsReportWriter

    # The writer uploads the CSV first, then the workbook: the 2nd upload is between them.
    S3RejectsReportWriter._upload = _on_nth_call(  # type: ignore[method-assign]
        S3RejectsReportWriter._upload, 2 * nth, "report"
    )


_OWN_PACKAGES = ("application.", "domain.", "infrastructure.", "entrypoints.")


def _main_thread_at(depth: int = 3) -> str:
    """The innermost functions of the service's own code the main thread is in, outer first."""
    frame = sys._current_frames().get(threading.main_thread().ident or 0)
    found: list[str] = []
    while frame is not None and len(found) < depth:
        module = str(frame.f_globals.get("__name__", ""))
        if module.startswith(_OWN_PACKAGES):
            found.append(f"{module.rsplit('.', 1)[-1]}.{frame.f_code.co_qualname}")
        frame = frame.f_back
    return " > ".join(reversed(found)) or "?"


def _die_now(seconds: float) -> None:
    die(f"random +{seconds:.3f}s in {_main_thread_at()}")


def _arm_random(seconds: float) -> None:
    from infrastructure.aws.sqs_messages import SqsMessageSource

    original = SqsMessageSource.receive
    started = threading.Event()

    @functools.wraps(original)
    def receive(self: SqsMessageSource, *args: Any, **kwargs: Any) -> Any:
        batch = original(self, *args, **kwargs)
        if batch and not started.is_set():
            started.set()
            timer = threading.Timer(seconds, _die_now, args=(seconds,))
            timer.daemon = True
            timer.start()
        return batch

    SqsMessageSource.receive = receive  # type: ignore[method-assign]


def arm(phase: str) -> None:
    name, _, count = phase.partition(":")
    if name not in PHASES:
        raise SystemExit(f"crashing_worker: unknown phase {name!r}; one of {', '.join(PHASES)}")
    if name == "random":
        _arm_random(float(count or "0"))
        return
    nth = int(count or "1")
    if nth < 1:
        raise SystemExit("crashing_worker: N must be 1 or more")
    {
        "parse": _arm_parse,
        "copy": _arm_copy,
        "commit": _arm_commit,
        "delete": _arm_delete,
        "report": _arm_report,
    }[name](nth)


def main(argv: Sequence[str]) -> int:
    args = list(argv)
    if len(args) < 2 or args[1] != "--":
        raise SystemExit(__doc__)
    arm(args[0])
    from entrypoints.cli import main as datalakep

    return datalakep(args[2:])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
