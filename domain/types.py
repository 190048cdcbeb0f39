"""Column types a contract may declare, parsed from strings such as ``varchar(82)``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from domain.errors import ConfigurationError


class TypeKind(StrEnum):
    INTEGER = "integer"
    SMALLINT = "smallint"
    BIGINT = "bigint"
    DECIMAL = "decimal"
    DOUBLE = "double"
    BOOLEAN = "boolean"
    VARCHAR = "varchar"
    CHAR = "char"
    DATE = "date"
    TIMESTAMP = "timestamp"


class Rounding(StrEnum):
    """How a decimal with more places than its column's scale is brought to it.

    A contract opts in per table or column; without it such a value is a
    rejected cell, because rounding silently changes what the file says.
    """

    HALF_EVEN = "half_even"  # ties to the even digit (banker's rounding)
    HALF_UP = "half_up"  # ties away from zero, as taught in school


# Redshift's own limits, so a contract that validates here also fits there.
INTEGER_BOUNDS: dict[TypeKind, tuple[int, int]] = {
    TypeKind.SMALLINT: (-(2**15), 2**15 - 1),
    TypeKind.INTEGER: (-(2**31), 2**31 - 1),
    TypeKind.BIGINT: (-(2**63), 2**63 - 1),
}
MAX_VARCHAR_BYTES = 65535
MAX_CHAR_BYTES = 4096
MAX_DECIMAL_PRECISION = 38

_ALIASES = {
    "int": TypeKind.INTEGER,
    "int4": TypeKind.INTEGER,
    "int2": TypeKind.SMALLINT,
    "int8": TypeKind.BIGINT,
    "numeric": TypeKind.DECIMAL,
    "float": TypeKind.DOUBLE,
    "float8": TypeKind.DOUBLE,
    "double precision": TypeKind.DOUBLE,
    "bool": TypeKind.BOOLEAN,
    "character varying": TypeKind.VARCHAR,
    "character": TypeKind.CHAR,
    "bpchar": TypeKind.CHAR,
}
_PATTERN = re.compile(r"^\s*([a-z][a-z0-9 ]*?)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?\s*$")


@dataclass(frozen=True)
class ColumnType:
    kind: TypeKind
    length: int | None = None  # bytes, for varchar/char
    precision: int | None = None
    scale: int | None = None

    @classmethod
    def parse(cls, text: str) -> ColumnType:
        match = _PATTERN.match(text.lower())
        if not match:
            raise ConfigurationError(f"unknown column type {text!r}", type=text)
        name, first, second = match.groups()
        kind = _ALIASES.get(name) or _kind(name, text)
        a = int(first) if first is not None else None
        b = int(second) if second is not None else None
        if kind in (TypeKind.VARCHAR, TypeKind.CHAR):
            if b is not None:
                raise ConfigurationError(f"{text!r}: {kind.value} takes one length", type=text)
            limit = MAX_VARCHAR_BYTES if kind is TypeKind.VARCHAR else MAX_CHAR_BYTES
            length = a if a is not None else (256 if kind is TypeKind.VARCHAR else 1)
            if not 1 <= length <= limit:
                raise ConfigurationError(f"{text!r}: length must be 1..{limit}", type=text)
            return cls(kind, length=length)
        if kind is TypeKind.DECIMAL:
            precision = a if a is not None else 18
            scale = b if b is not None else 0
            if not (1 <= precision <= MAX_DECIMAL_PRECISION and 0 <= scale <= precision):
                raise ConfigurationError(f"{text!r}: needs 1 <= p <= 38, 0 <= s <= p", type=text)
            return cls(kind, precision=precision, scale=scale)
        if a is not None:
            raise ConfigurationError(f"{text!r}: {kind.value} takes no arguments", type=text)
        return cls(kind)

    @property
    def sql(self) -> str:
        """The type as ANSI/Redshift/PostgreSQL/DuckDB all spell it."""
        if self.kind is TypeKind.DECIMAL:
            return f"DECIMAL({self.precision},{self.scale})"
        if self.kind in (TypeKind.VARCHAR, TypeKind.CHAR):
            return f"{self.kind.value.upper()}({self.length})"
        if self.kind is TypeKind.DOUBLE:
            return "DOUBLE PRECISION"
        return str(self.kind.value).upper()

    def __str__(self) -> str:
        return self.sql.lower()


def _kind(name: str, text: str) -> TypeKind:
    try:
        return TypeKind(name)
    except ValueError:
        raise ConfigurationError(f"unknown column type {text!r}", type=text) from None
