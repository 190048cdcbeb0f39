"""CloudWatch Embedded Metric Format: metrics as one JSON log line per file outcome.

Written to stdout, which Lambda ships to CloudWatch Logs and the CloudWatch
agent does for the worker; CloudWatch extracts the metrics from the line. No
PutMetricData call, so no API latency, no throttling and no IAM permission on
the hot path, and a metric can never fail a load.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO

from application.outcomes import FileOutcome, FileStatus

DIMENSIONS = ("table", "status")
# A file without a table (unreadable, ignored) still needs a string dimension value.
NO_TABLE = "none"

_FILE_COUNTERS = {
    FileStatus.LOADED: "FilesLoaded",
    FileStatus.REJECTED: "FilesRejected",
    FileStatus.FAILED: "FilesFailed",
    FileStatus.SKIPPED: "FilesSkipped",
    FileStatus.STALE: "FilesSkipped",
}
_UNITS = {
    "FilesLoaded": "Count",
    "FilesRejected": "Count",
    "FilesFailed": "Count",
    "FilesSkipped": "Count",
    "RowsLoaded": "Count",
    "RowsRejected": "Count",
    "LoadSeconds": "Seconds",
    "EventLagSeconds": "Seconds",
}


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)


class EmfMetrics:
    """An ``OutcomeListener`` writing one EMF record per file outcome.

    Every file counter is present in every record (0 or 1), so a dashboard's
    Sum over any dimension counts files without gaps. Ignored and handed-off
    files get no record: nothing was loaded, and the handed-off file's own
    outcome comes from the worker.
    """

    def __init__(
        self,
        namespace: str,
        stream: TextIO | None = None,
        clock_ms: Callable[[], int] = _now_ms,
    ) -> None:
        self._namespace = namespace
        self._stream = stream
        self._clock_ms = clock_ms
        # Lines from concurrent threads must not interleave within a record.
        self._lock = threading.Lock()

    def file_outcome(self, outcome: FileOutcome) -> None:
        record = self.record(outcome)
        if record is None:
            return
        line = json.dumps(record, ensure_ascii=True)
        stream = self._stream or sys.stdout
        with self._lock:
            stream.write(line + "\n")
            stream.flush()

    def record(self, outcome: FileOutcome) -> dict[str, Any] | None:
        """The EMF document for ``outcome``; None when the outcome has no metric."""
        counter = _FILE_COUNTERS.get(outcome.status)
        if counter is None:
            return None
        values: dict[str, float] = {name: 0 for name in dict.fromkeys(_FILE_COUNTERS.values())}
        values[counter] = 1
        values["RowsLoaded"] = outcome.rows_loaded
        values["RowsRejected"] = outcome.rows_rejected
        if outcome.duration_ms is not None:
            values["LoadSeconds"] = outcome.duration_ms / 1000
        lag = outcome.event_lag_seconds
        if lag is not None:
            values["EventLagSeconds"] = max(0.0, lag)
        return {
            "_aws": {
                "Timestamp": self._clock_ms(),
                "CloudWatchMetrics": [
                    {
                        "Namespace": self._namespace,
                        "Dimensions": [list(DIMENSIONS)],
                        "Metrics": [{"Name": n, "Unit": _UNITS[n]} for n in values],
                    }
                ],
            },
            "table": outcome.table or NO_TABLE,
            "status": outcome.status.value,
            **values,
            # Properties, not dimensions: searchable in Logs Insights, no metric cardinality.
            "source": outcome.source,
            "version": outcome.version,
            "load_id": ",".join(outcome.load_ids) or None,
        }
