"""Typed Arrow columns from a spreadsheet rendered as the text validation expects.

Validation coerces text to the contract's types the same way for CSV and
Excel, so every reader hands over strings. Rendering happens here, column at
a time with pyarrow.compute, never cell by cell in Python:

- integral numbers without a fraction: ``22.0`` -> ``"22"`` (up to 2**53,
  where doubles stop being exact); other numbers in their shortest
  round-trip form: ``512.3292``, ``1e-10``;
- booleans: ``"true"`` / ``"false"``;
- dates: ``"2020-01-02"``; date-times: ``"2020-01-02 13:45:00"`` (with
  ``.500`` only when there are milliseconds); a time-of-day cell, which Excel
  stores as a fraction of day 0, as ``"13:45:01"``;
- durations (``[h]:mm:ss`` cells, .ods time cells) as ``"25:03:00"``;
- error cells as Excel shows them: ``"#N/A"``, ``"#NAME?"``;
- empty and whitespace-only strings as null.

Columns typed by fastexcel are rendered with Arrow kernels; cells read one
by one (python-calamine, xlrd) go through :func:`python_cells_text`, which
groups them by kind and hands each group to the same kernels, so a value
prints the same whichever path read it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TypeAlias, cast

import pyarrow as pa
import pyarrow.compute as pc

from domain.arrays import true_at

TEXT = pa.string()
# Not pa.scalar(None, ...): at import time, that would make pyarrow probe for
# pandas (and import it where installed) in every process that imports the readers.
_NULL_TEXT = pa.nulls(1, TEXT)[0]
# Beyond 2**53 a double no longer holds every integer, so printing it as one
# would invent digits.
_EXACT_INT_LIMIT = float(2**53)
# Excel's day 0, onto which calamine puts time-of-day cells (1900 and 1904 systems).
_DAY_ZERO = {False: "1899-12-31 ", True: "1904-01-01 "}

ArrowColumn: TypeAlias = pa.Array | pa.ChunkedArray


def blank_to_null(column: ArrowColumn) -> ArrowColumn:
    """Empty or whitespace-only text becomes null, as an empty cell would."""
    blank = pc.or_kleene(pc.equal(column, ""), pc.utf8_is_space(column))
    return pc.if_else(blank, _NULL_TEXT, column)


def excel_text(column: pa.Array, *, date_1904: bool) -> pa.Array:
    """One fastexcel column of a single type, as text."""
    kind = column.type
    if pa.types.is_null(kind):
        return pa.nulls(len(column), TEXT)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return blank_to_null(column.cast(TEXT))
    if pa.types.is_floating(kind):
        return _number_text(column)
    if pa.types.is_timestamp(kind):
        return _datetime_text(column, date_1904=date_1904)
    if pa.types.is_duration(kind):
        return _duration_text(column)
    # booleans ("true"/"false"), integers (xls) and date32 ("2020-01-02", ods)
    # already print the way validation reads them.
    return column.cast(TEXT)


def fill_cells(
    column: ArrowColumn, rows: Sequence[int], values: Sequence[str | None] | pa.Array
) -> pa.Array:
    """``column`` with ``values`` written at ``rows`` (ascending, distinct)."""
    if not len(rows):
        return column
    if not isinstance(values, pa.Array):
        values = pa.array(values, TEXT)
    filled = pc.replace_with_mask(column, true_at(len(column), rows), values)
    return filled.combine_chunks() if isinstance(filled, pa.ChunkedArray) else filled


def _number_text(column: pa.Array) -> pa.Array:
    column = column.cast(pa.float64())
    integral = pc.and_(
        pc.equal(pc.floor(column), column), pc.less_equal(pc.abs(column), _EXACT_INT_LIMIT)
    )
    # Non-integral slots are zeroed first so the int64 cast never truncates.
    as_int = pc.if_else(integral, column, 0.0).cast(pa.int64()).cast(TEXT)
    return pc.if_else(integral, as_int, column.cast(TEXT))


def _datetime_text(column: pa.Array, *, date_1904: bool) -> pa.Array:
    return _tidy_datetime(column.cast(TEXT), date_1904=date_1904)


def _tidy_datetime(column: ArrowColumn, *, date_1904: bool) -> ArrowColumn:
    # Arrow prints timestamp[ms] as "2020-01-02 13:45:00.000".
    column = pc.replace_substring_regex(
        column, r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})\.0+$", r"\1"
    )
    column = pc.replace_substring_regex(column, r"^(\d{4}-\d{2}-\d{2}) 00:00:00$", r"\1")
    return pc.replace_substring_regex(
        column, "^" + _DAY_ZERO[date_1904] + r"(\d{2}:\d{2}:\d{2})", r"\1"
    )


def _duration_text(column: pa.Array) -> pa.Array:
    millis = column.cast(pa.duration("ms")).cast(pa.int64())
    negative = pc.less(millis, 0)
    millis = pc.abs(millis)
    seconds = pc.divide(millis, 1000)  # integer division on int64
    fraction = pc.subtract(millis, pc.multiply(seconds, 1000))
    minutes = pc.divide(seconds, 60)
    hours = pc.divide(minutes, 60)

    def two_digits(values: pa.Array) -> pa.Array:
        return pc.utf8_lpad(values.cast(TEXT), width=2, padding="0")

    text = pc.binary_join_element_wise(
        hours.cast(TEXT),
        two_digits(pc.subtract(minutes, pc.multiply(hours, 60))),
        two_digits(pc.subtract(seconds, pc.multiply(minutes, 60))),
        ":",
    )
    with_fraction = pc.binary_join_element_wise(
        text, pc.utf8_lpad(fraction.cast(TEXT), width=3, padding="0"), "."
    )
    text = pc.if_else(pc.equal(fraction, 0), text, with_fraction)
    return pc.if_else(negative, pc.binary_join_element_wise("-", text, ""), text)


def python_cells_text(values: Sequence[object], *, date_1904: bool) -> pa.Array:
    """Cells as a cell-by-cell reader gives them (None where empty), as text."""
    groups: dict[str, tuple[list[int], list[object]]] = {}
    for index, value in enumerate(values):
        if value is None:
            continue
        rows, items = groups.setdefault(python_kind(value), ([], []))
        rows.append(index)
        items.append(value)
    return grouped_cells_text(len(values), groups, date_1904=date_1904)


def grouped_cells_text(
    count: int, groups: Mapping[str, tuple[Sequence[int], Sequence[object]]], *, date_1904: bool
) -> pa.Array:
    """A column of ``count`` cells given as (rows, values) per kind; null elsewhere.

    Kinds: ``text`` (blank text becomes null), ``error`` (Excel's text),
    ``number``, ``bool``, ``datetime``, ``date``, ``time``, ``duration``.
    Each kind is rendered by the kernels above, so a cell prints exactly as
    in a typed column: numbers in their shortest round-trip form, never cut.
    """
    column: pa.Array = pa.nulls(count, TEXT)
    for kind, (rows, items) in groups.items():
        if len(rows):
            column = fill_cells(column, rows, _render(kind, items, date_1904=date_1904))
    return column


def python_kind(value: object) -> str:
    # bool before int, datetime before date: they are subclasses.
    if isinstance(value, str):
        return "text"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, dt.datetime):
        return "datetime"
    if isinstance(value, dt.date):
        return "date"
    if isinstance(value, dt.time):
        return "time"
    if isinstance(value, dt.timedelta):
        return "duration"
    raise TypeError(f"no text form for a cell of type {type(value).__name__}")


def _render(kind: str, items: Sequence[object], *, date_1904: bool) -> pa.Array:
    if kind == "text":
        return blank_to_null(pa.array(items, TEXT))
    if kind == "error":
        return pa.array(items, TEXT)
    if kind == "bool":
        return pa.array(items, pa.bool_()).cast(TEXT)
    if kind == "number":
        # Whole numbers come as ints; each is its nearest double, as Excel stored it.
        return _number_text(pa.array([float(cast(float, n)) for n in items], pa.float64()))
    if kind == "datetime":
        return _datetime_text(_millis(items, pa.timestamp), date_1904=date_1904)
    if kind == "date":
        return pa.array(items, pa.date32()).cast(TEXT)
    if kind == "time":
        return pa.array([_time_text(v) for v in items], TEXT)  # type: ignore[arg-type]
    return _duration_text(_millis(items, pa.duration))


def _millis(items: Sequence[object], unit: Callable[[str], pa.DataType]) -> pa.Array:
    # Typed columns come from calamine in milliseconds; so do these.
    return pa.array(items, unit("us")).cast(unit("ms"), safe=False)


def _time_text(value: dt.time) -> str:
    """A time of day as a typed column prints it: ``13:45:01``, ``13:45:01.500``."""
    millis = value.microsecond // 1000
    text = value.strftime("%H:%M:%S")
    return f"{text}.{millis:03d}" if millis else text


_ISO_DURATION = re.compile(
    r"^(?P<sign>-)?P(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


def iso_duration_text(text: str) -> str | None:
    """An ISO 8601 duration (.ods time cells: ``PT25H03M00S``) in the duration form.

    None when ``text`` is no such duration (years and months have no fixed length).
    """
    match = _ISO_DURATION.match(text.strip())
    if match is None or not any(match.group(k) for k in ("days", "hours", "minutes", "seconds")):
        return None
    parts = {k: float(match.group(k) or 0) for k in ("days", "hours", "minutes", "seconds")}
    span = dt.timedelta(
        days=parts["days"], hours=parts["hours"], minutes=parts["minutes"], seconds=parts["seconds"]
    )
    rendered: str | None = _duration_text(_millis([span], pa.duration))[0].as_py()
    return None if rendered is None else ("-" + rendered if match.group("sign") else rendered)
