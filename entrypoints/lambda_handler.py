"""AWS Lambda entrypoint: S3 events directly, SQS event-source batches, or a reconcile.

The container is built at import (init) time, which Lambda does not bill
against a warm invocation; the warehouse connection opens on first use and is
reused by every warm invocation after it. A configuration that cannot work (no
allowed sources) fails the init, where it shows, rather than every event.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from application.handle_event import Disposition, EventResult, HandleEvent
from application.log_context import bound
from domain.errors import TransientError
from domain.events import StorageEvent
from domain.printable import printable
from entrypoints.aws_containers import LambdaContainer, lambda_container
from infrastructure.aws.events import decode
from infrastructure.observability.logs import configure_logging
from infrastructure.scratch import sweep_dead

log = logging.getLogger("datalakep.lambda")
# One JSON object per line on stdout, which Lambda sends to CloudWatch Logs.
configure_logging("json", os.environ.get("DATALAKEP_LOG_LEVEL", "INFO"), "stdout")

container: LambdaContainer = lambda_container()
container.sources()  # refuses an empty allow-list at init
# A warm sandbox may have been frozen mid-parse and thawed in a new process.
sweep_dead()
# The parser child, forked while this process has one thread, is kept between files.
container.reader().prestart()


# The scheduled event deploy/template.yaml sends for a daily reconcile --enqueue.
RECONCILE = "reconcile"

_REDELIVERED = "; left for retry after the queue's visibility timeout"


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    with bound(aws_request_id=getattr(context, "aws_request_id", None)):
        return _handle(event, context)


def _handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if isinstance(event, dict) and event.get("datalakep") == RECONCILE:
        return reconcile(event)
    records = event.get("Records") if isinstance(event, dict) else None
    if isinstance(records, list) and records and records[0].get("eventSource") == "aws:sqs":
        return _sqs_batch(records, context)
    # A direct S3 or EventBridge invocation: a transient error is raised so
    # Lambda's own async retries (and its on-failure destination) apply.
    decoded = decode(event)
    try:
        result = container.handle_event().execute(_command(decoded, context))
    except TransientError as error:
        _left_for_retry(decoded, None, f"{printable(error)}; Lambda retries the event", error.code)
        raise
    if result.disposition is Disposition.RETRY:
        raise RuntimeError(result.error or "event could not be handled")
    return _summary(result)


def reconcile(event: dict[str, Any]) -> dict[str, Any]:
    """``datalakep reconcile --enqueue`` in the function, so no other image is scheduled.

    The event names the bucket, the prefix, the DLQ to peek and the queue to
    send lost objects to. It gets its own container, configured as the CLI's
    is, because reconcile needs the listing and the DLQ that ingest does not.
    """
    from application.reconcile import ReconcileBucket
    from entrypoints.aws_containers import reconcile_container
    from entrypoints.cli_output import reconcile_summary

    reconciler = reconcile_container(dlq_url=event.get("dlq_url"), queue_url=event.get("queue_url"))
    try:
        command = ReconcileBucket(str(event["bucket"]), str(event.get("prefix", "")), enqueue=True)
        result = reconciler.reconcile().execute(command)
    finally:
        reconciler.shutdown_resources()
    log.info("reconcile: %s", reconcile_summary(result))
    return {
        "listed": result.listed,
        "missing": [m.uri for m in result.missing],
        "enqueued": result.enqueued,
        "in_dlq": result.in_dlq,
    }


def _command(event: StorageEvent, context: Any) -> HandleEvent:
    heavy = container.config.aws.heavy_file_bytes()
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return HandleEvent(
        event,
        heavy_file_bytes=int(heavy) if heavy else None,
        seconds_left=remaining() / 1000 if callable(remaining) else None,
    )


def _sqs_batch(records: list[dict[str, Any]], context: Any) -> dict[str, Any]:
    """Report only the failed messages, so SQS deletes the rest (partial batch response).

    As in the worker, whatever one record raises fails that record only: it is
    retried, and reaches the DLQ after maxReceiveCount; the others carry on.
    """
    failures = []
    use_case = container.handle_event()
    for record in records:
        message_id = str(record.get("messageId"))
        body = decode(str(record.get("body", "")))
        with bound(message_id=message_id):
            try:
                result = use_case.execute(_command(body, context))
            except TransientError as error:
                why = f"{printable(error)}{_REDELIVERED}"
                _left_for_retry(body, _attempt(record), why, error.code)
                failures.append({"itemIdentifier": message_id})
                continue
            except Exception as error:  # noqa: BLE001 - one record must not fail the batch
                why = f"unexpected {type(error).__name__}{_REDELIVERED}"
                _left_for_retry(body, _attempt(record), why, "unexpected", traceback=True)
                failures.append({"itemIdentifier": message_id})
                continue
            if result.disposition is Disposition.RETRY:
                why = f"{printable(result.error or 'malformed')}{_REDELIVERED}"
                _left_for_retry(body, _attempt(record), why, "malformed_event")
                failures.append({"itemIdentifier": message_id})
    return {"batchItemFailures": failures}


def _summary(result: EventResult) -> dict[str, Any]:
    return {
        "files": [r.source for r in result.results],
        "forwarded": list(result.forwarded),
        "ignored": list(result.ignored),
        "rows_loaded": sum(s.rows_loaded for r in result.results for s in r.sheets),
    }


def _attempt(record: dict[str, Any]) -> int | None:
    attributes = record.get("attributes")
    count = attributes.get("ApproximateReceiveCount") if isinstance(attributes, dict) else None
    return None if count is None else int(count)


def _left_for_retry(
    event: StorageEvent,
    attempt: int | None,
    why: str,
    error_code: str,
    *,
    traceback: bool = False,
) -> None:
    """Name the objects and the attempt, not only the message."""
    sources = event.uris
    log.log(
        logging.ERROR if traceback else logging.WARNING,
        "%s (attempt %s): %s",
        ", ".join(printable(s) for s in sources) or "a message naming no object",
        attempt or "?",
        why,
        exc_info=traceback,
        extra={"source": ",".join(sources) or None, "attempt": attempt, "error_code": error_code},
    )
