"""Vectorised coercion of text cells to contract types.

Readers hand over every cell as text, so CSV and Excel follow one path. Each
coercion returns the typed array (null where the cell was empty or bad) and the
masks of bad cells. Nothing here loops over rows: a million-row sheet is a few
Arrow kernels per column.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc

from domain.arrays import any_set, falses
from domain.arrow_types import arrow_type
from domain.rejects import RejectReason
from domain.types import INTEGER_BOUNDS, ColumnType, Rounding, TypeKind

_INTEGRAL = r"^[+-]?\d+(\.0*)?$"
_INTEGRAL_FITS = r"^[+-]?0*\d{1,19}(\.0*)?$"  # at most 19 digits: safe for decimal128(38,0)
_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_PLAIN_DECIMAL = r"^[+-]?(\d+\.?\d*|\.\d+)$"
_ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"
_ISO_DATE_MIDNIGHT = r"^\d{4}-\d{2}-\d{2}[ T]00:00(:00(\.0+)?)?$"
_ISO_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?$"
_TRUE = ["1", "1.0", "true", "t", "yes", "y"]
_FALSE = ["0", "0.0", "false", "f", "no", "n"]
# Float64 holds 15 significant decimal digits exactly; wider decimals go through
# Arrow's exact string->decimal cast instead.
_FLOAT_SAFE_PRECISION = 15
# A number text's parts, trailing zeros apart. Exponents stop at four digits:
# Arrow's decimal parser crashes on seven (pyarrow 26).
_PLACES = (
    r"^[+-]?(?P<whole>\d*?)(?P<zeros>0*)(?:\.(?P<fraction>\d*?)0*)?"
    r"(?:[eE](?P<exponent>[+-]?\d{1,4}))?$"
)
_MANY_PLACES = 1 << 30
_ROUND_MODES = {Rounding.HALF_EVEN: "half_to_even", Rounding.HALF_UP: "half_towards_infinity"}
# Exact rounding works this many places below the scale, in decimal256 one digit
# short of its 76 so that adding the digit standing for the cut ones still fits.
_GUARD_DIGITS = 20
_WORK_PRECISION = 75

_EPOCH_1900 = date(1899, 12, 30)  # serial 1 = 1900-01-01 once Lotus' phantom 1900-02-29 is skipped
_EPOCH_1904 = date(1904, 1, 1)
_DAY_US = 86_400_000_000


@dataclass(frozen=True)
class Problem:
    """Cells of one column that failed one check, and how to say why."""

    mask: pa.Array  # boolean, no nulls
    reason: RejectReason
    template: str  # formatted with value=<cell text>


@dataclass(frozen=True)
class Coerced:
    values: pa.Array  # typed; null where empty or bad
    problems: tuple[Problem, ...]


def clean_text(cells: pa.Array, trim: bool = True) -> pa.Array:
    """Trim surrounding white space (unless ``trim`` is off); a blank cell becomes null.

    A cell of white space only is empty either way, as every reader treats it.
    """
    trimmed = pc.utf8_trim_whitespace(cells)
    return _null_where(trimmed if trim else cells, _bad(pc.equal(trimmed, "")))


def coerce(
    text: pa.Array,
    ctype: ColumnType,
    date_1904: bool = False,
    rounding: Rounding | None = None,
) -> Coerced:
    """Coerce a text column, or a float64 column a reader found purely numeric.

    ``rounding`` is how a decimal column brings a value with more places than
    its scale to it; None rejects such a value.
    """
    kind = ctype.kind
    if pa.types.is_floating(text.type):
        if kind in (TypeKind.VARCHAR, TypeKind.CHAR):
            return _text(as_text(text), ctype)
        return _from_number(pc.cast(text, pa.float64()), ctype, date_1904, rounding)
    if kind in INTEGER_BOUNDS:
        return _integer(text, ctype)
    if kind is TypeKind.DECIMAL:
        return _decimal(text, ctype, rounding)
    if kind is TypeKind.DOUBLE:
        return _double(text)
    if kind is TypeKind.BOOLEAN:
        return _boolean(text)
    if kind is TypeKind.DATE:
        return _date(text, date_1904)
    if kind is TypeKind.TIMESTAMP:
        return _timestamp(text, date_1904)
    return _text(text, ctype)


def as_text(values: pa.Array) -> pa.Array:
    """Numbers as a person typed them: 22.0 -> "22", 512.3292 -> "512.3292"."""
    if pa.types.is_string(values.type):
        return values
    if not pa.types.is_floating(values.type):
        return pc.cast(values, pa.string())
    # Whole numbers print without exponent up to 2**53, where doubles stop
    # holding every integer exactly.
    whole = _bad(pc.and_(pc.equal(pc.floor(values), values), pc.less(pc.abs(values), float(2**53))))
    as_int = pc.cast(pc.cast(_null_where(values, pc.invert(whole)), pa.int64()), pa.string())
    return pc.if_else(whole, as_int, pc.cast(values, pa.string()))


def _from_number(
    number: pa.Array, ctype: ColumnType, date_1904: bool, rounding: Rounding | None
) -> Coerced:
    """The fast path: numeric cells need no parsing, only checks and casts."""
    kind = ctype.kind
    present = pc.is_valid(number)
    if kind in INTEGER_BOUNDS:
        low, high = INTEGER_BOUNDS[kind]
        fraction = _bad(pc.not_equal(pc.floor(number), number))
        outside = pc.and_(
            pc.invert(fraction),
            _bad(pc.or_(pc.less(number, float(low)), pc.greater(number, float(high)))),
        )
        values = pc.cast(
            _null_where(number, pc.or_(fraction, outside)), arrow_type(ctype), safe=False
        )
        return Coerced(
            values,
            (
                Problem(fraction, RejectReason.TYPE, "{value!r} is not a whole number"),
                Problem(
                    outside,
                    RejectReason.OUT_OF_RANGE,
                    f"{{value}} is outside the {ctype.sql} range {low}..{high}",
                ),
            ),
        )
    if kind is TypeKind.DECIMAL:
        return _decimal_from_float(number, present, ctype, rounding)
    if kind is TypeKind.DOUBLE:
        infinite = _bad(pc.is_inf(number))
        return Coerced(
            _null_where(number, infinite),
            (Problem(infinite, RejectReason.OUT_OF_RANGE, "{value} is too large"),),
        )
    if kind is TypeKind.BOOLEAN:
        true, false = _bad(pc.equal(number, 1.0)), _bad(pc.equal(number, 0.0))
        bad = pc.and_(present, pc.invert(pc.or_(true, false)))
        values = pc.if_else(
            true, pa.scalar(True), pc.if_else(false, pa.scalar(False), pa.scalar(None, pa.bool_()))
        )
        message = "{value!r} is not a boolean (use 1/0, true/false or yes/no)"
        return Coerced(values, (Problem(bad, RejectReason.TYPE, message),))
    us, _ = _serial_from_number(number, present, date_1904)
    if kind is TypeKind.DATE:
        whole = _bad(pc.equal(pc.remainder(us, _DAY_US), 0))
        moments = pc.cast(_null_where(us, pc.invert(whole)), pa.timestamp("us"))
        values = pc.cast(moments, pa.date32())
        message = "{value!r} is not a date (YYYY-MM-DD, or an Excel date serial number)"
    else:
        values = pc.cast(us, pa.timestamp("us"))
        message = "{value!r} is not a timestamp (YYYY-MM-DD HH:MM:SS, or an Excel serial number)"
    bad = pc.and_(present, pc.is_null(values))
    return Coerced(values, (Problem(bad, RejectReason.TYPE, message),))


def _decimal_from_float(
    number: pa.Array, ok: pa.Array, ctype: ColumnType, rounding: Rounding | None
) -> Coerced:
    assert ctype.scale is not None
    limit = _decimal_limit(ctype)
    outside = pc.and_(ok, _bad(pc.invert(pc.less(pc.abs(number), float(limit)))))
    rounded = _round_within(number, ctype.scale, limit)
    # A double that rounding to the scale leaves unchanged has no more places than
    # the scale: the usual case, decided without text. The others are decided on
    # the shortest text that round-trips the double (0.1 is "0.1", not 55 places).
    suspects = pc.and_(pc.and_(ok, pc.invert(outside)), pc.invert(_bad(pc.equal(rounded, number))))
    fast = pc.cast(_null_where(rounded, pc.or_(outside, suspects)), arrow_type(ctype))
    shortest = (
        pc.cast(_null_where(number, pc.invert(suspects)), pa.string())
        if any_set(suspects)
        else pa.nulls(len(number), pa.string())
    )
    return _settle_decimals(ctype, rounding, outside, suspects, shortest, fast)


def _decimal(text: pa.Array, ctype: ColumnType, rounding: Rounding | None) -> Coerced:
    assert ctype.precision is not None
    assert ctype.scale is not None
    limit = _decimal_limit(ctype)
    if ctype.precision <= _FLOAT_SAFE_PRECISION:
        ok = _bad(pc.match_substring_regex(text, _NUMBER))
        number = pc.cast(_null_where(text, pc.invert(ok)), pa.float64())
        outside = pc.and_(ok, _bad(pc.invert(pc.less(pc.abs(number), float(limit)))))
        places = _decimal_places(_null_where(text, pc.invert(ok)))
        beyond_scale = pc.and_(ok, _bad(pc.greater(places, ctype.scale)))
        candidates = pc.and_(beyond_scale, pc.invert(outside))
        # Up to 15 digits a double holds the value exactly, so the float kernels
        # give the right decimal for every text within the scale.
        fast = pc.cast(
            _null_where(_round_within(number, ctype.scale, limit), pc.or_(outside, candidates)),
            arrow_type(ctype),
        )
        settled = _settle_decimals(ctype, rounding, outside, candidates, text, fast, places)
    else:
        # Wider decimals never pass through a double: the text is parsed exactly.
        ok = _bad(pc.match_substring_regex(text, _PLAIN_DECIMAL))
        whole_digits = ctype.precision - ctype.scale
        fits = _bad(pc.match_substring_regex(text, rf"^[+-]?0*\d{{0,{whole_digits}}}(\.\d*)?$"))
        outside = pc.and_(ok, pc.invert(fits))
        candidates = pc.and_(ok, fits)
        fast = pa.nulls(len(text), arrow_type(ctype))
        settled = _settle_decimals(ctype, rounding, outside, candidates, text, fast)
    not_number = pc.and_(_present(text), pc.invert(ok))
    return Coerced(
        settled.values,
        (Problem(not_number, RejectReason.TYPE, "{value!r} is not a number"), *settled.problems),
    )


def _settle_decimals(
    ctype: ColumnType,
    rounding: Rounding | None,
    outside: pa.Array,
    candidates: pa.Array,
    text: pa.Array,
    fast: pa.Array,
    places: pa.Array | None = None,
) -> Coerced:
    """Decide the ``candidates`` cells exactly on their ``text``; the rest keep ``fast``.

    A candidate with more places than the scale is rejected, or rounded in
    decimal arithmetic when the column opts into ``rounding``; either way the
    value is the text's, never its nearest double's. ``fast`` must already be
    null wherever a cell is a candidate or ``outside``.
    """
    assert ctype.scale is not None
    none = falses(len(candidates))
    too_precise = none
    if any_set(candidates):
        text = _null_where(text, pc.invert(candidates))
        places = _decimal_places(text) if places is None else places
        too_precise = pc.and_(candidates, _bad(pc.greater(places, ctype.scale)))
        exact_needed = candidates if rounding else pc.and_(candidates, pc.invert(too_precise))
        exact = _round_exactly(
            _null_where(text, pc.invert(exact_needed)),
            places,
            ctype,
            rounding or Rounding.HALF_EVEN,
        )
        bound = pa.scalar(Decimal(_decimal_limit(ctype)), exact.type)
        too_large = pc.and_(exact_needed, pc.invert(_bad(pc.less(pc.abs(exact), bound))))
        outside = pc.or_(outside, too_large)
        exact_values = pc.cast(_null_where(exact, too_large), arrow_type(ctype))
        fast = pc.if_else(exact_needed, exact_values, fast)
        if rounding:
            too_precise = none
    return Coerced(
        fast,
        (
            Problem(outside, RejectReason.OUT_OF_RANGE, f"{{value}} does not fit {ctype.sql}"),
            Problem(
                too_precise,
                RejectReason.TOO_PRECISE,
                f"{{value}} has more decimal places than {ctype} allows",
            ),
        ),
    )


def _decimal_limit(ctype: ColumnType) -> int:
    """The first magnitude a decimal(p, s) cannot hold."""
    assert ctype.precision is not None
    assert ctype.scale is not None
    return int(10 ** (ctype.precision - ctype.scale))


def _decimal_places(text: pa.Array) -> pa.Array:
    """How many decimal places each number text needs: "0.9100" 2, "1.5e-3" 4, "120" 0.

    Trailing zeros change no value, so they do not count. An exponent of five
    digits or more counts as _MANY_PLACES: such a text is zero or out of range.
    """
    parts = pc.extract_regex(text, _PLACES)
    whole = pc.utf8_length(pc.struct_field(parts, "whole"))
    zeros = pc.utf8_length(pc.struct_field(parts, "zeros"))
    fraction = pc.utf8_length(pc.struct_field(parts, "fraction"))
    # Arrow's integer parser refuses a leading "+" ("1E+2" is a number all the same).
    exponent_text = pc.utf8_ltrim(pc.struct_field(parts, "exponent"), "+")
    exponent = pc.cast(pc.if_else(pc.equal(exponent_text, ""), "0", exponent_text), pa.int64())
    # "120" needs -1 places before its exponent, "0.91" two.
    mantissa = pc.cast(pc.if_else(pc.greater(fraction, 0), fraction, pc.negate(zeros)), pa.int64())
    places = pc.max_element_wise(pc.subtract(mantissa, exponent), 0)
    zero = pc.equal(pc.add(whole, fraction), 0)
    return pc.fill_null(pc.if_else(zero, 0, places), _MANY_PLACES)


def _round_exactly(
    text: pa.Array, places: pa.Array, ctype: ColumnType, rounding: Rounding
) -> pa.Array:
    """Number texts rounded to the scale in decimal arithmetic, as decimal256.

    0.145 rounds half up to 0.15 here, where its double (0.14499999999999999)
    would give 0.14. The text is cut _GUARD_DIGITS places below the scale and
    one further digit stands for anything cut, which keeps every tie exact.
    """
    assert ctype.scale is not None
    # Arrow mis-parses (or crashes on) decimal texts with huge exponents; such a
    # value is zero at any scale, which its double's shortest text says safely.
    huge = _bad(pc.equal(places, _MANY_PLACES))
    if any_set(huge):
        double = pc.cast(pc.cast(_null_where(text, pc.invert(huge)), pa.float64()), pa.string())
        text = pc.if_else(huge, double, text)
    work = ctype.scale + _GUARD_DIGITS
    finer = pa.decimal256(_WORK_PRECISION, work + 1)
    negative = _bad(pc.starts_with(text, "-"))
    magnitude = pc.replace_substring_regex(text, r"^[+-]", "")
    cut = pc.cast(pc.cast(magnitude, pa.decimal256(_WORK_PRECISION, work), safe=False), finer)
    beyond = pc.and_(_bad(pc.greater(places, work)), pc.invert(huge))
    nudged = pc.cast(pc.add(cut, pa.scalar(Decimal(1).scaleb(-(work + 1)), finer)), finer)
    kept = pc.if_else(beyond, nudged, cut)
    rounded = pc.cast(
        pc.round(kept, ctype.scale, round_mode=_ROUND_MODES[rounding]),
        pa.decimal256(_WORK_PRECISION, ctype.scale),
    )
    return pc.if_else(negative, pc.negate(rounded), rounded)


def _round_within(number: pa.Array, scale: int, limit: int) -> pa.Array:
    """``number`` rounded to ``scale`` places; NaN where it cannot fit under ``limit``.

    Arrow's round raises on overflow (1e305 to 4 places), which would fail the
    whole file for one cell; a magnitude already at the limit cannot fit
    whatever the rounding, so it never reaches the kernel.
    """
    hopeless = _bad(pc.invert(pc.less(pc.abs(number), float(limit))))
    rounded = pc.round(pc.if_else(hopeless, 0.0, number), scale, round_mode="half_towards_infinity")
    return pc.if_else(hopeless, float("nan"), rounded)


def _present(text: pa.Array) -> pa.Array:
    return pc.is_valid(text)


def _bad(mask: pa.Array) -> pa.Array:
    return pc.fill_null(mask, False)


def _null_where(values: pa.Array, mask: pa.Array) -> pa.Array:
    if not mask.null_count and not any_set(mask):
        return values  # the usual case, a clean column: no kernel call
    return pc.if_else(mask, pa.scalar(None, values.type), values)


def _integer(text: pa.Array, ctype: ColumnType) -> Coerced:
    low, high = INTEGER_BOUNDS[ctype.kind]
    shaped = _bad(pc.match_substring_regex(text, _INTEGRAL))
    fits = _bad(pc.match_substring_regex(text, _INTEGRAL_FITS))
    not_number = pc.and_(_present(text), pc.invert(shaped))
    too_wide = pc.and_(shaped, pc.invert(fits))
    digits = pc.replace_substring_regex(text, r"\.0*$", "")
    digits = pc.if_else(fits, digits, pa.scalar(None, pa.string()))
    wide = pc.cast(digits, pa.decimal128(38, 0))
    outside = _bad(pc.or_(pc.less(wide, low), pc.greater(wide, high)))
    out_of_range = pc.or_(too_wide, outside)
    values = pc.cast(_null_where(wide, outside), arrow_type(ctype))
    return Coerced(
        values,
        (
            Problem(not_number, RejectReason.TYPE, "{value!r} is not a whole number"),
            Problem(
                out_of_range,
                RejectReason.OUT_OF_RANGE,
                f"{{value}} is outside the {ctype.sql} range {low}..{high}",
            ),
        ),
    )


def _double(text: pa.Array) -> Coerced:
    ok = _bad(pc.match_substring_regex(text, _NUMBER))
    not_number = pc.and_(_present(text), pc.invert(ok))
    values = pc.cast(_null_where(text, not_number), pa.float64())
    # Very large exponents parse to infinity, which no warehouse column accepts.
    infinite = _bad(pc.is_inf(values))
    values = _null_where(values, infinite)
    return Coerced(
        values,
        (
            Problem(not_number, RejectReason.TYPE, "{value!r} is not a number"),
            Problem(infinite, RejectReason.OUT_OF_RANGE, "{value} is too large"),
        ),
    )


def _boolean(text: pa.Array) -> Coerced:
    lowered = pc.utf8_lower(text)
    true = _bad(pc.is_in(lowered, value_set=pa.array(_TRUE)))
    false = _bad(pc.is_in(lowered, value_set=pa.array(_FALSE)))
    bad = pc.and_(_present(text), pc.invert(pc.or_(true, false)))
    values = pc.if_else(
        true, pa.scalar(True), pc.if_else(false, pa.scalar(False), pa.scalar(None, pa.bool_()))
    )
    return Coerced(
        values,
        (
            Problem(
                bad,
                RejectReason.TYPE,
                "{value!r} is not a boolean (use 1/0, true/false or yes/no)",
            ),
        ),
    )


def _serial_days(text: pa.Array, date_1904: bool) -> tuple[pa.Array, pa.Array]:
    """Excel serial numbers -> microseconds since 1970, and the mask of serials seen."""
    numeric = _bad(pc.match_substring_regex(text, _NUMBER))
    serial = pc.cast(_null_where(text, pc.invert(numeric)), pa.float64())
    return _serial_from_number(serial, numeric, date_1904)


def _serial_from_number(
    serial: pa.Array, numeric: pa.Array, date_1904: bool
) -> tuple[pa.Array, pa.Array]:
    text = serial
    if date_1904:
        epoch = _EPOCH_1904
        phantom = falses(len(text))
    else:
        # Excel keeps Lotus 1-2-3's 1900-02-29 (serial 60); serials below it
        # are one day later than the plain epoch arithmetic says.
        phantom = _bad(pc.and_(pc.greater_equal(serial, 60.0), pc.less(serial, 61.0)))
        serial = pc.if_else(pc.less(serial, 60.0), pc.add(serial, 1.0), serial)
        epoch = _EPOCH_1900
    offset_days = (epoch - date(1970, 1, 1)).days
    us = pc.multiply(pc.add(serial, float(offset_days)), float(_DAY_US))
    valid = pc.and_(numeric, pc.invert(phantom))
    valid = pc.and_(valid, _bad(pc.greater_equal(serial, 0.0)))
    valid = pc.and_(valid, _bad(pc.less(serial, 2_958_466.0)))  # Excel's last day: 9999-12-31
    us = pc.cast(pc.round(_null_where(us, pc.invert(valid)), 0), pa.int64())
    return us, valid


def _date(text: pa.Array, date_1904: bool) -> Coerced:
    iso = _bad(pc.match_substring_regex(text, _ISO_DATE))
    midnight = _bad(pc.match_substring_regex(text, _ISO_DATE_MIDNIGHT))
    iso_text = pc.utf8_slice_codeunits(_null_where(text, pc.invert(pc.or_(iso, midnight))), 0, 10)
    parsed = _strict_dates(iso_text)
    us, _ = _serial_days(text, date_1904)
    # A serial with a time of day is a timestamp, not a date.
    whole = _bad(pc.equal(pc.remainder(us, _DAY_US), 0))
    moments = pc.cast(_null_where(us, pc.invert(whole)), pa.timestamp("us"))
    from_serial = pc.cast(moments, pa.date32())
    values = pc.coalesce(pc.cast(parsed, pa.date32()), from_serial)
    bad = pc.and_(_present(text), pc.is_null(values))
    return Coerced(
        values,
        (
            Problem(
                bad,
                RejectReason.TYPE,
                "{value!r} is not a date (YYYY-MM-DD, or an Excel date serial number)",
            ),
        ),
    )


def _strict_dates(iso_text: pa.Array) -> pa.Array:
    # strptime rolls 2020-02-30 over to March; a date must print back as written.
    parsed = pc.strptime(iso_text, format="%Y-%m-%d", unit="s", error_is_null=True)
    round_trip = _bad(pc.equal(pc.strftime(parsed, format="%Y-%m-%d"), iso_text))
    # Year 0000 parses, but no calendar in use has it: PostgreSQL refuses it
    # and Python's date cannot hold it.
    real_year = _bad(pc.greater_equal(pc.year(parsed), 1))
    return _null_where(parsed, pc.invert(pc.and_(round_trip, real_year)))


def _timestamp(text: pa.Array, date_1904: bool) -> Coerced:
    iso = _bad(pc.match_substring_regex(text, _ISO_TIMESTAMP))
    normalised = pc.replace_substring(_null_where(text, pc.invert(iso)), "T", " ")
    parsed = _parse_iso_timestamps(normalised)
    us, _ = _serial_days(text, date_1904)
    values = pc.coalesce(parsed, pc.cast(us, pa.timestamp("us")))
    bad = pc.and_(_present(text), pc.is_null(values))
    return Coerced(
        values,
        (
            Problem(
                bad,
                RejectReason.TYPE,
                "{value!r} is not a timestamp (YYYY-MM-DD HH:MM:SS, or an Excel serial number)",
            ),
        ),
    )


def _parse_iso_timestamps(text: pa.Array) -> pa.Array:
    # strptime has no optional parts, so each accepted shape is parsed on its
    # own and the first success wins; impossible dates (02-30) stay null.
    seconds = pc.utf8_slice_codeunits(text, 0, 19)
    fraction = pc.utf8_slice_codeunits(text, 20, 26)
    shapes = [
        pc.strptime(seconds, format="%Y-%m-%d %H:%M:%S", unit="us", error_is_null=True),
        pc.strptime(text, format="%Y-%m-%d %H:%M", unit="us", error_is_null=True),
        pc.strptime(text, format="%Y-%m-%d", unit="us", error_is_null=True),
    ]
    base = pc.coalesce(*shapes)
    day = pc.utf8_slice_codeunits(text, 0, 10)
    base = _null_where(base, pc.invert(pc.is_valid(_strict_dates(day))))
    # Pad ".5" to "500000" microseconds.
    micros = pc.cast(
        pc.utf8_rpad(pc.if_else(pc.equal(fraction, ""), "0", fraction), 6, "0"), pa.int64()
    )
    with_fraction = pc.add(pc.cast(base, pa.int64()), pc.fill_null(micros, 0))
    return pc.cast(with_fraction, pa.timestamp("us"))


def _text(text: pa.Array, ctype: ColumnType) -> Coerced:
    assert ctype.length is not None
    nbytes = pc.binary_length(text)
    too_long = _bad(pc.greater(nbytes, ctype.length))
    problems = [
        Problem(
            too_long,
            RejectReason.TOO_LONG,
            f"{{value!r}} is {{nbytes}} bytes in UTF-8; {ctype.sql} holds {ctype.length} bytes",
        )
    ]
    if ctype.kind is TypeKind.CHAR:
        # Redshift CHAR stores single-byte characters only.
        multibyte = _bad(pc.not_equal(nbytes, pc.utf8_length(text)))
        problems.append(
            Problem(
                pc.and_(multibyte, pc.invert(too_long)),
                RejectReason.TYPE,
                "{value!r} has multibyte characters, which CHAR columns cannot hold",
            )
        )
        too_long = pc.or_(too_long, multibyte)
    # PostgreSQL refuses a NUL in text: one such cell failed the whole table's load.
    nul = _bad(pc.match_substring(text, "\x00"))
    problems.append(
        Problem(
            pc.and_(nul, pc.invert(too_long)),
            RejectReason.TYPE,
            "{value!r} holds a NUL character, which a text column cannot hold",
        )
    )
    values = _null_where(text, pc.or_(too_long, nul))
    return Coerced(values, tuple(problems))
