"""The Arrow type each contract type is validated into and loaded from."""

from __future__ import annotations

import pyarrow as pa

from domain.contracts import TableContract
from domain.types import ColumnType, TypeKind


def arrow_type(ctype: ColumnType) -> pa.DataType:
    kind = ctype.kind
    if kind is TypeKind.SMALLINT:
        return pa.int16()
    if kind is TypeKind.INTEGER:
        return pa.int32()
    if kind is TypeKind.BIGINT:
        return pa.int64()
    if kind is TypeKind.DECIMAL:
        assert ctype.precision is not None
        assert ctype.scale is not None
        return pa.decimal128(ctype.precision, ctype.scale)
    if kind is TypeKind.DOUBLE:
        return pa.float64()
    if kind is TypeKind.BOOLEAN:
        return pa.bool_()
    if kind is TypeKind.DATE:
        return pa.date32()
    if kind is TypeKind.TIMESTAMP:
        return pa.timestamp("us")
    return pa.string()


def arrow_schema(contract: TableContract) -> pa.Schema:
    return pa.schema(
        [pa.field(c.name, arrow_type(c.type), nullable=c.nullable) for c in contract.columns]
    )
