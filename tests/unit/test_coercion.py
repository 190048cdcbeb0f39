from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pyarrow as pa
import pytest

from domain.coercion import clean_text, coerce
from domain.rejects import RejectReason
from domain.types import ColumnType

pytestmark = pytest.mark.unit


def run(
    type_text: str, cells: list[str | None], date_1904: bool = False
) -> tuple[list[object], dict[RejectReason, list[int]]]:
    coerced = coerce(
        clean_text(pa.array(cells, pa.string())), ColumnType.parse(type_text), date_1904
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


def test_decimals_round_binary_floats_to_the_scale_and_reject_overflow() -> None:
    values, bad = run("decimal(5,2)", ["28.5", "0.42", "71.28330000000001", "999.995", "1e2", "x"])
    assert values == [
        Decimal("28.50"),
        Decimal("0.42"),
        Decimal("71.28"),
        None,
        Decimal("100.00"),
        None,
    ]
    assert bad == {RejectReason.OUT_OF_RANGE: [3], RejectReason.TYPE: [5]}


def test_wide_decimals_are_exact() -> None:
    values, bad = run("decimal(30,10)", ["12345678901234567890.0123456789", "1.00000000005", "1e5"])
    assert values[:2] == [Decimal("12345678901234567890.0123456789"), Decimal("1.0000000001")]
    assert bad == {RejectReason.TYPE: [2]}


def test_decimal_38_uses_every_digit_and_truncates_beyond_the_scale() -> None:
    values, bad = run(
        "decimal(38,10)", ["1234567890123456789012345678.0123456789", "1.00000000009"]
    )
    assert values == [Decimal("1234567890123456789012345678.0123456789"), Decimal("1.0000000000")]
    assert bad == {}


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
    assert values == [None, "a", None] and bad == {}


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
        ("decimal(5,2)", [28.5, 71.28330000000001, 999.995, None]),
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
