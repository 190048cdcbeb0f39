"""Rejects report writers: what a person opens to fix the cells we refused."""

from infrastructure.reports.local import LocalRejectsReportWriter
from infrastructure.reports.neutralise import neutralise

__all__ = ["LocalRejectsReportWriter", "neutralise"]
