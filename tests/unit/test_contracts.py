from __future__ import annotations

from decimal import Decimal

import pytest

from domain.contracts import Catalog, LoadMode, catalog_from_mapping, contract_from_mapping
from domain.errors import ConfigurationError
from domain.types import ColumnType, Rounding, TypeKind

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("integer", ColumnType(TypeKind.INTEGER)),
        ("INT", ColumnType(TypeKind.INTEGER)),
        ("decimal(5,2)", ColumnType(TypeKind.DECIMAL, precision=5, scale=2)),
        ("numeric( 10 , 4 )", ColumnType(TypeKind.DECIMAL, precision=10, scale=4)),
        ("varchar(82)", ColumnType(TypeKind.VARCHAR, length=82)),
        ("character varying(5)", ColumnType(TypeKind.VARCHAR, length=5)),
        ("char", ColumnType(TypeKind.CHAR, length=1)),
        ("double precision", ColumnType(TypeKind.DOUBLE)),
        ("timestamp", ColumnType(TypeKind.TIMESTAMP)),
    ],
)
def test_column_types_parse(text: str, expected: ColumnType) -> None:
    assert ColumnType.parse(text) == expected


@pytest.mark.parametrize(
    "text", ["varchar(0)", "varchar(65536)", "decimal(39,2)", "decimal(5,6)", "integer(3)", "blob"]
)
def test_invalid_column_types_are_configuration_errors(text: str) -> None:
    with pytest.raises(ConfigurationError, match=r"type|length|needs|takes"):
        ColumnType.parse(text)


def test_shipped_contracts_fit_the_kaggle_files(catalog: Catalog) -> None:
    assert [c.name for c in catalog] == ["train_data", "test_data", "gender_submission"]
    train = catalog.get("train_data")
    assert train.column_names == (
        "PassengerId", "Survived", "Pclass", "Name", "Sex", "Age",
        "SibSp", "Parch", "Ticket", "Fare", "Cabin", "Embarked",
    )  # fmt: skip
    assert catalog.get("test_data").column_names == tuple(
        c for c in train.column_names if c != "Survived"
    )
    assert train.primary_key == ("PassengerId",)
    assert train.load_mode is LoadMode.UPSERT
    assert train.column("Fare").max is None
    assert train.column("Age").min == Decimal(0)
    assert train.max_reject_ratio == 0.10


def test_a_new_table_is_yaml_only() -> None:
    catalog = catalog_from_mapping(
        {
            "cabins": {
                "primary_key": "Cabin",
                "load_mode": "replace",
                "max_reject_ratio": 0,
                "columns": [
                    {"name": "Cabin", "type": "varchar(16)", "nullable": False},
                    {"name": "Deck", "type": "char(1)", "allowed": ["A", "B"], "aliases": ["lvl"]},
                    {"name": "Opened", "type": "date", "min": "1912-01-01"},
                ],
            }
        }
    )
    cabins = catalog.get("cabins")
    assert cabins.load_mode is LoadMode.REPLACE
    assert cabins.max_reject_ratio == 0
    assert cabins.column("Deck").header_keys == {"deck", "lvl"}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"columns": []}, "no columns"),
        ({"columns": [{"name": "a", "type": "int"}], "primary_key": ["b"]}, "not a column"),
        ({"columns": [{"name": "a", "type": "int"}]}, "upsert needs a primary_key"),
        ({"columns": [{"name": "a", "type": "int"}], "primary_key": "a"}, "nullable: false"),
        ({"columns": [{"name": "a", "type": "int", "min": "x", "nullable": False}]}, "'x'"),
        ({"columns": [{"name": "a", "type": "int", "colour": 1}]}, "unknown keys"),
        ({"cols": []}, "unknown keys"),
        (
            {
                "columns": [
                    {"name": "a", "type": "int", "nullable": False},
                    {"name": "b", "type": "int", "aliases": ["A"]},
                ],
                "primary_key": "a",
            },
            "would match both",
        ),
    ],
)
def test_contract_mistakes_name_the_table(spec: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as raised:
        contract_from_mapping("t", spec)
    assert "table t" in str(raised.value)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"columns": [{"name": "a", "type": "int", "rounding": "half_up"}]}, "decimal columns"),
        ({"columns": [{"name": "a", "type": "decimal(5,2)", "rounding": "up"}]}, "half_even"),
        ({"rounding": "ceiling", "columns": [{"name": "a", "type": "decimal(5,2)"}]}, "half_up"),
        ({"columns": [{"name": "a", "type": "int", "trim": False}]}, "varchar and char"),
        ({"columns": [{"name": "a", "type": "varchar(4)", "trim": "no"}]}, "true or false"),
    ],
)
def test_rounding_and_trim_mistakes_name_the_table(spec: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as raised:
        contract_from_mapping("t", {"load_mode": "append", **spec})
    assert "table t" in str(raised.value)


def test_a_column_rounding_overrides_the_tables_and_only_decimals_take_it() -> None:
    contract = contract_from_mapping(
        "t",
        {
            "load_mode": "append",
            "rounding": "half_even",
            "columns": [
                {"name": "Age", "type": "decimal(6,2)"},
                {"name": "Fare", "type": "decimal(10,4)", "rounding": "half_up"},
                {"name": "Exact", "type": "decimal(10,4)", "rounding": None},
                {"name": "Count", "type": "integer"},
                {"name": "Code", "type": "varchar(8)", "trim": False},
            ],
        },
    )
    rounding = {c.name: c.rounding for c in contract.columns}
    assert rounding == {
        "Age": Rounding.HALF_EVEN,
        "Fare": Rounding.HALF_UP,
        "Exact": None,
        "Count": None,
        "Code": None,
    }
    assert [c.trim for c in contract.columns] == [True, True, True, True, False]


def test_without_a_rounding_setting_decimals_reject_extra_places(catalog: Catalog) -> None:
    assert {c.rounding for t in catalog for c in t.columns} == {None}


@pytest.mark.parametrize(
    ("table", "column", "message"),
    [
        ("t" * 128, "a", "table 't{128}': the name is 128 UTF-8 bytes, at most 127"),
        ("é" * 64, "a", "the name is 128 UTF-8 bytes"),
        ("t", "c" * 128, "table t, column 'c{128}': the name is 128 UTF-8 bytes"),
        ("t", "a\x00b", "table t, column 'a\\\\x00b': the name contains NUL"),
    ],
)
def test_names_no_warehouse_can_hold_stop_start_up(table: str, column: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        catalog_from_mapping(
            {table: {"load_mode": "append", "columns": [{"name": column, "type": "int"}]}}
        )


def test_a_name_of_127_utf8_bytes_is_accepted() -> None:
    name = "é" * 63 + "a"
    contract = contract_from_mapping(
        name, {"load_mode": "append", "columns": [{"name": name, "type": "int"}]}
    )
    assert contract.column_names == (name,)


def test_rounding_in_the_defaults_reaches_every_decimal_column() -> None:
    catalog = catalog_from_mapping(
        {"t": {"load_mode": "append", "columns": [{"name": "a", "type": "decimal(5,2)"}]}},
        {"rounding": "half_up"},
    )
    assert catalog.get("t").column("a").rounding is Rounding.HALF_UP
