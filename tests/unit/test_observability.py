"""The JSON log lines and the EMF metric records, as CloudWatch reads them."""

from __future__ import annotations

import io
import json
import logging
import threading
from datetime import datetime

import pytest

from application.log_context import bound, current
from application.outcomes import FileOutcome, FileStatus
from domain.printable import printable
from infrastructure.observability.emf import EmfMetrics
from infrastructure.observability.logs import JsonFormatter, TextFormatter
from tests.support.emf import emf_problems

pytestmark = pytest.mark.unit

HOSTILE = "Sheet\n1\r\x00\x1b[31m\x7f\x85\u2028\u2029end"


def record(message: str, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("datalakep.test", logging.INFO, __file__, 1, message, None, None)
    rec.__dict__.update(extra)
    return rec


def test_a_json_line_is_one_line_with_the_context_fields_and_escaped_controls() -> None:
    formatter = JsonFormatter(static={"worker": "host:1"})
    with bound(message_id="m-1", source="s3://b/old"), bound(source=f"s3://b/{HOSTILE}"):
        line = formatter.format(record(f"cell {HOSTILE}", rows_loaded=3, unrelated="x"))

    assert "\n" not in line
    assert "\r" not in line
    assert not any(ch in line for ch in "\x00\x1b\x7f\x85\u2028\u2029")
    doc = json.loads(line)
    assert doc["message"] == f"cell {HOSTILE}"  # escaped, not lost
    assert doc["source"] == f"s3://b/{HOSTILE}"  # the innermost binding wins
    assert (doc["message_id"], doc["worker"], doc["rows_loaded"]) == ("m-1", "host:1", 3)
    assert "unrelated" not in doc
    assert {"timestamp", "level", "logger"} <= doc.keys()
    assert doc["level"] == "INFO"
    assert datetime.fromisoformat(doc["timestamp"]).tzinfo is not None
    assert current() == {}


def test_text_lines_escape_controls_but_keep_a_traceback() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        rec = record(f"bad {HOSTILE}", source="s3://b/k")
        rec.exc_info = sys.exc_info()
    text = TextFormatter().format(rec)
    first, *trace = text.split("\n")
    assert first.endswith(f"bad {printable(HOSTILE)} [source=s3://b/k]")
    assert "\\n" in first
    assert "\\x1b" in first
    assert "\\u2028" in first
    assert trace[-1] == "ValueError: boom"


def test_bound_fields_belong_to_their_thread() -> None:
    seen: dict[str, object] = {}

    def other() -> None:
        seen.update(current())

    with bound(message_id="main"):
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    assert seen == {}


OUTCOME = FileOutcome(
    source="s3://inbox/incoming/a.xlsx",
    status=FileStatus.LOADED,
    version="v1",
    tables=("train_data",),
    load_ids=("load-1",),
    rows_read=11,
    rows_loaded=10,
    rows_rejected=1,
    duration_ms=1500,
    event_time=datetime(2026, 12, 1, 10, 0, 0),
    finished_at=datetime(2026, 12, 1, 10, 0, 4),
)


def test_a_file_outcome_is_one_valid_emf_record() -> None:
    out = io.StringIO()
    EmfMetrics("datalakeP", out, clock_ms=lambda: 1_764_583_204_000).file_outcome(OUTCOME)

    [line] = out.getvalue().splitlines()
    assert emf_problems(line) == []
    doc = json.loads(line)
    [directive] = doc["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "datalakeP"
    assert directive["Dimensions"] == [["table", "status"]]
    assert (doc["table"], doc["status"]) == ("train_data", "loaded")
    values = {m["Name"]: doc[m["Name"]] for m in directive["Metrics"]}
    assert values == {
        "FilesLoaded": 1,
        "FilesRejected": 0,
        "FilesFailed": 0,
        "FilesSkipped": 0,
        "RowsLoaded": 10,
        "RowsRejected": 1,
        "LoadSeconds": 1.5,
        "EventLagSeconds": 4.0,
    }
    assert {m["Name"]: m["Unit"] for m in directive["Metrics"]}["LoadSeconds"] == "Seconds"


@pytest.mark.parametrize(
    ("status", "counter"),
    [
        (FileStatus.FAILED, "FilesFailed"),
        (FileStatus.REJECTED, "FilesRejected"),
        (FileStatus.SKIPPED, "FilesSkipped"),
        (FileStatus.STALE, "FilesSkipped"),
    ],
)
def test_every_counted_status_is_valid_emf_even_without_a_table(
    status: FileStatus, counter: str
) -> None:
    out = io.StringIO()
    outcome = FileOutcome(source="s3://b/k", status=status)
    EmfMetrics("ns", out).file_outcome(outcome)
    [line] = out.getvalue().splitlines()
    assert emf_problems(line) == []
    doc = json.loads(line)
    assert (doc[counter], doc["table"]) == (1, "none")
    assert "EventLagSeconds" not in doc


def test_ignored_and_handed_off_files_emit_no_metric() -> None:
    out = io.StringIO()
    for status in (FileStatus.IGNORED, FileStatus.HANDED_OFF):
        EmfMetrics("ns", out).file_outcome(FileOutcome(source="s3://b/k", status=status))
    assert out.getvalue() == ""


def test_the_checker_catches_what_the_specification_forbids() -> None:
    good = {
        "_aws": {
            "Timestamp": 1_764_583_204_000,
            "CloudWatchMetrics": [
                {
                    "Namespace": "n",
                    "Dimensions": [["t"]],
                    "Metrics": [{"Name": "M", "Unit": "Count"}],
                }
            ],
        },
        "t": "x",
        "M": 1,
    }
    assert emf_problems(json.dumps(good)) == []
    broken = json.loads(json.dumps(good))
    broken["_aws"]["Timestamp"] = 1_764_583_204  # seconds, not ms
    broken["_aws"]["CloudWatchMetrics"][0]["Dimensions"] = ["t"]  # not an array of arrays
    broken["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] = "Files"
    del broken["M"]
    assert len(emf_problems(json.dumps(broken))) == 4
