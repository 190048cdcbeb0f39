"""Synthetic workbooks for demos and benchmarks: Titanic-shaped, or from any contract.

The real Kaggle files have 1,309 passengers; a benchmark needs a million rows
that look and misbehave like them: the same headers, the same null ratios, the
same awkward names full of commas, quotes and parentheses. Every column is drawn
with numpy and assembled with pyarrow.compute, never row by row, so a full
Excel sheet's worth of rows takes a few seconds.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import xlsxwriter  # type: ignore[import-untyped, unused-ignore]

from domain.arrow_types import arrow_type
from domain.contracts import Column, TableContract
from domain.types import INTEGER_BOUNDS, TypeKind

TRAIN_COLUMNS = (
    "PassengerId",
    "Survived",
    "Pclass",
    "Name",
    "Sex",
    "Age",
    "SibSp",
    "Parch",
    "Ticket",
    "Fare",
    "Cabin",
    "Embarked",
)
TABLES: dict[str, tuple[str, ...]] = {
    "train_data": TRAIN_COLUMNS,
    "test_data": tuple(c for c in TRAIN_COLUMNS if c != "Survived"),
    "gender_submission": ("PassengerId", "Survived"),
}

# Rows an xlsx sheet can hold below its header row.
XLSX_MAX_ROWS = 1_048_575
# odfpy builds the whole document as Python objects: fine for a demo file,
# minutes and gigabytes for a benchmark one.
ODS_MAX_ROWS = 50_000
MAX_NAME_LENGTH = 82  # the longest name in the Kaggle files
_NULL = pa.scalar(None, type=pa.string())
# Rows converted to Python objects at a time when writing xlsx: bounds memory
# whatever the table's size.
_XLSX_BATCH_ROWS = 16_384

# Proportions measured on Kaggle's train.csv + test.csv (1,309 passengers).
_PCLASS_P = (0.2468, 0.2116, 0.5416)
_FEMALE_P = 0.356
_AGE_NULL_P = 0.20
_ADULT_AGE_SCALE = (12.0, 7.0, 5.5)
_SIBSP = (0, 1, 2, 3, 4, 5, 8)
_SIBSP_P = (0.6807, 0.2437, 0.0321, 0.0153, 0.0168, 0.0046, 0.0068)
_PARCH = (0, 1, 2, 3, 4, 5, 6)
_PARCH_P = (0.7655, 0.1299, 0.0863, 0.0061, 0.0046, 0.0046, 0.0030)
_EMBARKED = ("S", "C", "Q")
_EMBARKED_P = (0.700, 0.206, 0.094)
_EMBARKED_NULL_P = 0.002
# Share of passengers with a recorded cabin, by class: 1st class mostly,
# steerage almost never, which gives Kaggle's ~77% nulls overall.
_CABIN_P = (0.80, 0.09, 0.02)
# P(survived) by sex and class, from train.csv.
_SURVIVAL_FEMALE = (0.97, 0.92, 0.50)
_SURVIVAL_MALE = (0.37, 0.16, 0.14)
# Fares were in pounds, shillings and pence: Kaggle's decimals are whole
# pence over 240 rounded to 4 places (7.25, 7.925, 71.2833); the top fare is
# 122,959 pence.
_PENCE_PER_POUND = 240
_MAX_FARE_PENCE = 122_959
_FARE_MEDIAN = (60.0, 15.0, 8.5)
_FARE_SIGMA = (0.75, 0.45, 0.45)
_FREE_FARE_P = 0.013

_SURNAMES = (
    "Braund", "Cumings", "Heikkinen", "Futrelle", "Allen", "Moran", "McCarthy", "Palsson",
    "Johnson", "Nasser", "Sandstrom", "Bonnell", "Saundercock", "Andersson", "Vestrom",
    "Hewlett", "Rice", "Williams", "Vander Planke", "Masselmani", "Fynney", "Beesley",
    "McGowan", "Sloper", "Asplund", "Emir", "Fortune", "O'Dwyer", "Todoroff", "Uruchurtu",
    "Spencer", "Glynn", "Wheadon", "Meyer", "Holverson", "Mamee", "Cann", "Nicola-Yarred",
    "Ahlin", "Turpin", "Kraeff", "Laroche", "Devaney", "Rogers", "Lennon", "O'Driscoll",
    "Samaan", "Arnold-Franchi", "Panula", "Nosworthy", "Harper", "Faunthorpe", "Ostby",
    "Woolner", "Rugg", "Novel", "West", "Goodwin", "Sirayanian", "Icard", "Harris", "Skoog",
    "Stewart", "Moubarek", "Crease", "Kink", "Jenkin", "Hood", "Chronopoulos", "Bing",
    "Moen", "Staneff", "Moutal", "Caldwell", "Dowdell", "Waelens", "Sheerlinck", "McDermott",
    "Carrau", "Ilett", "Backstrom", "Ford", "Slocovski", "Celotti", "Christmann", "Andreasson",
    "Chaffee", "Dean", "Coxon", "Pears", "Sage", "de Mulder", "Jussila", "Mitchell",
    "Petranec", "Baumann", "Navratil", "Gilnagh", "Watt", "Goldsmith", "O'Brien", "Petroff",
    "Duff Gordon", "Brown", "Dodge", "Astor", "Widener", "Strauss", "Thayer", "Ryerson",
    "Carter", "Fleming", "Hocking", "Kelly", "Wilkes", "Myles", "Wirz", "Hirvonen",
    "Connolly", "Caldwell", "Abrahim", "Davies", "Ilieff", "Jones", "Snyder", "Howard",
    "Van Impe", "de Messemaeker", "Karaic", "Yasbeck", "Zabour", "Vande Velde", "Rothschild",
    "Frauenthal", "Lindeberg-Lind", "Penasco y Castellana", "Lefebre", "Peter", "Hakkarainen",
)  # fmt: skip
_MALE_GIVEN = (
    "Owen", "Harris", "John", "Bradley", "Jacques", "Heath", "William", "Henry", "James",
    "Timothy", "Gosta", "Leonard", "Anders", "Johan", "Eugene", "Charles", "Nicholas",
    "Oscar", "Julius", "Joseph", "Frank", "Alfred", "Ernest", "Frederick", "Thomas",
    "Albert", "Arthur", "Edward", "George", "Karl", "Nils", "Erik", "Gustaf", "Hans",
    "Patrick", "Michael", "Daniel", "Samuel", "Richard", "Robert", "Walter", "Harry",
    "Louis", "Pierre", "Jean", "Youssef", "Hanna", "Mansour", "Stefo", "Pastcho", "Ivan",
    "Jovo", "Lalio", "Vincenzo", "Giuseppe", "Emil", "Leo", "Viktor", "Edvard", "Ernst",
    "Adolf", "Wendel", "Ludvig", "Mauritz", "Hjalmar", "Tannous", "Elias", "Mathias",
    "Montague", "Cornelius", "Reginald", "Hudson", "Trevor", "Washington", "Dickinson",
)  # fmt: skip
_FEMALE_GIVEN = (
    "Florence", "Briggs", "Laina", "Lily", "May", "Elisabeth", "Vilhelmina", "Adele",
    "Marguerite", "Rut", "Elizabeth", "Hulda", "Amanda", "Adolfina", "Mary", "Emelia",
    "Maria", "Anna", "Ellen", "Katherine", "Margaret", "Helen", "Alice", "Edith", "Ada",
    "Johanna", "Bridget", "Agnes", "Selma", "Augusta", "Hilda", "Ida", "Karolina", "Signe",
    "Charlotte", "Louise", "Jane", "Sarah", "Emily", "Catherine", "Beatrice", "Ethel",
    "Mabel", "Lucy", "Noel", "Martha", "Amy", "Nora", "Bertha", "Marion", "Dorothy",
    "Eleanor", "Gertrude", "Juliette", "Marie", "Jeannie", "Latifa", "Mariana", "Shawneene",
    "Kornelia", "Wilhelmina", "Dagmar", "Virginia", "Madeleine", "Irene", "Rosa",
)  # fmt: skip
_INITIALS = tuple("ABCDEFGHJKLMNOPRSTW")
_FEMALE_NICKNAMES = (
    "Annie", "Nellie", "Katie", "Bessie", "Ruby", "Maggie", "Kate", "Nora", "Molly",
    "Minnie", "Polly", "Sadie", "Daisy", "Lizzie", "Hannah", "Jennie", "Mamie",
)  # fmt: skip
_MALE_NICKNAMES = (
    "Jack", "Bill", "Harry", "Frankie", "Charlie", "Ned", "Tom", "Willie", "Pentcho",
    "Wennerstrom", "Louis M Hoffman", "Bert", "Fred",
)  # fmt: skip
_RARE_MALE_TITLES = ("Rev", "Dr", "Col", "Major", "Capt", "Sir", "Don", "Jonkheer")
_RARE_FEMALE_TITLES = ("Ms", "Mlle", "Mme", "Lady", "Dr", "Dona", "the Countess")
_RARE_TITLE_P = 0.02
# Ticket prefixes as Kaggle spells them, with their number ranges, by class.
_TICKET_PREFIXES: tuple[tuple[tuple[str, int, int], ...], ...] = (
    (("PC", 17000, 17800), ("W.E.P.", 5700, 5740), ("WE/P", 5730, 5740), ("F.C.", 12700, 12760)),
    (
        ("C.A.", 17000, 34700),
        ("S.O.C.", 14870, 14880),
        ("SC/PARIS", 2100, 2170),
        ("F.C.C.", 13500, 13600),
        ("W./C.", 6600, 14300),
        ("SC/AH", 3080, 3090),
        ("S.O./P.P.", 700, 760),
    ),
    (
        ("A/5", 3300, 21200),
        ("A/5.", 2000, 3900),
        ("CA.", 2300, 2350),
        ("STON/O2.", 3101250, 3101300),
        ("STON/O 2.", 3101260, 3101300),
        ("SOTON/O.Q.", 3101300, 3101320),
        ("SOTON/OQ", 392080, 392100),
        ("W./C.", 6600, 14300),
        ("PP", 9540, 9560),
        ("A/4", 45380, 48900),
        ("C.A.", 2300, 37700),
    ),
)
# Plain ticket numbers by class: two typical ranges each.
_TICKET_RANGES = (
    ((110000, 113999), (11700, 36999)),
    ((230000, 250999), (2000, 29999)),
    ((310000, 383000), (2600, 9999)),
)
_TICKET_PREFIXED_P = 0.26
# Decks by class; "T" was the boat deck, one passenger in Kaggle.
_DECKS = (
    (("A", "B", "C", "D", "E", "T"), (0.09, 0.27, 0.37, 0.13, 0.135, 0.005)),
    (("D", "E", "F"), (0.25, 0.25, 0.50)),
    (("E", "F", "G"), (0.20, 0.45, 0.35)),
)
_MULTI_CABIN_P = 0.10


def generate_passengers(table: str, rows: int, seed: int = 0, start_id: int = 1) -> pa.Table:
    """``rows`` synthetic passengers with the columns and labels of Kaggle's ``table``.

    Deterministic for a given seed. Each column draws from its own random
    stream, so ``test_data`` and ``gender_submission`` made with the same
    seed describe the same passengers, and ``gender_submission``'s Survived is
    Kaggle's baseline: 1 for women, 0 for men.
    """
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}; choose one of {', '.join(TABLES)}")
    if rows < 0:
        raise ValueError("rows must be >= 0")
    streams = iter(np.random.SeedSequence(seed).spawn(16))

    def rng() -> np.random.Generator:
        return np.random.default_rng(next(streams))

    # Each column takes the next stream in a fixed order whatever the table,
    # so a column's values do not depend on which other columns were drawn.
    pclass = rng().choice(np.array([1, 2, 3], dtype=np.int64), size=rows, p=_PCLASS_P)
    female = rng().random(rows) < _FEMALE_P
    columns: dict[str, pa.Array] = {
        "PassengerId": pa.array(np.arange(start_id, start_id + rows, dtype=np.int64)),
    }
    if table == "gender_submission":
        columns["Survived"] = pa.array(female.astype(np.int64))
        return pa.table({name: columns[name] for name in TABLES[table]})

    age, age_null = _ages(rng(), pclass)
    survival_rng = rng()
    survival_p = np.where(
        female, np.array(_SURVIVAL_FEMALE)[pclass - 1], np.array(_SURVIVAL_MALE)[pclass - 1]
    )
    columns["Survived"] = pa.array((survival_rng.random(rows) < survival_p).astype(np.int64))
    columns["Pclass"] = pa.array(pclass)
    columns["Name"] = _names(rng(), female, age, age_null)
    columns["Sex"] = pa.array(np.where(female, "female", "male"), type=pa.string())
    columns["Age"] = pa.array(age, mask=age_null)
    columns["SibSp"] = pa.array(rng().choice(np.array(_SIBSP, dtype=np.int64), rows, p=_SIBSP_P))
    columns["Parch"] = pa.array(rng().choice(np.array(_PARCH, dtype=np.int64), rows, p=_PARCH_P))
    columns["Ticket"] = _tickets(rng(), pclass)
    columns["Fare"] = pa.array(_fares(rng(), pclass))
    columns["Cabin"] = _cabins(rng(), pclass)
    embarked_rng = rng()
    embarked = embarked_rng.choice(np.array(_EMBARKED), rows, p=_EMBARKED_P)
    columns["Embarked"] = pa.array(
        embarked, mask=embarked_rng.random(rows) < _EMBARKED_NULL_P, type=pa.string()
    )
    return pa.table({name: columns[name] for name in TABLES[table]})


# Rows drawn from a contract alone: a share of empty cells where allowed, and
# ranges narrow enough to look like data when the contract sets no bounds.
_NULL_P = 0.05
_DEFAULT_SPAN = 1000
_EPOCH = date(1970, 1, 1)
_DEFAULT_FIRST_DAY = date(1900, 1, 1)
_DEFAULT_LAST_DAY = date(2030, 12, 31)


def generate_rows(contract: TableContract, rows: int, seed: int = 0, start_id: int = 1) -> pa.Table:
    """``rows`` rows that the ``contract`` accepts, drawn from its types and rules.

    For a table that has no generator of its own (the Titanic tables have
    ``generate_passengers``): every value is within the type, its min/max and
    its allowed list; a one-column key counts up from ``start_id`` (or is a
    distinct text); nullable columns are sometimes empty. Deterministic per seed.
    """
    if rows < 0:
        raise ValueError("rows must be >= 0")
    streams = iter(np.random.SeedSequence(seed).spawn(len(contract.columns)))
    key = contract.primary_key[0] if len(contract.primary_key) == 1 else None
    columns = {}
    for column in contract.columns:
        rng = np.random.default_rng(next(streams))
        values = _draw(column, rows, rng, sequence=start_id if column.name == key else None)
        if column.nullable and column.name not in contract.primary_key:
            values = pc.if_else(
                pa.array(rng.random(rows) < _NULL_P), pa.scalar(None, values.type), values
            )
        columns[column.name] = values
    return pa.table(columns)


def _draw(column: Column, rows: int, rng: np.random.Generator, sequence: int | None) -> pa.Array:
    ctype, kind = column.type, column.type.kind
    target = arrow_type(ctype)
    if column.allowed:
        picked = rng.integers(0, len(column.allowed), rows)
        return pa.array([column.allowed[i] for i in picked], target)
    if kind in INTEGER_BOUNDS:
        if sequence is not None:
            return pa.array(np.arange(sequence, sequence + rows, dtype=np.int64)).cast(target)
        low, high = _bounds(column, *INTEGER_BOUNDS[kind])
        return pa.array(rng.integers(int(low), int(high) + 1, rows, dtype=np.int64)).cast(target)
    if kind in (TypeKind.DECIMAL, TypeKind.DOUBLE):
        limit = (
            float(10 ** (ctype.precision - ctype.scale)) * 0.999
            if ctype.precision is not None and ctype.scale is not None
            else float("inf")
        )
        low, high = _bounds(column, -limit, limit)
        numbers = rng.uniform(float(low), float(high), rows)
        if kind is TypeKind.DOUBLE:
            return pa.array(numbers)
        assert ctype.scale is not None
        return pc.round(pa.array(numbers), ctype.scale).cast(target)
    if kind is TypeKind.BOOLEAN:
        return pa.array(rng.random(rows) < 0.5)
    if kind in (TypeKind.DATE, TypeKind.TIMESTAMP):
        first = column.min if isinstance(column.min, date) else _DEFAULT_FIRST_DAY
        last = column.max if isinstance(column.max, date) else _DEFAULT_LAST_DAY
        days = rng.integers(_day(first), _day(last) + 1, rows, dtype=np.int64)
        if kind is TypeKind.DATE:
            return pa.array(days.astype(np.int32), pa.date32())
        seconds = days * 86_400 + rng.integers(0, 86_400, rows, dtype=np.int64)
        return pa.array(seconds * 1_000_000, pa.timestamp("us"))
    assert ctype.length is not None
    # ASCII, so the byte limit of varchar/char is the character count.
    numbers = pa.array(np.arange(rows) if sequence is not None else rng.integers(0, 10**6, rows))
    text = pc.binary_join_element_wise(column.name[:3] or "v", numbers.cast(pa.string()), "-")
    return pc.utf8_slice_codeunits(text, 0, ctype.length)


def _bounds(column: Column, low: float, high: float) -> tuple[float, float]:
    """The column's min/max within the type's range; a narrow default when unset."""
    lo = float(column.min) if isinstance(column.min, int | float | Decimal) else None
    hi = float(column.max) if isinstance(column.max, int | float | Decimal) else None
    if lo is None:
        lo = max(low, 0.0 if hi is None or hi >= 0 else hi - _DEFAULT_SPAN)
    if hi is None:
        hi = min(high, lo + _DEFAULT_SPAN)
    return max(lo, low), min(hi, high)


def _day(value: date) -> int:
    day = value.date() if isinstance(value, datetime) else value
    return (day - _EPOCH).days


def _probabilities(weights: Sequence[float]) -> np.ndarray[Any, np.dtype[np.float64]]:
    p = np.asarray(weights, dtype=np.float64)
    total = float(p.sum())
    return p / total


def _ages(
    rng: np.random.Generator, pclass: np.ndarray[Any, np.dtype[np.int64]]
) -> tuple[np.ndarray[Any, np.dtype[np.float64]], np.ndarray[Any, np.dtype[np.bool_]]]:
    rows = len(pclass)
    # Adults: right-skewed from 15 (a gamma, not a clipped normal, which
    # would pile people up at 15), older in first class, younger in steerage;
    # whole years, with the odd x.5 that Kaggle has for estimated ages.
    adult = 15.0 + rng.gamma(2.2, np.array(_ADULT_AGE_SCALE)[pclass - 1])
    age = np.rint(np.minimum(adult, 80.0)) + np.where(rng.random(rows) < 0.04, 0.5, 0.0)
    kind = rng.random(rows)
    children = kind < 0.09
    age = np.where(children, rng.integers(1, 15, rows).astype(np.float64), age)
    # Infants' ages are months over 12, rounded: 0.17, 0.42, 0.83...
    infants = kind < 0.008
    age = np.where(infants, np.round(rng.integers(2, 12, rows) / 12.0, 2), age)
    age = np.clip(age, 0.17, 80.0)
    return age, rng.random(rows) < _AGE_NULL_P


def _take(pool: Sequence[str], index: np.ndarray[Any, Any], present: Any = None) -> pa.Array:
    """``pool[index]`` as an Arrow string array, null where not ``present``."""
    indices = pa.array(index.astype(np.int32), mask=None if present is None else ~present)
    return pa.array(pool, type=pa.string()).take(indices)


def _join(*parts: Any) -> pa.Array:
    """Element-wise concatenation in which a null part counts as empty."""
    return pc.binary_join_element_wise(*parts, "", null_handling="replace", null_replacement="")


def _names(
    rng: np.random.Generator,
    female: np.ndarray[Any, np.dtype[np.bool_]],
    age: np.ndarray[Any, np.dtype[np.float64]],
    age_null: np.ndarray[Any, np.dtype[np.bool_]],
) -> pa.Array:
    """``Surname, Title. Given Names ("Nick") (Wife's Given Maiden)`` as Kaggle writes them."""
    rows = len(female)
    known_age = np.where(age_null, np.nan, age)
    draw = rng.random(rows)
    # Masters are boys; a woman of unknown age is a Mrs a bit less often.
    master = ~female & ((known_age < 13) | (np.isnan(known_age) & (draw < 0.04)))
    girl = female & (known_age < 18)
    mrs_p = np.where(np.isnan(known_age), 0.45, 0.55)
    mrs = female & ~girl & (rng.random(rows) < mrs_p)
    rare = ~master & ~girl & (rng.random(rows) < _RARE_TITLE_P)
    mrs &= ~rare

    titles = ("Mr", "Master", "Miss", "Mrs", *_RARE_MALE_TITLES, *_RARE_FEMALE_TITLES)
    title = np.select(
        [master, mrs, female & ~rare, ~female & ~rare], [1, 3, 2, 0], default=0
    ).astype(np.int32)
    rare_male = 4 + rng.integers(0, len(_RARE_MALE_TITLES), rows)
    rare_female = 4 + len(_RARE_MALE_TITLES) + rng.integers(0, len(_RARE_FEMALE_TITLES), rows)
    title = np.where(rare, np.where(female, rare_female, rare_male), title)

    # A married woman is listed under her husband's names: male given names
    # outside, hers and her maiden name in parentheses.
    male_names = ~female | mrs
    given = (*_MALE_GIVEN, *_FEMALE_GIVEN)
    given_sp = tuple(" " + g for g in given)
    initials_sp = tuple(" " + i for i in _INITIALS)
    n_male, n_female = len(_MALE_GIVEN), len(_FEMALE_GIVEN)

    def given_index() -> np.ndarray[Any, np.dtype[np.int64]]:
        return np.where(
            male_names, rng.integers(0, n_male, rows), n_male + rng.integers(0, n_female, rows)
        )

    how_many = rng.choice(np.array([1, 2, 3]), rows, p=(0.5, 0.35, 0.15))
    no_husband_name = mrs & (rng.random(rows) < 0.05)
    first = _take(given_sp, given_index(), ~no_husband_name)
    second_initial = rng.random(rows) < 0.2
    second = pc.if_else(
        pa.array(second_initial),
        _take(initials_sp, rng.integers(0, len(_INITIALS), rows)),
        _take(given_sp, given_index()),
    )
    second = pc.if_else(pa.array((how_many >= 2) & ~no_husband_name), second, _NULL)
    third = _take(given_sp, given_index(), (how_many >= 3) & ~no_husband_name)

    nick_draw = rng.random(rows)
    nick_quoted = tuple(f' "{n}"' for n in _FEMALE_NICKNAMES)
    nick_bracketed = tuple(f' ("{n}")' for n in _MALE_NICKNAMES)
    miss_nick = _take(
        nick_quoted, rng.integers(0, len(nick_quoted), rows), female & ~mrs & (nick_draw < 0.06)
    )
    man_nick = _take(
        nick_bracketed, rng.integers(0, len(nick_bracketed), rows), ~female & (nick_draw < 0.02)
    )

    maiden_present = mrs & (no_husband_name | (rng.random(rows) < 0.9))
    wife_first = _take(given_sp, n_male + rng.integers(0, n_female, rows))
    wife_second = _take(given_sp, n_male + rng.integers(0, n_female, rows), rng.random(rows) < 0.5)
    wife_nick = _take(nick_quoted, rng.integers(0, len(nick_quoted), rows), rng.random(rows) < 0.05)
    maiden_surname = _take(_SURNAMES, rng.integers(0, len(_SURNAMES), rows))
    maiden = _join(
        " (", pc.utf8_ltrim_whitespace(wife_first), wife_second, wife_nick, " ", maiden_surname, ")"
    )
    maiden = pc.if_else(pa.array(maiden_present), maiden, _NULL)

    surname = _take(_SURNAMES, rng.integers(0, len(_SURNAMES), rows))
    title_text = _take(titles, title)
    full = _join(surname, ", ", title_text, ".", first, second, third, miss_nick, man_nick, maiden)
    # Rare long combinations fall back to the short form, as Kaggle's longest
    # name is 82 characters and contracts may cap the column there.
    short = _join(surname, ", ", title_text, ".", _take(given_sp, given_index()))
    too_long = pc.greater(pc.utf8_length(full), MAX_NAME_LENGTH)
    return pc.if_else(too_long, short, full)


def _tickets(rng: np.random.Generator, pclass: np.ndarray[Any, np.dtype[np.int64]]) -> pa.Array:
    rows = len(pclass)
    low = np.empty(rows, dtype=np.int64)
    high = np.empty(rows, dtype=np.int64)
    prefixed = rng.random(rows) < _TICKET_PREFIXED_P
    which_range = rng.random(rows) < 0.6
    prefix_pool: list[str] = []
    prefix_index = np.zeros(rows, dtype=np.int64)
    for klass, (prefixes, ranges) in enumerate(zip(_TICKET_PREFIXES, _TICKET_RANGES, strict=True)):
        in_class = pclass == klass + 1
        (a_low, a_high), (b_low, b_high) = ranges
        low[in_class] = np.where(which_range[in_class], a_low, b_low)
        high[in_class] = np.where(which_range[in_class], a_high, b_high)
        chosen = rng.integers(0, len(prefixes), rows)
        with_prefix = in_class & prefixed
        prefix_index[with_prefix] = len(prefix_pool) + chosen[with_prefix]
        low[with_prefix] = np.array([p[1] for p in prefixes])[chosen[with_prefix]]
        high[with_prefix] = np.array([p[2] for p in prefixes])[chosen[with_prefix]]
        prefix_pool.extend(p[0] + " " for p in prefixes)
    numbers = pc.cast(pa.array(rng.integers(low, high + 1)), pa.string())
    return _join(_take(prefix_pool, prefix_index, prefixed), numbers)


def _fares(
    rng: np.random.Generator, pclass: np.ndarray[Any, np.dtype[np.int64]]
) -> np.ndarray[Any, np.dtype[np.float64]]:
    median = np.array(_FARE_MEDIAN)[pclass - 1]
    sigma = np.array(_FARE_SIGMA)[pclass - 1]
    pounds = median * np.exp(sigma * rng.standard_normal(len(pclass)))
    pence = np.clip(np.rint(pounds * _PENCE_PER_POUND), 0, _MAX_FARE_PENCE)
    pence = np.where(rng.random(len(pclass)) < _FREE_FARE_P, 0, pence)
    return np.round(pence / _PENCE_PER_POUND, 4)


def _cabins(rng: np.random.Generator, pclass: np.ndarray[Any, np.dtype[np.int64]]) -> pa.Array:
    rows = len(pclass)
    present = rng.random(rows) < np.array(_CABIN_P)[pclass - 1]
    deck_pool: list[str] = []
    deck = np.zeros(rows, dtype=np.int64)
    for klass, (decks, weights) in enumerate(_DECKS):
        in_class = pclass == klass + 1
        deck[in_class] = (
            len(deck_pool) + rng.choice(len(decks), rows, p=_probabilities(weights))[in_class]
        )
        deck_pool.extend(decks)
    # A family's block of cabins: same deck, numbers two or four apart
    # ("B57 B59 B63 B66"); mostly in first class.
    count = np.where(
        (pclass == 1) & (rng.random(rows) < _MULTI_CABIN_P), rng.integers(2, 5, rows), 1
    )
    number = rng.integers(1, 149, rows)
    letter = _take(deck_pool, deck)
    parts = []
    for k in range(4):
        label = _join(" " if k else "", letter, pc.cast(pa.array(number), pa.string()))
        parts.append(pc.if_else(pa.array(count > k), label, _NULL))
        number = number + rng.integers(1, 3, rows) * 2
    # Not null_handling="skip": pyarrow 26 returns a short array when one of
    # the parts is entirely null.
    joined = _join(*parts)
    return pc.if_else(pa.array(present), joined, _NULL)


def write_workbook(
    table: pa.Table,
    path: Path,
    sheet: str = "Passengers",
    progress: Callable[[int], None] | None = None,
) -> None:
    """Write ``table`` to ``path`` as .xlsx, .csv or .ods, chosen by extension.

    Numbers are written as numbers and nulls as empty cells, as a person's
    spreadsheet would hold them. ``progress`` is told the rows written so far.
    """
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        _write_xlsx(table, path, sheet, progress or (lambda _rows: None))
    elif suffix == ".csv":
        pa_csv.write_csv(table, path)
    elif suffix == ".ods":
        if table.num_rows > ODS_MAX_ROWS:
            raise ValueError(
                f"{table.num_rows:,} rows is too many for .ods (at most {ODS_MAX_ROWS:,}: "
                "odfpy writes about 1,000 rows/s and holds the document in memory); "
                "use .xlsx or .csv"
            )
        frame = table.to_pandas()
        frame.to_excel(path, engine="odf", sheet_name=sheet, index=False)
    else:
        raise ValueError(f"cannot write {path.name!r}: use .xlsx, .csv or .ods")


def _write_xlsx(table: pa.Table, path: Path, sheet: str, progress: Callable[[int], None]) -> None:
    if table.num_rows > XLSX_MAX_ROWS:
        # xlsxwriter would silently drop the rows past the sheet's end.
        raise ValueError(
            f"{table.num_rows:,} rows do not fit in an xlsx sheet "
            f"(at most {XLSX_MAX_ROWS:,} below the header)"
        )
    # xlsxwriter in constant_memory mode streams each finished row to disk:
    # about 1.3x openpyxl's write-only speed on this data (measured on 100k
    # rows), with memory independent of the row count. Text is written as
    # text: no formula, URL or number guessing on values like "=1" or "007".
    workbook = xlsxwriter.Workbook(
        str(path),
        {
            "constant_memory": True,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
            "nan_inf_to_errors": True,
        },
    )
    try:
        worksheet = workbook.add_worksheet(sheet)
        for column, name in enumerate(table.column_names):
            worksheet.write_string(0, column, name)
        # One writer per column, chosen once from the Arrow type, rather than
        # xlsxwriter's per-cell type sniffing.
        writers = [_cell_writer(worksheet, field.type) for field in table.schema]
        row_number = 1
        for batch in table.to_batches(max_chunksize=_XLSX_BATCH_ROWS):
            columns = [column.to_pylist() for column in batch.columns]
            for values in zip(*columns, strict=True):
                for column, (write, value) in enumerate(zip(writers, values, strict=True)):
                    if value is not None:
                        write(row_number, column, value)
                row_number += 1
            progress(row_number - 1)
    finally:
        workbook.close()


def _cell_writer(worksheet: Any, arrow_type: pa.DataType) -> Any:
    if pa.types.is_boolean(arrow_type):
        return worksheet.write_boolean
    if (
        pa.types.is_integer(arrow_type)
        or pa.types.is_floating(arrow_type)
        or pa.types.is_decimal(arrow_type)
    ):
        return worksheet.write_number
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return worksheet.write_string

    def write_as_text(row: int, column: int, value: object) -> int:
        return int(worksheet.write_string(row, column, str(value)))

    return write_as_text


def main(argv: list[str] | None = None) -> int:
    """``python -m devtools.sample``: synthetic rows for a configured table, in a workbook."""
    from domain.errors import ConfigurationError
    from domain.printable import printable
    from entrypoints.cli_output import TerminalProgress
    from entrypoints.containers import cli_container

    parser = argparse.ArgumentParser(
        prog="python -m devtools.sample",
        description="write synthetic rows for a configured table, drawn from its contract",
    )
    parser.add_argument("--table", default="train_data", help="any table in the config")
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--out", required=True, type=Path, metavar="FILE")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start-id", type=int, default=1, help="first key (PassengerId)")
    parser.add_argument("--config", metavar="FILE", help="config YAML (default: $DATALAKEP_CONFIG)")
    args = parser.parse_args(argv)
    if args.rows < 0:
        parser.error("--rows must be zero or more")
    try:
        contract = cli_container(args.config).catalog().get(args.table)
    except ConfigurationError as error:
        print(f"sample: {printable(error)}", file=sys.stderr)
        return 2
    progress = TerminalProgress()
    progress.start_file()
    name = str(args.out)
    progress.stage(name, None, "generating", 0, args.rows)
    if args.table in TABLES:
        # The Titanic tables' own generator: Kaggle's null ratios and awkward names.
        table = generate_passengers(args.table, args.rows, seed=args.seed, start_id=args.start_id)
    else:
        table = generate_rows(contract, args.rows, seed=args.seed, start_id=args.start_id)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    try:
        write_workbook(
            table,
            args.out,
            progress=lambda done: progress.stage(name, None, "writing", done, args.rows),
        )
    finally:
        progress.finish()
    print(f"wrote {args.rows} {args.table} rows to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
