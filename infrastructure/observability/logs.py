"""One JSON object per log line, or escaped human text, from the stdlib only.

Measured against aws-lambda-powertools' Logger (README, "Choices"): the same
fields cost about a hundred lines here and nothing at cold start, and the
context the service needs (message, file, request) is already bound by
``application.log_context``.

CloudWatch, journald and most shippers split records at newlines, so a
record must never contain a raw one: ``json.dumps`` escapes C0 controls, and
what it leaves alone (DEL, C1 controls, U+2028/U+2029, which some readers take
for line breaks) is escaped here. The human text format escapes its message
with ``domain.printable``, the one escaping of every log call and CLI line.
File content reaches logs through object keys, sheet names and cell values
quoted in errors.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

from application.log_context import current
from domain.printable import printable

# The structured fields a record may carry, from ``extra=`` or the log context.
FIELDS = (
    "source",
    "version",
    "sheet",
    "table",
    "load_id",
    "status",
    "rows_read",
    "rows_loaded",
    "rows_rejected",
    "rejects_report",
    "duration_ms",
    "error_code",
    "reason",
    "message_id",
    "attempt",
    "delay_seconds",
    "aws_request_id",
    "worker",
)

_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u2028\u2029]")


def _escape_json(text: str) -> str:
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The context's fields, then the record's own ``extra`` fields over them."""
    fields = {k: v for k, v in current().items() if k in FIELDS}
    for name in FIELDS:
        value = record.__dict__.get(name)
        if value is not None:
            fields[name] = value
    return fields


class JsonFormatter(logging.Formatter):
    """timestamp, level, logger, message, then the structured fields present."""

    def __init__(self, static: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self._static = dict(static or {})

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **self._static,
            **record_fields(record),
        }
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return _escape_json(json.dumps(doc, ensure_ascii=False, default=str))


class TextFormatter(logging.Formatter):
    """The CLI's human lines: time, level, logger, message, then ``key=value`` fields.

    The message and fields are escaped onto one line; a traceback keeps its lines.
    """

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        fields = record_fields(record)
        if fields:
            text += " [" + " ".join(f"{k}={v}" for k, v in fields.items()) + "]"
        line = f"{self.formatTime(record)} {record.levelname} {record.name}: {printable(text)}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def json_line(logger: str, message: str, **fields: Any) -> str:
    """``message`` as one INFO record in the JSON log format, for a result printed on stdout."""
    record = logging.LogRecord(logger, logging.INFO, __file__, 0, message, None, None)
    record.__dict__.update(fields)
    return JsonFormatter().format(record)


class _StandardStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to ``sys.stdout`` or ``sys.stderr`` as they are when a record is written.

    A handler holding the stream object would keep writing to whatever replaced
    it at configuration time (a test's capture, closed since) instead of the
    process's stream.
    """

    def __init__(self, name: str) -> None:
        self._stream_name = name
        super().__init__()

    @property
    def stream(self) -> TextIO:
        stream: TextIO = getattr(sys, self._stream_name)
        return stream

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        return None


def configure_logging(
    log_format: str = "json",
    level: str | int = logging.INFO,
    stream: str = "stderr",
    static: Mapping[str, Any] | None = None,
) -> None:
    """Replace the root logger's handlers with one writing ``log_format`` lines to
    ``sys.<stream>`` (``stdout`` or ``stderr``).

    Replacing, not adding: the Lambda runtime installs its own handler, whose
    lines would otherwise be written a second time in its format.
    """
    handler = _StandardStreamHandler(stream)
    handler.setFormatter(JsonFormatter(static) if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # fastexcel warns about every all-empty column; that is routine here.
    logging.getLogger("fastexcel").setLevel(logging.ERROR)
