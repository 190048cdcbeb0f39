"""Checking a routed sheet against its table contract.

Validation is column-wise: each column is coerced and checked with Arrow
kernels, producing boolean masks. Only the cells that fail are turned into
Python objects (the reject records), so cost grows with the number of bad
cells, not with the sheet.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import reduce

import pyarrow as pa
import pyarrow.compute as pc

from domain.arrays import any_set, counting, falses, true_at
from domain.arrow_types import arrow_schema, arrow_type
from domain.coercion import Problem, as_text, clean_text, coerce
from domain.contracts import Column, Scalar, TableContract
from domain.keys import all_distinct
from domain.rejects import CellReject, RejectedRow, RejectReason
from domain.routing import RouteDecision
from domain.sheet import RawSheet
from domain.types import TypeKind

_SHOWN_CHARS = 80
# Below this many rows the columns are checked in the caller's thread: handing a
# column to a thread costs more than checking a short one (an 891-row sheet: 9.8 ms
# of CPU in one thread, 12.5 ms through a kept two-thread pool, 15.4 ms through a
# pool built per call).
_THREADED_ROWS = 10_000


@dataclass(frozen=True)
class SheetValidation:
    sheet: RawSheet
    route: RouteDecision
    typed: pa.Table  # the contract's columns for every row; bad cells are null
    rejected: pa.Array  # boolean per row, no nulls
    rejects: tuple[CellReject, ...]

    @property
    def contract(self) -> TableContract:
        return self.route.contract

    @property
    def rows_read(self) -> int:
        return self.sheet.num_rows

    @property
    def rows_rejected(self) -> int:
        return int(pc.sum(self.rejected).as_py() or 0)

    @property
    def reject_ratio(self) -> float:
        return self.rows_rejected / self.rows_read if self.rows_read else 0.0

    @property
    def over_threshold(self) -> bool:
        return self.reject_ratio > self.contract.max_reject_ratio

    def valid_rows(self) -> pa.Table:
        if not self.rows_rejected:
            return self.typed  # no copy of a clean million-row sheet
        return self.typed.filter(pc.invert(self.rejected))

    def rejected_rows(self) -> tuple[RejectedRow, ...]:
        """The refused rows with their original cells, for the rejects report."""
        indices = pc.indices_nonzero(self.rejected)
        if len(indices) == 0:
            return ()
        taken = self.sheet.cells.take(indices)
        cells = pa.table([as_text(_combined(c)) for c in taken.columns], names=taken.column_names)
        cells = cells.to_pylist()
        numbers = self.sheet.row_numbers.take(indices).to_pylist()
        by_row: dict[int, list[CellReject]] = defaultdict(list)
        for reject in self.rejects:
            by_row[reject.row].append(reject)
        width = self.sheet.cells.num_columns
        return tuple(
            RejectedRow(
                row=number,
                values=tuple(record[f"c{i}"] for i in range(width)),
                problems=tuple(by_row[number]),
            )
            for number, record in zip(numbers, cells, strict=True)
        )


def validate_sheet(
    sheet: RawSheet, route: RouteDecision, pool: Executor | None = None
) -> SheetValidation:
    """``sheet`` checked against its route's contract, column by column.

    Columns are independent and Arrow's kernels release the GIL, so a long
    sheet's columns are checked in ``pool``'s threads (two check a wide sheet in a
    little over half the time of one). The pool is the caller's, sized from the
    configuration and kept for the process's life: building one per sheet cost
    more than checking a small sheet.
    """
    contract = route.contract

    def check(pair: tuple[Column, int]) -> _CheckedColumn:
        return _check_column(sheet, pair[0], pair[1])

    pairs = zip(contract.columns, route.positions, strict=True)
    if pool is None or sheet.num_rows < _THREADED_ROWS:
        checked = [check(pair) for pair in pairs]
    else:
        checked = list(pool.map(check, pairs))
    columns = [c.values for c in checked]
    masks = [m for c in checked for m in c.masks]
    rejects = [r for c in checked for r in c.rejects]
    typed = pa.Table.from_arrays(columns, schema=_loose(arrow_schema(contract)))
    rejected = reduce(pc.or_, masks, falses(sheet.num_rows))
    rejects.sort(key=lambda r: (r.row, r.position))
    return SheetValidation(sheet, route, typed, rejected, tuple(rejects))


@dataclass(frozen=True)
class _CheckedColumn:
    values: pa.Array
    masks: tuple[pa.Array, ...]
    rejects: tuple[CellReject, ...]


def _check_column(sheet: RawSheet, column: Column, position: int) -> _CheckedColumn:
    raw = _combined(sheet.cells.column(position))
    # Readers hand over text, or float64 where a column held only numbers.
    text = clean_text(raw, column.trim) if pa.types.is_string(raw.type) else raw
    coerced = coerce(text, column.type, sheet.date_1904, column.rounding)
    problems = list(coerced.problems)
    unlisted = _not_allowed(column, text, coerced.values)
    if unlisted is not None:
        # Allowed values are checked before length: "unknown" in a varchar(6) Sex
        # column is "not one of: male, female", the reason a person can act on.
        outside = unlisted.mask
        problems = [replace(p, mask=pc.and_(p.mask, pc.invert(outside))) for p in problems]
        problems.append(unlisted)
    masks: list[pa.Array] = []
    rejects: list[CellReject] = []
    for problem in [*problems, *_rule_problems(column, text, coerced.values)]:
        if not any_set(problem.mask):
            continue
        masks.append(problem.mask)
        rejects.extend(_describe(sheet, column, position, raw, problem))
    return _CheckedColumn(coerced.values, tuple(masks), tuple(rejects))


def reject_duplicate_keys(validations: Sequence[SheetValidation]) -> list[SheetValidation]:
    """Reject every copy of a key that occurs more than once across ``validations``.

    All validations belong to one table (one file may hold several sheets for
    it). Each copy is rejected, naming where the others are, because choosing
    one copy silently would load data nobody checked.
    """
    if not validations:
        return []
    contract = validations[0].contract
    key = list(contract.primary_key)
    if not key or _all_distinct(validations, key):
        return list(validations)
    parts = []
    for number, v in enumerate(validations):
        keys = v.typed.select(key)
        parts.append(
            keys.append_column("_sheet", pa.repeat(pa.scalar(number, pa.int32()), v.rows_read))
            .append_column("_index", counting(0, v.rows_read))
            .append_column("_row", v.sheet.row_numbers)
        )
    everything = pa.concat_tables(parts)
    # A key with a null part is already rejected (key columns are NOT NULL).
    complete = everything.filter(reduce(pc.and_, [pc.is_valid(everything.column(k)) for k in key]))
    counts = complete.group_by(key).aggregate([("_index", "count")])
    repeated = counts.filter(pc.greater(counts.column("_index_count"), 1))
    if repeated.num_rows == 0:
        return list(validations)
    copies = complete.join(repeated.select(key), keys=key, join_type="inner").to_pylist()
    groups: dict[tuple[object, ...], list[dict[str, object]]] = defaultdict(list)
    for copy in copies:
        groups[tuple(copy[k] for k in key)].append(copy)
    flagged: dict[int, list[int]] = defaultdict(list)
    extra: dict[int, list[CellReject]] = defaultdict(list)
    multi_sheet = len(validations) > 1
    for values, members in groups.items():
        members.sort(key=lambda m: (int(str(m["_sheet"])), int(str(m["_row"]))))
        shown = ", ".join(f"{k}={_show(v)}" for k, v in zip(key, values, strict=True))
        for member in members:
            sheet_no = int(str(member["_sheet"]))
            validation = validations[sheet_no]
            others = [_where(m, validations, multi_sheet) for m in members if m is not member]
            flagged[sheet_no].append(int(str(member["_index"])))
            extra[sheet_no].append(
                CellReject(
                    sheet=validation.sheet.name,
                    row=int(str(member["_row"])),
                    column=key[0],
                    position=validation.route.positions[contract.column_names.index(key[0])],
                    value=_show(values[0]),
                    reason=RejectReason.DUPLICATE_KEY,
                    message=f"duplicate key {shown}; also in {', '.join(others)}",
                )
            )
    result = []
    for number, v in enumerate(validations):
        if number not in flagged:
            result.append(v)
            continue
        mask = true_at(v.rows_read, flagged[number])
        rejects = sorted([*v.rejects, *extra[number]], key=lambda r: (r.row, r.position))
        result.append(replace(v, rejected=pc.or_(v.rejected, mask), rejects=tuple(rejects)))
    return result


def _all_distinct(validations: Sequence[SheetValidation], key: Sequence[str]) -> bool:
    """A one-column key with no repeats, found without grouping (the usual case)."""
    if len(key) != 1:
        return False
    chunks = [c for v in validations for c in v.typed.column(key[0]).chunks]
    return all_distinct(pa.chunked_array(chunks, validations[0].typed.schema.field(key[0]).type))


def _where(member: dict[str, object], validations: Sequence[SheetValidation], named: bool) -> str:
    row = f"row {member['_row']}"
    if not named:
        return row
    return f"sheet {validations[int(str(member['_sheet']))].sheet.name!r} {row}"


def _combined(column: pa.ChunkedArray) -> pa.Array:
    return column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)


def _loose(schema: pa.Schema) -> pa.Schema:
    # Rejected rows hold nulls in NOT NULL columns until they are filtered out.
    return pa.schema([pa.field(f.name, f.type, nullable=True) for f in schema])


def _rule_problems(column: Column, text: pa.Array, values: pa.Array) -> list[Problem]:
    problems = []
    if not column.nullable:
        problems.append(Problem(pc.is_null(text), RejectReason.NULL, "a value is required"))
    if column.min is not None:
        below = pc.less(values, _scalar(column, column.min))
        problems.append(
            Problem(
                pc.fill_null(below, False),
                RejectReason.BELOW_MIN,
                f"{{value}} is below the minimum {_show(column.min)}",
            )
        )
    if column.max is not None:
        above = pc.greater(values, _scalar(column, column.max))
        problems.append(
            Problem(
                pc.fill_null(above, False),
                RejectReason.ABOVE_MAX,
                f"{{value}} is above the maximum {_show(column.max)}",
            )
        )
    return problems


def _not_allowed(column: Column, text: pa.Array, values: pa.Array) -> Problem | None:
    """Cells outside ``column.allowed``: text compared as written, other types once typed."""
    if column.allowed is None:
        return None
    if column.type.kind in (TypeKind.VARCHAR, TypeKind.CHAR):
        values = as_text(text)  # before the length check, which nulls long values
    allowed = pa.array(list(column.allowed), arrow_type(column.type))
    outside = pc.and_(pc.is_valid(values), pc.invert(pc.is_in(values, value_set=allowed)))
    shown = ", ".join(_show(a) for a in column.allowed)
    return Problem(
        pc.fill_null(outside, False),
        RejectReason.NOT_ALLOWED,
        f"{{value!r}} is not one of: {shown}",
    )


def _scalar(column: Column, value: Scalar) -> pa.Scalar:
    return pa.scalar(value, arrow_type(column.type))


def _describe(
    sheet: RawSheet, column: Column, position: int, raw: pa.Array, problem: Problem
) -> list[CellReject]:
    indices = pc.indices_nonzero(problem.mask)
    values = as_text(raw.take(indices)).to_pylist()
    rows = sheet.row_numbers.take(indices).to_pylist()
    out = []
    for value, row in zip(values, rows, strict=True):
        text = None if value is None else str(value)
        out.append(
            CellReject(
                sheet=sheet.name,
                row=int(row),
                column=column.name,
                position=position,
                value=text,
                reason=problem.reason,
                message=problem.template.format(
                    value=_shorten(text),
                    nbytes=len(text.encode()) if text is not None else 0,
                ),
            )
        )
    return out


def _shorten(text: str | None) -> str:
    if text is None:
        return ""
    text = text.strip()
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"


def _show(value: object) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)
