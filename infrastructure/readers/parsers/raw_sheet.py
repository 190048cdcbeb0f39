"""Assembling a RawSheet from text columns: the rules both readers share."""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from domain.sheet import RawSheet
from infrastructure.readers.parsers.cell_text import TEXT, ArrowColumn


def build_raw_sheet(
    *,
    source: str,
    name: str,
    header: Sequence[str | None],
    header_row: int,
    columns: Sequence[ArrowColumn],
    row_numbers: pa.Array,
    date_1904: bool = False,
) -> RawSheet:
    """A RawSheet from positional text columns whose blank cells are already null.

    Header and data may differ in width (a data column without a label, a
    label over an empty column): both are padded to the wider, then trailing
    columns with neither label nor data are dropped. Rows whose cells are all
    null are dropped wherever they are; ``row_numbers`` is filtered with them
    so every kept row keeps its spreadsheet number.
    """
    rows = len(row_numbers)
    labels = ["" if label is None else label for label in header]
    cols = list(columns)
    width = max(len(labels), len(cols))
    labels += [""] * (width - len(labels))
    cols += [pa.nulls(rows, TEXT)] * (width - len(cols))
    while width and not labels[width - 1].strip() and cols[width - 1].null_count == rows:
        width -= 1
    labels, cols = labels[:width], cols[:width]

    if cols:
        table = pa.table({f"c{i}": col for i, col in enumerate(cols)})
        numbers = row_numbers
        keep = _non_blank(cols)
        if keep.false_count:
            table = table.filter(keep)
            numbers = numbers.filter(keep)
    else:
        # No column has a label or a cell: every row is blank.
        table, numbers = pa.table({}), pa.array([], pa.int64())
    return RawSheet(
        source=source,
        name=name,
        header=tuple(labels),
        header_row=header_row,
        cells=table,
        row_numbers=numbers,
        date_1904=date_1904,
    )


def empty_raw_sheet(
    *, source: str, name: str, header: Sequence[str | None], header_row: int, date_1904: bool
) -> RawSheet:
    """A sheet with no data rows below ``header_row``."""
    return build_raw_sheet(
        source=source,
        name=name,
        header=header,
        header_row=header_row,
        columns=(),
        row_numbers=pa.array([], pa.int64()),
        date_1904=date_1904,
    )


def _non_blank(cols: Sequence[ArrowColumn]) -> pa.BooleanArray:
    keep = pc.is_valid(cols[0])
    for col in cols[1:]:
        keep = pc.or_(keep, pc.is_valid(col))
    if isinstance(keep, pa.ChunkedArray):
        keep = keep.combine_chunks()
    return keep
