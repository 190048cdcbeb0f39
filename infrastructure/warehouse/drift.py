"""Whether a table in the warehouse is the one its contract describes.

A table that differs is never altered: the differences, one line per column, are
a terminal error for the person who owns the table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from domain.contracts import Column, TableContract
from domain.errors import SchemaDriftError
from domain.types import TypeKind
from infrastructure.warehouse.sql.ddl import table_columns
from infrastructure.warehouse.sql.dialect import Dialect
from infrastructure.warehouse.sql.ledger import LEDGER_COLUMNS


@dataclass(frozen=True)
class ColumnShape:
    """A column as a catalog can describe it; None where the catalog does not say."""

    name: str
    family: str  # a TypeKind value, or the catalog's own name for anything else
    text: str  # for messages
    nullable: bool
    length: int | None = None
    precision: int | None = None
    scale: int | None = None

    @classmethod
    def of(cls, column: Column) -> ColumnShape:
        t = column.type
        return cls(
            column.name, t.kind.value, t.sql, column.nullable, t.length, t.precision, t.scale
        )


def expected_columns(contract: TableContract) -> tuple[ColumnShape, ...]:
    return tuple(ColumnShape.of(c) for c in table_columns(contract))


def expected_ledger_columns() -> tuple[ColumnShape, ...]:
    return tuple(ColumnShape.of(c) for c in LEDGER_COLUMNS)


_FAMILIES = {
    "character varying": TypeKind.VARCHAR,
    "varchar": TypeKind.VARCHAR,
    "character": TypeKind.CHAR,
    "char": TypeKind.CHAR,
    "bpchar": TypeKind.CHAR,
    "numeric": TypeKind.DECIMAL,
    "decimal": TypeKind.DECIMAL,
    "double precision": TypeKind.DOUBLE,
    "double": TypeKind.DOUBLE,
    "float8": TypeKind.DOUBLE,
    "smallint": TypeKind.SMALLINT,
    "int2": TypeKind.SMALLINT,
    "integer": TypeKind.INTEGER,
    "int": TypeKind.INTEGER,
    "int4": TypeKind.INTEGER,
    "bigint": TypeKind.BIGINT,
    "int8": TypeKind.BIGINT,
    "boolean": TypeKind.BOOLEAN,
    "bool": TypeKind.BOOLEAN,
    "date": TypeKind.DATE,
    "timestamp": TypeKind.TIMESTAMP,
    "timestamp without time zone": TypeKind.TIMESTAMP,
}


def shape_from_catalog(row: Sequence[Any], dialect: Dialect) -> ColumnShape:
    name, data_type, is_nullable, char_length, precision, scale = row
    raw = str(data_type)
    base = re.sub(r"\(.*\)", "", raw).strip().lower()
    kind = _FAMILIES.get(base)
    family = kind.value if kind is not None else base
    length = int(char_length) if char_length is not None and dialect.reports_text_length else None
    text = raw + (f"({length})" if length is not None and "(" not in raw else "")
    decimal = kind is TypeKind.DECIMAL
    return ColumnShape(
        name=str(name),
        family=family,
        text=text,
        nullable=str(is_nullable).upper() == "YES",
        length=length if kind in (TypeKind.VARCHAR, TypeKind.CHAR) else None,
        precision=int(precision) if decimal and precision is not None else None,
        scale=int(scale) if decimal and scale is not None else None,
    )


# Catalog lengths and precisions this dialect leaves out mean "unbounded", and an unbounded
# column is never what a contract declares; 0 is a length or precision no contract can have.
_UNBOUNDED = 0


def strict_shape_from_catalog(row: Sequence[Any], dialect: Dialect) -> ColumnShape:
    """As :func:`shape_from_catalog`, for a catalog that reports every length it has.

    There a varchar without a length or a bare numeric is a difference from the contract,
    where :func:`shape_from_catalog` would read it as "not known" and let it pass.
    """
    shape = shape_from_catalog(row, dialect)
    if not dialect.reports_text_length:
        return shape
    if shape.family in (TypeKind.VARCHAR.value, TypeKind.CHAR.value) and shape.length is None:
        return replace(shape, length=_UNBOUNDED)
    if shape.family == TypeKind.DECIMAL.value:
        if shape.precision is None:
            return replace(shape, precision=_UNBOUNDED)
        # information_schema's data_type is a bare "numeric"; a message needs (p,s).
        return replace(shape, text=f"{shape.text}({shape.precision},{shape.scale})")
    return shape


def _type_differs(expected: ColumnShape, found: ColumnShape, dialect: Dialect | None) -> bool:
    family_ok = expected.family == found.family or (
        dialect is not None
        and dialect.char_reported_as_varchar
        and expected.family == TypeKind.CHAR.value
        and found.family == TypeKind.VARCHAR.value
    )
    if not family_ok:
        return True
    # Only what the catalog reported is compared: a None there means "not known".
    return any(
        f is not None and f != e
        for e, f in (
            (expected.length, found.length),
            (expected.precision, found.precision),
            (expected.scale, found.scale),
        )
    )


def _nullness(shape: ColumnShape) -> str:
    return "NULL" if shape.nullable else "NOT NULL"


def drift_differences(
    expected: Iterable[ColumnShape], found: Iterable[ColumnShape], dialect: Dialect | None = None
) -> list[str]:
    """How ``found`` differs from ``expected``, one line per column; empty when it fits.

    Column order is not compared: every insert names its columns. ``dialect`` None
    compares two fully known descriptions exactly (two contracts, say).
    """
    fold = dialect is not None and not dialect.case_sensitive_identifiers

    def key(name: str) -> str:
        return name.casefold() if fold else name

    wanted = {key(c.name): c for c in expected}
    present = {key(c.name): c for c in found}
    problems = [f"column {c.name}: missing in table" for k, c in wanted.items() if k not in present]
    problems += [
        f"column {c.name}: unexpected in table" for k, c in present.items() if k not in wanted
    ]
    for k, e in wanted.items():
        f = present.get(k)
        if f is None:
            continue
        if _type_differs(e, f, dialect):
            problems.append(f"column {e.name}: type differs: expected {e.text} found {f.text}")
        if e.nullable != f.nullable:
            problems.append(
                f"column {e.name}: nullability differs: expected {_nullness(e)} "
                f"found {_nullness(f)}"
            )
    return problems


def check_drift(
    table: str,
    expected: Iterable[ColumnShape],
    found: Iterable[ColumnShape],
    dialect: Dialect | None = None,
) -> None:
    problems = drift_differences(expected, found, dialect)
    if problems:
        raise SchemaDriftError(
            f"table {table} differs from its contract (it is never altered): "
            + "; ".join(problems),
            table=table,
            differences=problems,
        )
