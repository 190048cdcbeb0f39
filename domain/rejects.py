"""Why a row was not loaded, precisely enough for a person to fix the cell."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# The rejects workbook's own additions around the rejected rows. Named here,
# beside the reasons, because the workbook is meant to be fixed and uploaded
# again: routing must recognise these and leave them out of the data.
REPORT_ROW_COLUMN = "source_row"
REPORT_ERRORS_COLUMN = "datalakep_errors"
REPORT_SUMMARY_SHEET = "summary"
# The summary sheet's first labels, column A from row 1. The third names the
# report (each sheet's ledger load_id is in its own row); reports written before
# it was renamed say "Load id" there, and are still recognised when uploaded.
REPORT_SUMMARY_LABELS = ("Source", "Version", "Report id")
EARLIER_REPORT_SUMMARY_LABELS = (("Source", "Version", "Load id"),)


class RejectReason(StrEnum):
    NULL = "null_not_allowed"
    TYPE = "invalid_type"
    NOT_ALLOWED = "value_not_allowed"
    BELOW_MIN = "below_minimum"
    ABOVE_MAX = "above_maximum"
    TOO_LONG = "too_long"
    OUT_OF_RANGE = "out_of_type_range"
    TOO_PRECISE = "too_many_decimal_places"
    DUPLICATE_KEY = "duplicate_key"


@dataclass(frozen=True)
class CellReject:
    sheet: str
    row: int  # as the spreadsheet shows it
    column: str  # the contract column
    position: int  # 0-based column in the sheet, for highlighting
    value: str | None
    reason: RejectReason
    message: str

    def describe(self) -> str:
        return f"sheet {self.sheet!r}, row {self.row}, column {self.column}: {self.message}"


@dataclass(frozen=True)
class RejectedRow:
    row: int
    values: tuple[str | None, ...]  # the row's cells as read, in sheet column order
    problems: tuple[CellReject, ...]


@dataclass(frozen=True)
class SheetRejects:
    sheet: str
    table: str | None
    header: tuple[str, ...]
    header_row: int
    rows: tuple[RejectedRow, ...]
    # Set when the whole sheet was refused (unroutable, over the reject ratio).
    sheet_error: str | None = None
    # The ledger row of the load or refusal this sheet belongs to.
    load_id: str | None = None

    @classmethod
    def refusal(
        cls, sheet: str | None, table: str | None, error: str, *, load_id: str
    ) -> SheetRejects:
        """A sheet (or, with ``sheet`` None, the whole file) refused before any row was read.

        There are no rows or header to show, only why: the report's summary names it.
        """
        return cls(sheet or "", table, (), 0, (), sheet_error=error, load_id=load_id)


@dataclass(frozen=True)
class RejectsReport:
    source_uri: str
    source_version: str
    load_id: str
    sheets: tuple[SheetRejects, ...]

    @property
    def rejected_rows(self) -> int:
        return sum(len(s.rows) for s in self.sheets)
