from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal

import pyarrow as pa
import pytest

from domain.coercion import clean_text, coerce
from domain.rejects import RejectReason
from domain.types import ColumnType, Rounding

pytestmark = pytest.mark.unit


def run(
    type_text: str,
    cells: Sequence[str | None],
    date_1904: bool = False,
    rounding: Rounding | None = None,
) -> tuple[list[object], dict[RejectReason, list[int]]]:
    coerced = coerce(
        clean_text(pa.array(cells, pa.string())), ColumnType.parse(type_text), date_1904, rounding
    )
    bad = {
        p.reason: [i for i, flag in enumerate(p.mask.to_pylist()) if flag]
        for p in coerced.problems
        if any(p.mask.to_pylist())
    }
    return coerced.values.to_pylist(), bad


def test_integers_accept_whole_numbers_written_as_text_or_float() -> None:
    values, bad = run("integer", ["22", "22.0", " 7 ", "-5", "", None, "abc", "12.5", "1e3"])
    assert values == [22, 22, 7, -5, None, None, None, None, None]
    assert bad == {RejectReason.TYPE: [6, 7, 8]}


@pytest.mark.parametrize(
    ("type_text", "inside", "outside"),
    [
        ("smallint", "32767", "32768"),
        ("integer", "-2147483648", "-2147483649"),
        ("bigint", "9223372036854775807", "9223372036854775808"),
        ("bigint", "1", "123456789012345678901234567890"),
    ],
)
def test_integer_type_ranges_follow_redshift(type_text: str, inside: str, outside: str) -> None:
    values, bad = run(type_text, [inside, outside])
    assert values == [int(inside), None]
    assert bad == {RejectReason.OUT_OF_RANGE: [1]}


def test_decimals_with_more_places_than_the_scale_are_rejected_not_rounded() -> None:
    values, bad = run(
        "decimal(5,2)", ["28.5", "0.42", "0.9167", "71.28330000000001", "999.995", "1e2", "x"]
    )
    assert values == [Decimal("28.50"), Decimal("0.42"), None, None, None, Decimal("100.00"), None]
    assert bad == {RejectReason.TOO_PRECISE: [2, 3, 4], RejectReason.TYPE: [6]}


def test_a_too_precise_decimal_is_explained_with_its_value_and_type() -> None:
    coerced = coerce(pa.array(["0.9167"]), ColumnType.parse("decimal(5,2)"))
    problem = next(p for p in coerced.problems if p.reason is RejectReason.TOO_PRECISE)
    assert problem.template.format(value="0.9167") == (
        "0.9167 has more decimal places than decimal(5,2) allows"
    )


@pytest.mark.parametrize(
    "cells",
    [
        ["0.9100", "12.50000", "120", "1.5e1", "12e-1", "0e-9", "-0.00", "+.5"],
        [0.1, 0.29, 1e-2, 71.28, 1e12 + 0.07],  # shortest round-trip text: 0.1 has one place
    ],
)
def test_decimal_places_are_counted_without_trailing_zeros_or_binary_noise(
    cells: list[object],
) -> None:
    coerced = coerce(pa.array(cells), ColumnType.parse("decimal(15,2)"))
    assert not any(p.mask.true_count for p in coerced.problems)
    assert coerced.values.null_count == 0


def test_a_decimal_with_a_signed_exponent_is_a_number() -> None:
    # hypothesis found "1E+0" in a decimal column failing the whole file.
    values, bad = run("decimal(10,4)", ["0E+0", "1E+2", "1.5E-2", "+2.5E+1"])
    assert values == [Decimal("0"), Decimal("100"), Decimal("0.015"), Decimal("25")]
    assert bad == {}


