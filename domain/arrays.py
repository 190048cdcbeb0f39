"""The few Arrow arrays the service builds itself, without numpy, and a mask's test.

The service imports no numpy (README "Choices": it was a tenth of a second of
every cold start, for a handful of masks and row counters). Arrow makes these in
as little time: a constant array is one fill, and a count is a cumulative sum.
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa
import pyarrow.compute as pc


def falses(length: int) -> pa.BooleanArray:
    """``length`` false values: the mask that selects nothing."""
    mask: pa.BooleanArray = pa.repeat(False, length)
    return mask


def counting(start: int, length: int, kind: pa.DataType | None = None) -> pa.Array:
    """``start``, ``start + 1``, ... ``length`` values of ``kind`` (int64 by default)."""
    kind = kind or pa.int64()
    if length == 0:
        return pa.array([], kind)
    ones = pa.repeat(pa.scalar(1, kind), length)
    counted: pa.Array = pc.add(pc.cumulative_sum(ones), pa.scalar(start - 1, kind))
    return counted


def true_at(length: int, rows: Iterable[int]) -> pa.BooleanArray:
    """``length`` booleans, true at each of ``rows`` (0-based) and false elsewhere."""
    flags = bytearray(length)
    for row in rows:
        flags[row] = 1
    as_bytes = pa.Array.from_buffers(pa.uint8(), length, [None, pa.py_buffer(flags)])
    mask: pa.BooleanArray = as_bytes.cast(pa.bool_())
    return mask


def any_set(mask: pa.Array | pa.ChunkedArray) -> bool:
    """Whether a boolean mask holds a true value (nulls are not), as ``pc.any`` says.

    Read from the arrays' counts, not with a kernel call: a small sheet's validation
    asks it of every mask of every column, hundreds of times at ~5 us a call.
    """
    if isinstance(mask, pa.ChunkedArray):
        return any(chunk.true_count for chunk in mask.chunks)
    return bool(mask.true_count)
