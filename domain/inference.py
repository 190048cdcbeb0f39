"""A table contract inferred from a sheet's cells, for `datalakep contract infer`.

A person with their own workbook should not have to write the YAML by hand and
guess the types (copying ``decimal(5,2)`` silently loses a fourth decimal).
Inference looks at every cell the reader hands over, as validation will, and
picks the narrowest type under which validation accepts every one of them:
the inferred contract loads the same file with no rejects. Numbers are never
given a scale smaller than the data's, so nothing relies on rounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from domain.coercion import as_text, clean_text
from domain.contracts import Column, LoadMode, Scalar, TableContract, normalize_header
from domain.errors import ConfigurationError
from domain.sheet import RawSheet, SheetPreview
from domain.types import INTEGER_BOUNDS, MAX_VARCHAR_BYTES, ColumnType, TypeKind

# What validation accepts per type (domain/coercion.py), narrowed where a
# looser match would lose what the cell says: "007" stays text.
_INTEGER = r"^[+-]?(0|[1-9]\d*)(\.0*)?$"
_DECIMAL = r"^[+-]?((0|[1-9]\d*)(\.\d*)?|\.\d+)$"
_NUMBER = r"^[+-]?((0|[1-9]\d*)(\.\d*)?|\.\d+)([eE][+-]?\d+)?$"
_DATE = r"^\d{4}-\d{2}-\d{2}$"
_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?$"
# Only the words; 1/0 columns are integers (Survived) and stay so.
_BOOLEAN_WORDS = ("true", "false", "yes", "no")
# Past these a decimal is a measurement, not an amount: a double holds it.
_MAX_DECIMAL_SCALE = 10
_MAX_INFERRED_PRECISION = 18
# varchar(n): the longest value with room to grow, rounded up to a power of two.
_VARCHAR_HEADROOM = 1.5
_MIN_VARCHAR = 16
# `--allowed`: a text column with at most this many distinct values, each seen
# at least twice on average, is an enumeration.
_MAX_ALLOWED_VALUES = 12
# Key candidates: a float or date is a poor key even when unique.
_KEY_KINDS = frozenset(
    {TypeKind.SMALLINT, TypeKind.INTEGER, TypeKind.BIGINT, TypeKind.VARCHAR, TypeKind.CHAR}
)


@dataclass(frozen=True)
class InferredContract:
    contract: TableContract
    sheet: str
    header_row: int
    rows: int
    # Why the contract is as it is where the YAML alone would not say.
    note: str | None = None


def header_row_of(preview: SheetPreview) -> int:
    """The first of the fullest rows: title rows above a header are shorter."""
    counts = [sum(1 for c in row if c is not None and str(c).strip()) for row in preview.rows]
    if not counts or max(counts) == 0:
        raise ConfigurationError(f"sheet {preview.name!r} is empty: nothing to infer")
    return preview.first_row + counts.index(max(counts))


def column_names(labels: Sequence[str | None]) -> list[str | None]:
    """Contract names for a header: as written, a repeated name's n-th copy as ``name_n``.

    Routing reads the n-th occurrence of a repeated header label as
    ``<label>_<n>`` (domain/routing.py), so these names route the same sheet.
    Unnamed columns get None: they carry nothing to load.
    """
    seen: dict[str, int] = {}
    names: list[str | None] = []
    for label in labels:
        text = "" if label is None else str(label).strip()
        if not text:
            names.append(None)
            continue
        key = normalize_header(text)
        seen[key] = seen.get(key, 0) + 1
        names.append(text if seen[key] == 1 else f"{text}_{seen[key]}")
    return names


def infer_contract(sheet: RawSheet, table: str, *, allowed: bool = False) -> InferredContract:
    names = column_names(sheet.header)
    columns = []
    for position, name in enumerate(names):
        if name is None:
            continue
        raw = sheet.cells.column(position)
        raw = raw.combine_chunks() if raw.num_chunks != 1 else raw.chunk(0)
        columns.append(_infer_column(name, raw, allowed=allowed))
    if not columns:
        raise ConfigurationError(f"sheet {sheet.name!r}: the header names no column")
    key = next((c for c in columns if _is_key(c.column, c.values)), None)
    note = None
    if key is None:
        note = (
            "no column is filled and unique in every row, so there is no primary key: "
            "rows are appended, and a changed version of the file adds all its rows again"
        )
    contract = TableContract(
        name=table,
        columns=tuple(c.column for c in columns),
        primary_key=() if key is None else (key.column.name,),
        load_mode=LoadMode.APPEND if key is None else LoadMode.UPSERT,
    )
    return InferredContract(contract, sheet.name, sheet.header_row, sheet.num_rows, note)


@dataclass(frozen=True)
class _Inferred:
    column: Column
    values: pa.Array  # the present cells as text


def _infer_column(name: str, raw: pa.Array, *, allowed: bool) -> _Inferred:
    text = clean_text(as_text(raw)) if not pa.types.is_string(raw.type) else clean_text(raw)
    nullable = text.null_count > 0
    present = pc.drop_null(text)
    ctype = _infer_type(present)
    values: tuple[Scalar, ...] | None = None
    if allowed and ctype.kind is TypeKind.VARCHAR:
        distinct = pc.unique(present)
        if 0 < len(distinct) <= _MAX_ALLOWED_VALUES and len(present) >= 2 * len(distinct):
            values = tuple(sorted(str(v) for v in distinct.to_pylist()))
    return _Inferred(Column(name, ctype, nullable=nullable, allowed=values), present)


def _infer_type(present: pa.Array) -> ColumnType:
    if len(present) == 0:
        return ColumnType(TypeKind.VARCHAR, length=_MIN_VARCHAR)

    def every(pattern: str) -> bool:
        return bool(pc.all(pc.match_substring_regex(present, pattern)).as_py())

    if every(_INTEGER):
        whole = pc.cast(pc.replace_substring_regex(present, r"\.0*$", ""), pa.decimal128(38, 0))
        low, high = pc.min_max(whole).values()
        for kind in (TypeKind.INTEGER, TypeKind.BIGINT):
            bottom, top = INTEGER_BOUNDS[kind]
            if bottom <= low.as_py() and high.as_py() <= top:
                return ColumnType(kind)
        return _decimal_or_double(present)
    if every(_DECIMAL):
        return _decimal_or_double(present)
    if every(_NUMBER):
        return ColumnType(TypeKind.DOUBLE)
    lowered = pc.utf8_lower(present)
    if bool(pc.all(pc.is_in(lowered, value_set=pa.array(_BOOLEAN_WORDS))).as_py()):
        return ColumnType(TypeKind.BOOLEAN)
    if every(_DATE) and _all_real_dates(present):
        return ColumnType(TypeKind.DATE)
    if every(_TIMESTAMP) and _all_real_dates(pc.utf8_slice_codeunits(present, 0, 10)):
        return ColumnType(TypeKind.TIMESTAMP)
    return _varchar(present)


def _decimal_or_double(present: pa.Array) -> ColumnType:
    """decimal(p, s) with the data's own scale and integer digits, else double."""
    unsigned = pc.replace_substring_regex(present, r"^[+-]", "")
    whole = pc.utf8_length(pc.replace_substring_regex(unsigned, r"\..*$", ""))
    fraction = pc.utf8_length(pc.replace_substring_regex(unsigned, r"^[^.]*\.?", ""))
    integer_digits = max(int(pc.max(whole).as_py() or 1), 1)
    scale = int(pc.max(fraction).as_py() or 0)
    precision = integer_digits + scale
    if scale > _MAX_DECIMAL_SCALE or precision > _MAX_INFERRED_PRECISION:
        return ColumnType(TypeKind.DOUBLE)
    return ColumnType(TypeKind.DECIMAL, precision=precision, scale=scale)


def _all_real_dates(days: pa.Array) -> bool:
    # strptime rolls 2020-02-30 over; validation refuses it, so must inference.
    parsed = pc.strptime(days, format="%Y-%m-%d", unit="s", error_is_null=True)
    same = pc.equal(pc.strftime(parsed, format="%Y-%m-%d"), days)
    return bool(pc.all(pc.fill_null(same, False)).as_py())


def _varchar(present: pa.Array) -> ColumnType:
    longest = int(pc.max(pc.binary_length(present)).as_py() or 1)
    room = _MIN_VARCHAR
    while room < longest * _VARCHAR_HEADROOM and room < MAX_VARCHAR_BYTES:
        room *= 2
    return ColumnType(TypeKind.VARCHAR, length=min(room, MAX_VARCHAR_BYTES))


def _is_key(column: Column, values: pa.Array) -> bool:
    if column.nullable or column.type.kind not in _KEY_KINDS or len(values) == 0:
        return False
    if column.type.kind in INTEGER_BOUNDS:
        # "1" and "1.0" are one key once typed.
        values = pc.cast(pc.replace_substring_regex(values, r"\.0*$", ""), pa.int64())
    return bool(pc.count_distinct(values).as_py() == len(values))