@pytest.mark.parametrize(
    ("rounding", "expected"),
    [
        (Rounding.HALF_EVEN, ["0.92", "0.14", "0.12", "-0.12", "0.13", "0.00", "100.00"]),
        (Rounding.HALF_UP, ["0.92", "0.15", "0.13", "-0.13", "0.13", "0.00", "100.00"]),
    ],
)
@pytest.mark.parametrize("as_float", [False, True])
def test_rounding_is_exact_decimal_arithmetic_on_the_written_digits(
    rounding: Rounding, expected: list[str], as_float: bool
) -> None:
    # 0.145 is 0.14499999999999999 as a double: rounding the double would give
    # 0.14 half up. The tie-breaking digit far below the scale must count too.
    cells = ["0.9167", "0.145", "0.125", "-0.125", "0.1250000000000000000001", "1e-300", "99.995"]
    array = pa.array([float(c) for c in cells] if as_float else cells)
    if as_float:
        expected[4] = "0.12" if rounding is Rounding.HALF_EVEN else "0.13"  # a double of 0.125
    coerced = coerce(array, ColumnType.parse("decimal(5,2)"), rounding=rounding)
    assert [str(v) for v in coerced.values.to_pylist()] == expected
    assert not any(p.mask.true_count for p in coerced.problems)


def test_rounding_that_carries_past_the_precision_is_out_of_range() -> None:
    values, bad = run("decimal(4,2)", ["99.995", "99.994"], rounding=Rounding.HALF_UP)
    assert values == [None, Decimal("99.99")]
    assert bad == {RejectReason.OUT_OF_RANGE: [0]}


def test_wide_decimals_are_exact() -> None:
    values, bad = run("decimal(30,10)", ["12345678901234567890.0123456789", "1.00000000005", "1e5"])
    assert values == [Decimal("12345678901234567890.0123456789"), None, None]
    assert bad == {RejectReason.TOO_PRECISE: [1], RejectReason.TYPE: [2]}


def test_wide_decimals_round_exactly_when_asked() -> None:
    values, bad = run(
        "decimal(38,10)",
        ["1234567890123456789012345678.0123456789", "1.00000000005", "1.000000000049999999999999"],
        rounding=Rounding.HALF_UP,
    )
    assert values == [
        Decimal("1234567890123456789012345678.0123456789"),
        Decimal("1.0000000001"),
        Decimal("1.0000000000"),
    ]
    assert bad == {}


def test_huge_exponents_neither_crash_nor_pass() -> None:
    # Arrow's decimal parser crashes on a seven-digit exponent.
    values, bad = run("decimal(5,2)", ["1e-9999999", "1e+9999999"])
    assert values == [None, None]
    assert bad == {RejectReason.TOO_PRECISE: [0], RejectReason.OUT_OF_RANGE: [1]}
    rounded, _ = run("decimal(5,2)", ["1e-9999999"], rounding=Rounding.HALF_EVEN)
    assert rounded == [Decimal("0.00")]


def test_double() -> None:
    values, bad = run("double", ["1.5", "-2e-3", "inf", "1e999"])
    assert values == [1.5, -0.002, None, None]
    assert bad == {RejectReason.TYPE: [2], RejectReason.OUT_OF_RANGE: [3]}


def test_booleans() -> None:
    values, bad = run("boolean", ["1", "0", "TRUE", "false", "Yes", "no", "1.0", "maybe"])
    assert values == [True, False, True, False, True, False, True, None]
    assert bad == {RejectReason.TYPE: [7]}


def test_dates_from_iso_text_and_excel_serials_in_both_date_systems() -> None:
    cells = [
        "2020-01-02",
        "2020-01-02 00:00:00",
        "43831",
        "1",
        "59",
        "61",
        "60",
        "2020-02-30",
        "43831.5",
    ]
    values, bad = run("date", cells)
    assert values[:6] == [
        date(2020, 1, 2), date(2020, 1, 2), date(2020, 1, 1), date(1900, 1, 1),
        date(1900, 2, 28), date(1900, 3, 1),
    ]  # fmt: skip
    # 60 is Lotus' phantom 1900-02-29; 02-30 does not exist; .5 is a time of day.
    assert bad == {RejectReason.TYPE: [6, 7, 8]}
    values_1904, _ = run("date", ["0", "42369"], date_1904=True)
    assert values_1904 == [date(1904, 1, 1), date(2020, 1, 1)]


