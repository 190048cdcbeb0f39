"""AWS Lambda entrypoint: S3 events directly, SQS event-source batches, or a reconcile.

The container is built at import (init) time, which Lambda does not bill
against a warm invocation; the warehouse connection opens on first use and is
reused by every warm invocation after it. A configuration that cannot work (no
allowed sources) fails the init, where it shows, rather than every event.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from application.handle_event import Disposition, EventResult, HandleEvent
from domain.errors import TransientError
from domain.printable import printable
from entrypoints.containers import LambdaContainer, lambda_container
from infrastructure.scratch import sweep_dead

log = logging.getLogger("datalakep.lambda")
logging.getLogger().setLevel(os.environ.get("DATALAKEP_LOG_LEVEL", "INFO"))
logging.getLogger("fastexcel").setLevel(logging.ERROR)

container: LambdaContainer = lambda_container()
container.sources()  # refuses an empty allow-list at init
# A warm sandbox may have been frozen mid-parse and thawed in a new process.
sweep_dead()


# The scheduled event deploy/template.yaml sends for a daily reconcile --enqueue.
RECONCILE = "reconcile"


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if isinstance(event, dict) and event.get("datalakep") == RECONCILE:
        return reconcile(event)
    records = event.get("Records") if isinstance(event, dict) else None
    if isinstance(records, list) and records and records[0].get("eventSource") == "aws:sqs":
        return _sqs_batch(records, context)
    # A direct S3 or EventBridge invocation: a transient error is raised so
    # Lambda's own async retries (and its on-failure destination) apply.
    result = container.handle_event().execute(_command(event, context))
    _log(result)
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
    from entrypoints.cli_output import reconcile_summary
    from entrypoints.containers import reconcile_container

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


def _command(payload: str | dict[str, Any], context: Any) -> HandleEvent:
    heavy = container.config.aws.heavy_file_bytes()
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return HandleEvent(
        payload,
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
        try:
            result = use_case.execute(_command(str(record.get("body", "")), context))
        except TransientError as error:
            log.warning("message %s: %s; left for retry", message_id, printable(error))
            failures.append({"itemIdentifier": message_id})
            continue
        except Exception as error:  # one record must not fail the batch
            name = type(error).__name__
            log.exception("message %s: unexpected %s; left for retry", message_id, name)
            failures.append({"itemIdentifier": message_id})
            continue
        _log(result)
        if result.disposition is Disposition.RETRY:
            failures.append({"itemIdentifier": message_id})
    return {"batchItemFailures": failures}


def _summary(result: EventResult) -> dict[str, Any]:
    return {
        "files": [r.source for r in result.results],
        "forwarded": list(result.forwarded),
        "ignored": list(result.ignored),
        "rows_loaded": sum(s.rows_loaded for r in result.results for s in r.sheets),
    }


def _log(result: EventResult) -> None:
    for ingested in result.results:
        for sheet in ingested.sheets:
            log.info(
                json.dumps(
                    {
                        "source": sheet.source,
                        "sheet": sheet.sheet,
                        "table": sheet.table,
                        "status": sheet.status.value,
                        "rows_loaded": sheet.rows_loaded,
                        "rows_rejected": sheet.rows_rejected,
                        "error": sheet.error,
                    }
                )
            )
    for uri in result.forwarded:
        log.info("handed %s to the worker queue", printable(uri))
    for reason in result.ignored:
        log.info("ignored: %s", printable(reason))
