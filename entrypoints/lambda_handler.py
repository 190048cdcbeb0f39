"""AWS Lambda entrypoint: S3 events directly, or SQS event-source batches.

The container is built at import (init) time, which Lambda does not bill
against a warm invocation; the warehouse connection opens on first use and is
reused by every warm invocation after it.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from application.events import uris_named
from application.handle_event import Disposition, EventResult, HandleEvent
from application.log_context import bound
from domain.errors import TransientError
from entrypoints.containers import LambdaContainer, lambda_container
from infrastructure.observability.logs import configure_logging

log = logging.getLogger("datalakep.lambda")
# One JSON object per line on stdout, which Lambda sends to CloudWatch Logs.
configure_logging("json", os.environ.get("DATALAKEP_LOG_LEVEL", "INFO"), "stdout")

container: LambdaContainer = lambda_container()

_REDELIVERED = "; left for retry after the queue's visibility timeout"


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    with bound(aws_request_id=getattr(context, "aws_request_id", None)):
        return _handle(event)


def _handle(event: dict[str, Any]) -> dict[str, Any]:
    heavy = container.config.aws.heavy_file_bytes()
    limit = int(heavy) if heavy else None
    records = event.get("Records") if isinstance(event, dict) else None
    if isinstance(records, list) and records and records[0].get("eventSource") == "aws:sqs":
        return _sqs_batch(records, limit)
    # A direct S3 or EventBridge invocation: a transient error is raised so
    # Lambda's own async retries (and its on-failure destination) apply.
    try:
        result = container.handle_event().execute(HandleEvent(event, heavy_file_bytes=limit))
    except TransientError as error:
        _left_for_retry(event, None, f"{error}; Lambda retries the event", error.code)
        raise
    if result.disposition is Disposition.RETRY:
        raise RuntimeError(result.error or "event could not be handled")
    return _summary(result)


def _sqs_batch(records: list[dict[str, Any]], limit: int | None) -> dict[str, Any]:
    """Report only the failed messages, so SQS deletes the rest (partial batch response)."""
    failures = []
    use_case = container.handle_event()
    for record in records:
        message_id = str(record.get("messageId"))
        body = str(record.get("body", ""))
        with bound(message_id=message_id):
            try:
                result = use_case.execute(HandleEvent(body, heavy_file_bytes=limit))
            except TransientError as error:
                _left_for_retry(body, _attempt(record), f"{error}{_REDELIVERED}", error.code)
                failures.append({"itemIdentifier": message_id})
                continue
            if result.disposition is Disposition.RETRY:
                why = f"{result.error or 'malformed'}{_REDELIVERED}"
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
    payload: str | dict[str, Any], attempt: int | None, why: str, error_code: str
) -> None:
    """Name the objects and the attempt, not only the message."""
    sources = uris_named(payload)
    log.warning(
        "%s (attempt %s): %s",
        ", ".join(sources) or "a message naming no object",
        attempt or "?",
        why,
        extra={"source": ",".join(sources) or None, "attempt": attempt, "error_code": error_code},
    )