def test_timestamps() -> None:
    values, bad = run(
        "timestamp",
        [
            "2020-01-02 13:45:00",
            "2020-01-02T13:45:00.5",
            "2020-01-02 13:45",
            "43831.5",
            "2020-13-01",
            "x",
        ],
    )
    assert values[:4] == [
        datetime(2020, 1, 2, 13, 45), datetime(2020, 1, 2, 13, 45, 0, 500000),
        datetime(2020, 1, 2, 13, 45), datetime(2020, 1, 1, 12, 0),
    ]  # fmt: skip
    assert bad == {RejectReason.TYPE: [4, 5]}


def test_varchar_counts_utf8_bytes_and_char_refuses_multibyte() -> None:
    values, bad = run("varchar(4)", ["abcd", "abcde", "éé", "ééa"])
    assert values == ["abcd", None, "éé", None]
    assert bad == {RejectReason.TOO_LONG: [1, 3]}
    values, bad = run("char(2)", ["SS", "é", "S"])
    assert values == ["SS", None, "S"]
    assert bad == {RejectReason.TYPE: [1]}


def test_whitespace_only_cells_are_empty() -> None:
    values, bad = run("varchar(5)", ["  ", " a ", None])
    assert values == [None, "a", None]
    assert bad == {}


def test_text_keeps_its_spaces_when_trimming_is_off() -> None:
    cells = clean_text(pa.array(["  ", " a ", "b\t", None, ""]), trim=False)
    assert cells.to_pylist() == [None, " a ", "b\t", None, None]


def run_numbers(
    type_text: str, cells: list[float | None], date_1904: bool = False
) -> tuple[list[object], dict[RejectReason, list[int]]]:
    coerced = coerce(pa.array(cells, pa.float64()), ColumnType.parse(type_text), date_1904)
    bad = {
        p.reason: [i for i, flag in enumerate(p.mask.to_pylist()) if flag]
        for p in coerced.problems
        if any(p.mask.to_pylist())
    }
    return coerced.values.to_pylist(), bad


@pytest.mark.parametrize(
    ("type_text", "cells"),
    [
        ("integer", [22.0, 12.5, -3.0, None, 3e9]),
        ("smallint", [1.0, 40000.0, None]),
        ("decimal(5,2)", [28.5, 71.28330000000001, 999.995, 0.9167, 1e3, None]),
        ("double", [1.5, -2.5e300, None]),
        ("boolean", [1.0, 0.0, 2.0, None]),
        ("date", [43831.0, 60.0, 43831.5, 1.0, None]),
        ("timestamp", [43831.5, -1.0, None]),
        ("varchar(4)", [22.0, 512.3292, 1.5, None]),
    ],
)
def test_numeric_columns_take_the_fast_path_with_the_same_outcome(
    type_text: str, cells: list[float | None]
) -> None:
    """A float64 column from the reader must validate exactly as its text would."""
    from domain.coercion import as_text

    text = as_text(pa.array(cells, pa.float64())).to_pylist()
    assert run_numbers(type_text, cells) == run(type_text, text)


def test_numbers_print_as_typed() -> None:
    from domain.coercion import as_text

    cells = [22.0, 28.5, 1e-10, 123456789012345.0, 2.0**60, -3.0, None]
    assert as_text(pa.array(cells)).to_pylist() == [
        "22", "28.5", "1e-10", "123456789012345", "1.152921504606847e+18", "-3", None,
    ]  # fmt: skip


def test_a_clean_column_keeps_its_values_and_a_null_in_a_mask_still_nulls() -> None:
    """No mask set, the values pass untouched; a null in a mask is not "unset"."""
    from domain.coercion import _null_where

    values = pa.array([1.0, 2.0, None])
    assert _null_where(values, pa.array([False, False, False])) is values
    assert _null_where(values, pa.array([False, None, False])).to_pylist() == [1.0, None, None]
    assert _null_where(values, pa.array([True, False, False])).to_pylist() == [None, 2.0, None]
