"""A sheet as read from a file, before any contract is applied."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa


@dataclass(frozen=True)
class SheetPreview:
    """The first rows of a sheet, every cell as text, for header detection.

    ``rows[i]`` is the spreadsheet's row ``first_row + i``.
    """

    name: str
    rows: tuple[tuple[str | None, ...], ...]
    first_row: int = 1

    @property
    def blank(self) -> bool:
        """No cell in these rows holds anything but white space."""
        return not any(cell is not None and cell.strip() for row in self.rows for cell in row)


@dataclass(frozen=True)
class RawSheet:
    """Every data row below the header, cells as text (``None`` when empty).

    A reader may hand over a column as float64 instead when every cell in it
    is a number: validation then skips parsing text it would only turn back
    into numbers (the fast path for million-row sheets).

    ``cells`` has one string column per header cell, positionally; its column
    names are ``c0, c1, ...`` because real headers may repeat or be empty.
    ``row_numbers`` is the row number a spreadsheet program shows for each row,
    so reject reports point at the right line even after blank rows were dropped.
    """

    source: str
    name: str
    header: tuple[str, ...]
    header_row: int
    cells: pa.Table
    row_numbers: pa.Array
    date_1904: bool = False

    @property
    def num_rows(self) -> int:
        return int(self.cells.num_rows)
