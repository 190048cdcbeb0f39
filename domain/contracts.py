"""Table contracts: what a target table accepts, as declared in YAML.

A contract is pure data. Building it from a mapping lives here too, so that
"adding a table" stays a YAML change and every mistake in that YAML is reported
with the table and column it concerns.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from domain.errors import ConfigurationError
from domain.identifiers import identifier_problem
from domain.types import ColumnType, Rounding, TypeKind

Scalar = int | float | Decimal | str | bool | date | datetime


class LoadMode(StrEnum):
    UPSERT = "upsert"  # replace rows whose key matches, insert the rest
    APPEND = "append"
    REPLACE = "replace"  # the file becomes the table's whole content


def normalize_header(label: object) -> str:
    """How headers are compared: case-insensitive, trimmed, inner spaces collapsed."""
    return re.sub(r"\s+", " ", str(label)).strip().casefold()


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    nullable: bool = True
    allowed: tuple[Scalar, ...] | None = None
    min: Scalar | None = None
    max: Scalar | None = None
    aliases: tuple[str, ...] = ()
    # None: a decimal with more places than the scale is a rejected cell.
    rounding: Rounding | None = None
    # False keeps a text cell's surrounding spaces; a cell of spaces only is still empty.
    trim: bool = True

    @property
    def header_keys(self) -> frozenset[str]:
        return frozenset(normalize_header(x) for x in (self.name, *self.aliases))


@dataclass(frozen=True)
class TableContract:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    load_mode: LoadMode = LoadMode.UPSERT
    max_reject_ratio: float = 0.10
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._check_columns()
        self._check_keys()
        if not 0.0 <= self.max_reject_ratio <= 1.0:
            raise ConfigurationError(
                f"table {self.name}: max_reject_ratio must be within 0..1", table=self.name
            )

    def _check_columns(self) -> None:
        names = [c.name for c in self.columns]
        problem = identifier_problem(self.name)
        if problem is not None:
            raise ConfigurationError(f"table {self.name!r}: the name {problem}", table=self.name)
        if not names:
            raise ConfigurationError(f"table {self.name}: no columns", table=self.name)
        for column in self.columns:
            problem = identifier_problem(column.name)
            if problem is not None:
                raise ConfigurationError(
                    f"table {self.name}, column {column.name!r}: the name {problem}",
                    table=self.name,
                    column=column.name,
                )
        seen: dict[str, str] = {}
        for column in self.columns:
            for key in column.header_keys:
                if key in seen and seen[key] != column.name:
                    raise ConfigurationError(
                        f"table {self.name}: header {key!r} would match both "
                        f"{seen[key]} and {column.name}",
                        table=self.name,
                    )
                seen[key] = column.name
        if len({n.casefold() for n in names}) != len(names):
            raise ConfigurationError(f"table {self.name}: duplicate column names", table=self.name)

    def _check_keys(self) -> None:
        names = [c.name for c in self.columns]
        for key in self.primary_key:
            if key not in names:
                raise ConfigurationError(
                    f"table {self.name}: primary key column {key} is not a column",
                    table=self.name,
                    column=key,
                )
        nullable_keys = [c.name for c in self.columns if c.name in self.primary_key and c.nullable]
        if nullable_keys:
            raise ConfigurationError(
                f"table {self.name}: primary key columns must be nullable: false "
                f"({', '.join(nullable_keys)})",
                table=self.name,
            )
        if self.load_mode is LoadMode.UPSERT and not self.primary_key:
            raise ConfigurationError(
                f"table {self.name}: load_mode upsert needs a primary_key", table=self.name
            )

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def header_index(self) -> dict[str, str]:
        """Normalized header label -> column name, aliases included."""
        return {key: c.name for c in self.columns for key in c.header_keys}


@dataclass(frozen=True)
class Catalog:
    """Every table contract the service knows, by name."""

    tables: Mapping[str, TableContract]

    def __iter__(self) -> Iterator[TableContract]:
        return iter(self.tables.values())

    def __len__(self) -> int:
        return len(self.tables)

    def get(self, name: str) -> TableContract:
        try:
            return self.tables[name]
        except KeyError:
            raise ConfigurationError(
                f"no contract for table {name!r}; known: {', '.join(sorted(self.tables))}",
                table=name,
            ) from None


# ---------------------------------------------------------------- from YAML


def catalog_from_mapping(
    tables: Mapping[str, Any], defaults: Mapping[str, Any] | None = None
) -> Catalog:
    defaults = dict(defaults or {})
    built = {}
    for name, spec in (tables or {}).items():
        built[str(name)] = contract_from_mapping(str(name), spec or {}, defaults)
    if not built:
        raise ConfigurationError("config declares no tables")
    return Catalog(built)


def contract_from_mapping(
    name: str, spec: Mapping[str, Any], defaults: Mapping[str, Any] | None = None
) -> TableContract:
    merged = {**(defaults or {}), **spec}
    unknown = set(spec) - {
        "columns",
        "primary_key",
        "load_mode",
        "max_reject_ratio",
        "options",
        "description",
        "rounding",
    }
    if unknown:
        raise ConfigurationError(
            f"table {name}: unknown keys {sorted(unknown)}", table=name, keys=sorted(unknown)
        )
    rounding = _rounding(merged.get("rounding"), f"table {name}")
    columns = tuple(_column(name, c, rounding) for c in merged.get("columns") or ())
    try:
        mode = LoadMode(str(merged.get("load_mode", LoadMode.UPSERT.value)).lower())
    except ValueError:
        raise ConfigurationError(
            f"table {name}: load_mode must be one of {[m.value for m in LoadMode]}", table=name
        ) from None
    key = merged.get("primary_key") or ()
    return TableContract(
        name=name,
        columns=columns,
        primary_key=(key,) if isinstance(key, str) else tuple(str(k) for k in key),
        load_mode=mode,
        max_reject_ratio=float(merged.get("max_reject_ratio", 0.10)),
        options=dict(merged.get("options") or {}),
    )


_COLUMN_KEYS = {
    "name",
    "type",
    "nullable",
    "allowed",
    "min",
    "max",
    "aliases",
    "description",
    "rounding",
    "trim",
}


def _column(table: str, spec: Mapping[str, Any], table_rounding: Rounding | None) -> Column:
    if not isinstance(spec, Mapping) or "name" not in spec or "type" not in spec:
        raise ConfigurationError(f"table {table}: each column needs a name and a type", table=table)
    name = str(spec["name"])
    unknown = set(spec) - _COLUMN_KEYS
    if unknown:
        raise ConfigurationError(
            f"table {table}, column {name}: unknown keys {sorted(unknown)}",
            table=table,
            column=name,
        )
    try:
        ctype = ColumnType.parse(str(spec["type"]))
    except ConfigurationError as error:
        raise ConfigurationError(
            f"table {table}, column {name}: {error}", table=table, column=name
        ) from None
    where = f"table {table}, column {name}"
    is_decimal = ctype.kind is TypeKind.DECIMAL
    if "rounding" in spec and not is_decimal:
        raise ConfigurationError(
            f"{where}: rounding applies to decimal columns only", table=table, column=name
        )
    trim = spec.get("trim", True)
    if not isinstance(trim, bool):
        raise ConfigurationError(f"{where}: trim must be true or false", table=table, column=name)
    if not trim and ctype.kind not in (TypeKind.VARCHAR, TypeKind.CHAR):
        raise ConfigurationError(
            f"{where}: trim: false applies to varchar and char columns only",
            table=table,
            column=name,
        )
    # The column's own setting wins over the table's (or the defaults').
    rounding = _rounding(spec["rounding"], where) if "rounding" in spec else table_rounding
    allowed = spec.get("allowed")
    return Column(
        name=name,
        type=ctype,
        nullable=bool(spec.get("nullable", True)),
        allowed=None if allowed is None else tuple(_scalar(ctype, v, table, name) for v in allowed),
        min=_scalar(ctype, spec["min"], table, name) if spec.get("min") is not None else None,
        max=_scalar(ctype, spec["max"], table, name) if spec.get("max") is not None else None,
        aliases=tuple(str(a) for a in _as_list(spec.get("aliases"))),
        rounding=rounding if is_decimal else None,
        trim=trim,
    )


def _rounding(value: Any, where: str) -> Rounding | None:
    """A ``rounding:`` setting; null (or absent) means reject what does not fit."""
    if value is None:
        return None
    try:
        return Rounding(str(value).lower())
    except ValueError:
        raise ConfigurationError(
            f"{where}: rounding must be one of {[r.value for r in Rounding]} "
            f"(or absent, to reject values with too many decimal places), not {value!r}",
        ) from None


def _as_list(value: Any) -> Sequence[Any]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def _scalar(ctype: ColumnType, value: Any, table: str, column: str) -> Scalar:
    """Bring a YAML literal to the column's Python type, so comparisons are exact."""
    kind = ctype.kind
    try:
        if kind in (TypeKind.SMALLINT, TypeKind.INTEGER, TypeKind.BIGINT):
            if isinstance(value, bool) or int(value) != Decimal(str(value)):
                raise ValueError(value)
            return int(value)
        if kind is TypeKind.DECIMAL:
            return Decimal(str(value))
        if kind is TypeKind.DOUBLE:
            return float(value)
        if kind is TypeKind.BOOLEAN:
            if isinstance(value, bool):
                return value
            raise ValueError(value)
        if kind is TypeKind.DATE:
            return value if isinstance(value, date) else date.fromisoformat(str(value))
        if kind is TypeKind.TIMESTAMP:
            return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        return str(value)
    except (ValueError, ArithmeticError):
        raise ConfigurationError(
            f"table {table}, column {column}: {value!r} is not a valid {ctype}",
            table=table,
            column=column,
            value=repr(value),
        ) from None


def names(contracts: Iterable[TableContract]) -> list[str]:
    return [c.name for c in contracts]
