"""Properties of the ingest use case over arbitrary cells, on the in-memory fakes.

Whatever a sheet holds, ingesting it never raises; each non-blank row is either
loaded or rejected with at least one reason naming its row and column, so a
sheet's counts always add up; a sheet over its table's ``max_reject_ratio`` is
refused whole with its reason; and every row in the warehouse satisfies its
contract. Rows built only from valid values are rejected for a duplicate key
or not at all, and load exactly the values they were given.

The examples are derandomized so CI runs the same ones every time;
``DATALAKEP_HYPOTHESIS=explore`` draws fresh random ones, more of them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from application.results import IngestResult, Outcome, SheetResult
from domain.contracts import (
    Catalog,
    Column,
    TableContract,
    catalog_from_mapping,
    contract_from_mapping,
)
from domain.rejects import RejectReason
from domain.routing import Router
from domain.types import INTEGER_BOUNDS, ColumnType, TypeKind
from tests.conftest import CONFIG
from tests.fakes.reports import InMemoryRejectsReportWriter
from tests.fakes.warehouse import InMemoryWarehouse
from tests.fakes.workbooks import as_text
from tests.unit.conftest import TRAIN_HEADER, make_harness, passenger

pytestmark = pytest.mark.unit

T = TypeVar("T")

_EXPLORE = os.environ.get("DATALAKEP_HYPOTHESIS") == "explore"
PROPERTY_SETTINGS = settings(
    max_examples=1000 if _EXPLORE else 100,
    derandomize=not _EXPLORE,
    # Each example runs the whole use case; timing varies with the shared machine.
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

URI = "s3://in/cells.xlsx"

# ------------------------------------------------------------------ arbitrary cells

# Python's str.strip and Arrow's utf8_trim_whitespace agree on all of these.
_SPACES = " \t\n\r\x0b\x0c\x1c\x1f\x85\xa0\u1680\u2003\u2028\u2029\u202f\u3000"
_INVISIBLE = ["\x00", "\x07", "\x1b", "\x7f", "\u200b", "\u200e", "\u2066", "\ufeff", "\ufffd"]

whitespace = st.text(st.sampled_from(_SPACES), max_size=3)


def padded(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(whitespace, inner, whitespace).map("".join)


ODD_NUMBERS = [
    "NaN", "-inf", "Infinity", "1,000", "1_000", "0x1F", "½", "١٢٣", "１２", "--1", "+.5", ".",
    "-0", "0e0", "0000000000000000000000001", "1.", "2958465.99999999", "60", "-1e-7",
    "1e305", "-1.7976931348623157e308", "9" * 40, "0." + "0" * 30 + "1",
]  # fmt: skip
TIMES_OF_DAY = [
    "", " 00:00", "T00:00:00", " 00:00:00.000", " 23:59:59.999999", " 24:00:00", " 12:30:61",
    "T13:45", " 1:2:3", "Z",
]  # fmt: skip
FORMULAS = [
    "=1+1", "=SUM(A1:A3)", "+1", "-1", "@SUM(1)", '=HYPERLINK("http://x","y")',
    "=cmd|' /C calc'!A0", "\t=1", "\r=1", "#DIV/0!", "#N/A", "#VALUE!", "'=1", "TRUE", "yes",
]  # fmt: skip

numeric_text = st.one_of(
    st.integers(-(10**40), 10**40).map(str),
    st.floats().map(repr),  # nan, inf, -0.0, 1e+300, 5e-324
    st.from_regex(r"\A[+-]?\d{0,24}(\.\d{0,16})?([eE][+-]?\d{1,4})?\Z"),
    st.sampled_from(ODD_NUMBERS),
)
date_text = st.builds(
    lambda y, m, d, time: f"{y:04d}-{m:02d}-{d:02d}{time}",
    st.integers(0, 10_000),
    st.integers(0, 13),
    st.integers(0, 32),
    st.sampled_from(TIMES_OF_DAY),
)
formula_text = st.sampled_from(FORMULAS)
control_text = st.text(st.sampled_from(_INVISIBLE) | st.characters(max_codepoint=0x1F), min_size=1)
# Surrogates never reach validation: every reader hands over valid UTF-8 (Arrow
# refuses anything else), and hypothesis's default alphabet leaves them out too.
any_text = st.text(max_size=30)
long_text = st.text(min_size=60, max_size=400)

cell: st.SearchStrategy[object] = st.one_of(
    st.none(),
    st.just(""),
    whitespace,
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.dates(),
    st.datetimes(),
    padded(numeric_text),
    padded(date_text),
    formula_text,
    control_text,
    any_text,
    long_text,
)

# --------------------------------------------------------------------- valid cells


@dataclass(frozen=True)
class Valid:
    """A cell a contract accepts, and the value it must load as."""

    raw: object
    loads_as: object


def spellings(value: T, *raws: object) -> st.SearchStrategy[Valid]:
    return st.sampled_from([Valid(r, value) for r in raws])


def whole(low: int, high: int) -> st.SearchStrategy[Valid]:
    def spell(n: int) -> st.SearchStrategy[Valid]:
        raws: list[object] = [n, str(n), f" {n} ", f"{n}.0", f"+{n}" if n >= 0 else f"{n}.000"]
        if abs(n) <= 2**53:  # beyond, a double no longer holds every integer
            raws.append(float(n))
        return spellings(n, *raws)

    return st.integers(low, high).flatmap(spell)


def decimal(low: str, high: str, places: int, *, as_float: bool = True) -> st.SearchStrategy[Valid]:
    def spell(d: Decimal) -> st.SearchStrategy[Valid]:
        raws: list[object] = [format(d, "f"), f"  {d:f}\t"]
        if as_float:
            raws.append(float(d))  # repr of a double round-trips up to 15 digits
        return spellings(d, *raws)

    values = st.decimals(Decimal(low), Decimal(high), places=places, allow_nan=False)
    return values.flatmap(spell)


def text(
    max_bytes: int, alphabet: st.SearchStrategy[str] | None = None
) -> st.SearchStrategy[Valid]:
    chars = st.characters(categories=("L", "N", "P", "S", "Zs")) if alphabet is None else alphabet
    values = (
        st.text(chars, min_size=1, max_size=max_bytes)
        .map(str.strip)
        .filter(lambda s: 0 < len(s.encode()) <= max_bytes)
    )
    return values.flatmap(lambda s: spellings(s, s, f" {s} "))


def optional(valid: st.SearchStrategy[Valid]) -> st.SearchStrategy[Valid]:
    return st.one_of(spellings(None, None, "", "  "), valid)


def choice(*values: T) -> st.SearchStrategy[Valid]:
    return st.sampled_from(values).map(lambda v: Valid(v, v))


def _shipped(table: str) -> TableContract:
    config = yaml.safe_load(CONFIG.read_text())
    return catalog_from_mapping(config["tables"], config.get("defaults")).get(table)


# The shipped contract (the tests route with the `router` fixture, built from the same file).
TRAIN_DATA = _shipped("train_data")
TRAIN_VALID: dict[str, st.SearchStrategy[Valid]] = {
    # A small key range, so repeated keys (every copy rejected) come up often.
    "PassengerId": whole(1, 40),
    "Survived": whole(0, 1),
    "Pclass": whole(1, 3),
    "Name": text(256),
    "Sex": spellings("male", "male", " male ") | spellings("female", "female"),
    "Age": optional(decimal("0", "130", 2)),
    "SibSp": whole(0, 8),
    "Parch": whole(0, 32767),
    "Ticket": text(64),
    "Fare": optional(decimal("0", "99999", 4)),
    "Cabin": optional(text(64)),
    "Embarked": optional(choice("C", "Q", "S")),
}

WIDE_COLUMNS: list[dict[str, object]] = [
    {"name": "Code", "type": "char(4)", "nullable": False},
    {"name": "Amount", "type": "decimal(12,3)", "min": -1000, "max": 1000000},
    # Over 15 digits of precision: the exact, text-based decimal path.
    {"name": "Precise", "type": "decimal(30,12)"},
    {"name": "Booked", "type": "date", "min": "1900-03-01", "max": "2099-12-31"},
    {"name": "Seen", "type": "timestamp"},
    {"name": "Note", "type": "varchar(12)", "aliases": ["Remark"]},
    {"name": "Kind", "type": "varchar(4)", "nullable": False, "allowed": ["a", "b", "ü"]},
    {"name": "Flag", "type": "boolean"},
    {"name": "Ratio", "type": "double", "min": -1, "max": 1},
    {"name": "Count", "type": "bigint", "min": 0},
]
WIDE_HEADER = [str(c["name"]) for c in WIDE_COLUMNS]


def booked() -> st.SearchStrategy[Valid]:
    days = st.dates(date(1900, 3, 1), date(2099, 12, 31))
    # Excel's 1900 system: serial 61 is 1900-03-01 (after Lotus' phantom 29 February).
    return days.flatmap(
        lambda d: spellings(d, d, d.isoformat(), (d - date(1899, 12, 30)).days, f"{d} 00:00")
    )


def seen() -> st.SearchStrategy[Valid]:
    moments = st.datetimes(datetime(1900, 3, 1), datetime(9999, 12, 31))
    return moments.flatmap(lambda t: spellings(t, t, t.isoformat(sep=" "), t.isoformat()))


WIDE_VALID: dict[str, st.SearchStrategy[Valid]] = {
    "Code": text(4, st.characters(min_codepoint=0x21, max_codepoint=0x7E)),
    "Amount": optional(decimal("-1000", "1000000", 3)),
    "Precise": optional(decimal("-999999999999999999", "999999999999999999", 12, as_float=False)),
    "Booked": optional(booked()),
    "Seen": optional(seen()),
    "Note": optional(text(12)),
    "Kind": choice("a", "b", "ü") | spellings("a", " a "),
    "Flag": optional(spellings(True, True, "TRUE", "y", 1) | spellings(False, False, "No", "0")),
    "Ratio": optional(
        st.floats(-1, 1, allow_nan=False).flatmap(lambda f: spellings(f, f, repr(f), f"{f!r} "))
    ),
    "Count": optional(whole(0, 2**63 - 1)),
}

# ------------------------------------------------------------------------ sheets


@dataclass(frozen=True)
class Row:
    cells: dict[str, object]  # by contract column; missing = an empty cell
    clean: dict[str, object] | None  # what each column must load as, for a valid row
    trailing: tuple[object, ...] = ()  # cells right of the header


@dataclass(frozen=True)
class Sheet:
    name: str
    title_rows: int
    header: tuple[str, ...]  # contract column names, in sheet order
    labels: tuple[str, ...]  # as written in the sheet
    rows: tuple[Row, ...]

    def layout(self) -> list[list[object]]:
        lines: list[list[object]] = [[f"Report {n}"] for n in range(self.title_rows)]
        lines.append(list(self.labels))
        for row in self.rows:
            lines.append([row.cells.get(c) for c in self.header] + list(row.trailing))
        return lines

    @property
    def header_row(self) -> int:
        return self.title_rows + 1

    def data_rows(self) -> dict[int, Row]:
        """Spreadsheet row number -> row, for the rows a reader keeps.

        A row is blank, and dropped, when no cell under a header label shows anything.
        """
        first = self.header_row + 1
        return {
            first + i: row
            for i, row in enumerate(self.rows)
            if any(_shown(row.cells.get(c)) for c in self.header)
        }


def _shown(value: object) -> bool:
    rendered = as_text(value)
    return rendered is not None and bool(rendered.strip())


@st.composite
def rows_for(draw: st.DrawFn, valid: Mapping[str, st.SearchStrategy[Valid]]) -> Row:
    values = {name: draw(strategy) for name, strategy in valid.items()}
    cells = {name: v.raw for name, v in values.items()}
    kind = draw(st.sampled_from(["clean", "clean", "clean", "spoilt", "arbitrary", "blank"]))
    if kind == "blank":
        empty = st.one_of(st.none(), whitespace)
        return Row({name: draw(empty) for name in valid}, None)
    if kind == "arbitrary":
        return Row({name: draw(cell) for name in valid}, None)
    trailing: tuple[object, ...] = ()
    if kind == "spoilt":
        spoilt = draw(st.sets(st.sampled_from(sorted(valid)), min_size=1, max_size=3))
        cells.update({name: draw(cell) for name in spoilt})
        # Cells beyond the header are not the contract's business.
        trailing = tuple(draw(st.lists(cell, max_size=2)))
        return Row(cells, None, trailing)
    return Row(cells, {name: v.loads_as for name, v in values.items()})


@st.composite
def sheets_for(
    draw: st.DrawFn,
    contract: TableContract,
    valid: Mapping[str, st.SearchStrategy[Valid]],
    name: str,
) -> Sheet:
    order = tuple(draw(st.permutations(list(contract.column_names))))
    labels = tuple(
        draw(st.sampled_from([c, c.upper(), f"  {c.lower()} ", *contract.column(c).aliases]))
        for c in order
    )
    rows = draw(st.lists(rows_for(valid), max_size=14))
    return Sheet(name, draw(st.integers(0, 2)), order, labels, tuple(rows))


def workbooks(
    contract: TableContract, valid: Mapping[str, st.SearchStrategy[Valid]]
) -> st.SearchStrategy[list[Sheet]]:
    return st.integers(1, 3).flatmap(
        lambda n: st.tuples(*(sheets_for(contract, valid, f"Sheet {i + 1}") for i in range(n))).map(
            list
        )
    )


# ------------------------------------------------------------------------ running


@dataclass
class Run:
    result: IngestResult
    warehouse: InMemoryWarehouse
    reports: InMemoryRejectsReportWriter


def ingest(router: Router, sheets: Sequence[Sheet]) -> Run:
    harness = make_harness(router)
    harness.drop(URI, {s.name: s.layout() for s in sheets})
    return Run(harness.ingest(URI), harness.warehouse, harness.reports)


def wide_contract(max_reject_ratio: float) -> TableContract:
    return contract_from_mapping(
        "ledger_lines",
        {"primary_key": ["Code"], "max_reject_ratio": max_reject_ratio, "columns": WIDE_COLUMNS},
    )


def wide_router(max_reject_ratio: float) -> tuple[Router, TableContract]:
    contract = wide_contract(max_reject_ratio)
    return Router(Catalog({contract.name: contract})), contract


# ------------------------------------------------------------------------ the checks


def check_ingest(run: Run, contract: TableContract, sheets: Sequence[Sheet]) -> None:
    # A result without a sheet would be the whole file failing.
    assert all(r.sheet is not None for r in run.result.sheets), run.result
    by_name = {str(r.sheet): r for r in run.result.sheets}
    assert sorted(by_name) == sorted(s.name for s in sheets), run.result
    for sheet in sheets:
        check_sheet(by_name[sheet.name], contract, sheet)
    loaded = [r for r in run.result.sheets if r.status is Outcome.LOADED]
    rows = run.warehouse.rows(contract.name)
    assert len(rows) == sum(r.rows_loaded for r in loaded)
    for row in rows:
        assert not violations(contract, row), (violations(contract, row), row)
    check_clean_rows(run, contract, sheets)
    check_report(run)


def check_sheet(result: SheetResult, contract: TableContract, sheet: Sheet) -> None:
    kept = sheet.data_rows()
    assert result.table == contract.name
    assert result.rows_read == len(kept)
    rejected_rows = {reject.row for reject in result.rejects}
    # Every rejected row has a reason, and every reason is a rejected row.
    assert len(rejected_rows) == result.rows_rejected
    assert rejected_rows <= set(kept)
    for reject in result.rejects:
        assert reject.sheet == sheet.name
        assert reject.column in contract.column_names
        assert sheet.header[reject.position] == reject.column
        assert reject.message.strip()
        assert isinstance(reject.reason, RejectReason)
    limit = contract.max_reject_ratio
    if result.status is Outcome.LOADED:
        assert result.rows_loaded + result.rows_rejected == result.rows_read
        assert result.rows_rejected <= limit * result.rows_read
    else:
        # Refused whole: over the table's reject ratio, nothing of it loaded.
        assert result.status is Outcome.REJECTED, result
        assert result.error_code == "reject_ratio_exceeded"
        assert result.rows_loaded == 0
        assert result.rows_rejected > limit * result.rows_read
        assert result.error is not None
        assert f"[sheet {sheet.name}]: {result.rows_rejected} of {result.rows_read}" in (
            result.error
        )
        assert "nothing from this sheet was loaded" in result.error


def check_clean_rows(run: Run, contract: TableContract, sheets: Sequence[Sheet]) -> None:
    """Valid rows are rejected only as repeated keys; loaded, they hold the values given."""
    by_sheet = {r.sheet: r for r in run.result.sheets}
    key = contract.primary_key[0]
    stored = {r[key]: r for r in run.warehouse.rows(contract.name)}
    for sheet in sheets:
        result = by_sheet[sheet.name]
        reasons: dict[int, set[RejectReason]] = {}
        for reject in result.rejects:
            reasons.setdefault(reject.row, set()).add(reject.reason)
        for number, row in sheet.data_rows().items():
            if row.clean is None:
                continue
            if number in reasons:
                assert reasons[number] == {RejectReason.DUPLICATE_KEY}, (number, row, reasons)
                continue
            if result.status is not Outcome.LOADED:
                continue
            loaded = stored[row.clean[key]]
            for column, expected in row.clean.items():
                assert same(loaded[column], expected), (column, loaded[column], expected, row)


def check_report(run: Run) -> None:
    troubled = [r for r in run.result.sheets if r.rows_rejected or r.refused]
    if not troubled:
        assert run.reports.reports == []
        return
    [report] = run.reports.reports
    in_report = {s.sheet: s for s in report.sheets}
    for result in troubled:
        assert result.rejects_report is not None
        assert result.sheet is not None
        part = in_report[result.sheet]
        assert len(part.rows) == result.rows_rejected
        assert all(row.problems for row in part.rows)
        assert (part.sheet_error is not None) == result.refused


def same(loaded: object, expected: object) -> bool:
    if isinstance(expected, float):
        return isinstance(loaded, float) and loaded == expected
    return type(loaded) is type(expected) and loaded == expected


def violations(contract: TableContract, row: Mapping[str, Any]) -> list[str]:
    """How a stored row breaks its contract, independently of the validator."""
    found = []
    for column in contract.columns:
        value = row[column.name]
        if value is None:
            if not column.nullable:
                found.append(f"{column.name}: null in a NOT NULL column")
            continue
        problem = type_problem(column.type, value)
        if problem is None:
            problem = rule_problem(column, value)
        if problem is not None:
            found.append(f"{column.name}={value!r}: {problem}")
    return found


# The oracle: one branch per type kind, read side by side with the contract types.
def type_problem(ctype: ColumnType, value: object) -> str | None:  # noqa: C901
    kind = ctype.kind
    if kind in INTEGER_BOUNDS:
        low, high = INTEGER_BOUNDS[kind]
        return None if type(value) is int and low <= value <= high else f"not a {ctype}"
    if kind is TypeKind.DECIMAL:
        assert ctype.precision is not None
        assert ctype.scale is not None
        if not isinstance(value, Decimal) or not value.is_finite():
            return "not a decimal"
        exponent = value.as_tuple().exponent
        assert isinstance(exponent, int)
        if -exponent > ctype.scale:
            return f"more than {ctype.scale} decimal places"
        return None if abs(value) < 10 ** (ctype.precision - ctype.scale) else "too large"
    if kind is TypeKind.DOUBLE:
        return None if isinstance(value, float) and math.isfinite(value) else "not finite"
    if kind is TypeKind.BOOLEAN:
        return None if type(value) is bool else "not a boolean"
    if kind is TypeKind.DATE:
        return None if type(value) is date else "not a date"
    if kind is TypeKind.TIMESTAMP:
        return None if type(value) is datetime else "not a timestamp"
    assert ctype.length is not None
    if not isinstance(value, str) or not value or value != value.strip():
        return "not trimmed, non-empty text"
    if "\x00" in value:
        return "a NUL character, which PostgreSQL cannot store"
    size = len(value.encode())
    if size > ctype.length:
        return f"{size} bytes in UTF-8, over {ctype.length}"
    if kind is TypeKind.CHAR and size != len(value):
        return "multibyte characters in a CHAR"
    return None


def rule_problem(column: Column, value: Any) -> str | None:
    if column.allowed is not None and value not in column.allowed:
        return f"not one of {column.allowed}"
    if column.min is not None and value < column.min:
        return f"below {column.min}"
    if column.max is not None and value > column.max:
        return f"above {column.max}"
    return None


# ------------------------------------------------------------------------ the tests


# Inputs that once broke a property, kept so every run tries them again.


def _plain_sheet(header: Sequence[str], *rows: Row) -> list[Sheet]:
    return [Sheet("Sheet 1", 0, tuple(header), tuple(header), rows)]


def _passenger_row(pid: int, **cells: object) -> Row:
    return Row({**dict(zip(TRAIN_HEADER, passenger(pid), strict=True)), **cells}, None)


# Arrow's round() raised on overflow: one huge Fare failed the whole file.
HUGE_FARE = _plain_sheet(
    TRAIN_HEADER, *(_passenger_row(n) for n in range(1, 10)), _passenger_row(10, Fare=1.8e304)
)
# "0" in a DECIMAL(30,12) was out of range: Arrow printed it as "0E-12".
WIDE_ZERO = _plain_sheet(
    WIDE_HEADER,
    Row({"Code": "Z1", "Precise": "0", "Kind": "a"}, {"Code": "Z1", "Precise": Decimal(0)}),
    Row(
        {"Code": "Z2", "Precise": "-0.00000000005", "Kind": "b"},
        {"Code": "Z2", "Precise": Decimal("-5E-11")},
    ),
)
# Year 0000 passed as a timestamp that neither the warehouses nor Python can hold.
YEAR_ZERO = _plain_sheet(WIDE_HEADER, Row({"Code": "Y1", "Seen": "0000-01-01", "Kind": "a"}, None))
# A NUL passed validation, and PostgreSQL then refused the whole table's load.
NUL_IN_TEXT = _plain_sheet(WIDE_HEADER, Row({"Code": "N1", "Note": "a\x00b", "Kind": "a"}, None))
HUGE_AMOUNT = _plain_sheet(WIDE_HEADER, Row({"Code": "Y2", "Amount": "1e307", "Kind": "a"}, None))


@PROPERTY_SETTINGS
@given(sheets=workbooks(TRAIN_DATA, TRAIN_VALID))
@example(sheets=HUGE_FARE)
def test_train_data_rows_are_loaded_or_rejected_with_a_reason(
    router: Router, catalog: Catalog, sheets: list[Sheet]
) -> None:
    run = ingest(router, sheets)

    check_ingest(run, catalog.get("train_data"), sheets)


@PROPERTY_SETTINGS
@given(
    sheets=workbooks(wide_contract(1.0), WIDE_VALID),
    max_reject_ratio=st.sampled_from([0.0, 0.1, 0.5, 1.0]),
)
@example(sheets=WIDE_ZERO, max_reject_ratio=1.0)
@example(sheets=YEAR_ZERO, max_reject_ratio=1.0)
@example(sheets=HUGE_AMOUNT, max_reject_ratio=1.0)
@example(sheets=NUL_IN_TEXT, max_reject_ratio=1.0)
def test_decimal_char_date_varchar_rows_are_loaded_or_rejected_with_a_reason(
    sheets: list[Sheet], max_reject_ratio: float
) -> None:
    router, contract = wide_router(max_reject_ratio)

    run = ingest(router, sheets)

    check_ingest(run, contract, sheets)
