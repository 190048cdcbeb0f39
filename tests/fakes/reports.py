"""An in-memory rejects report writer for the use-case tests."""

from __future__ import annotations

from domain.rejects import RejectsReport


class InMemoryRejectsReportWriter:
    """Keeps every report it is given, in order, so a test can inspect them."""

    def __init__(self) -> None:
        self.reports: list[RejectsReport] = []

    def write(self, report: RejectsReport) -> str:
        self.reports.append(report)
        return f"memory://rejects/{report.load_id}"
