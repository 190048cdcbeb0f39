"""Arrow columns built straight from buffers, for values a load repeats on every row."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from domain.arrays import counting

_INT32_MAX = 2**31 - 1


def repeated_text(value: str, length: int) -> pa.Array:
    """``value`` ``length`` times as one string array, without a Python object per row.

    Built from its two buffers (offsets, bytes): a few ms for 50,000 values, where
    ``pa.array([value] * length)`` makes and converts a list of that size first.
    """
    data = value.encode()
    total = len(data) * length
    large = total > _INT32_MAX  # string offsets are int32; past that, large_string
    step = pa.scalar(len(data), pa.int64() if large else pa.int32())
    offsets = pc.multiply(counting(0, length + 1, step.type), step)
    kind = pa.large_string() if large else pa.string()
    return pa.Array.from_buffers(
        kind, length, [None, offsets.buffers()[1], pa.py_buffer(data * length)]
    )
