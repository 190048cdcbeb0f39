"""The Redshift-only statements, parsed back with sqlglot's Redshift dialect.

PostgreSQL (behind the test proxy) runs everything else the adapter sends; these
are the statements only Redshift can run, so here they are read back instead.
sqlglot 30 parses DISTSTYLE/DISTKEY/SORTKEY and COPY … FORMAT AS PARQUET, but not
ENCODE AUTO or LOCK (it falls back to an opaque Command), so those two are checked
as text.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
import sqlglot
from sqlglot import exp

from domain.contracts import Column, LoadMode, TableContract
from domain.errors import ConfigurationError
from domain.types import ColumnType
from infrastructure.warehouse.sql import ddl, merge
from infrastructure.warehouse.sql import redshift as redshift_sql
from infrastructure.warehouse.sql.dialect import REDSHIFT

pytestmark = pytest.mark.unit

ROLE = "arn:aws:iam::123456789012:role/datalakep-copy"
HOSTILE = 'x"; DROP TABLE t;--'


def col(name: str, type_: str, nullable: bool = True) -> Column:
    return Column(name, ColumnType.parse(type_), nullable=nullable)


def contract(
    options: dict[str, Any] | None = None,
    name: str = "people",
    columns: tuple[Column, ...] | None = None,
    mode: LoadMode = LoadMode.UPSERT,
) -> TableContract:
    return TableContract(
        name,
        columns or (col("id", "integer", False), col("Name", "varchar(50)"), col("day", "date")),
        ("id",),
        mode,
        options={"redshift": options} if options is not None else {},
    )


def parse(statement: str) -> exp.Expr:
    [tree] = sqlglot.parse(statement, read="redshift")
    assert tree is not None
    return tree


def properties(tree: exp.Expr) -> dict[str, exp.Expr]:
    props = tree.args["properties"]
    return {type(p).__name__: p for p in props.expressions}


# ---------------------------------------------------------------- CREATE TABLE


def test_create_table_carries_diststyle_distkey_sortkey_and_encode_auto() -> None:
    options = {"diststyle": "key", "distkey": "id", "sortkey": ["day", "id"], "encode_auto": True}
    statement = redshift_sql.create_table_sql(contract(options))

    # sqlglot cannot parse ENCODE AUTO: check it is the last clause, parse the rest.
    assert statement.endswith(" ENCODE AUTO")
    tree = parse(statement.removesuffix(" ENCODE AUTO"))

    assert isinstance(tree, exp.Create)
    assert tree.args["exists"]
    assert tree.this.this.name == "people"
    defs = {c.name: c for c in tree.this.expressions if isinstance(c, exp.ColumnDef)}
    assert list(defs) == ["id", "Name", "day", "_load_id", "_loaded_at"]
    assert defs["Name"].args["kind"].sql("redshift") == "VARCHAR(50)"
    assert defs["id"].find(exp.NotNullColumnConstraint) is not None
    assert defs["day"].find(exp.NotNullColumnConstraint) is None
    [key] = [c for c in tree.this.expressions if isinstance(c, exp.PrimaryKey)]
    assert [e.name for e in key.expressions] == ["id"]
    props = properties(tree)
    assert props["DistStyleProperty"].this.name == "KEY"
    assert props["DistKeyProperty"].this.name == "id"
    assert [i.name for i in props["SortKeyProperty"].this] == ["day", "id"]


def test_a_distkey_alone_implies_diststyle_key_and_names_are_the_contracts() -> None:
    statement = redshift_sql.create_table_sql(contract({"distkey": "ID", "sortkey": "name"}))

    props = properties(parse(statement))

    assert props["DistStyleProperty"].this.name == "KEY"
    assert props["DistKeyProperty"].this.name == "id"  # the contract's spelling
    assert [i.name for i in props["SortKeyProperty"].this] == ["Name"]


def test_lineage_columns_may_be_sort_keys() -> None:
    statement = redshift_sql.create_table_sql(contract({"sortkey": ["_loaded_at"]}))

    assert [i.name for i in properties(parse(statement))["SortKeyProperty"].this] == ["_loaded_at"]


@pytest.mark.parametrize("disabled", [True, False])
def test_without_options_or_with_them_switched_off_it_is_the_shared_ddl(disabled: bool) -> None:
    table = contract({"diststyle": "even"}) if disabled else contract()

    statement = redshift_sql.create_table_sql(table, with_options=not disabled)

    assert statement == ddl.create_table_sql(table, REDSHIFT)


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        ({"distkey": HOSTILE}, "is not a column"),
        ({"sortkey": ["id", "nope"]}, "is not a column"),
        ({"sortkey": ["id", "id"]}, "duplicate"),
        ({"sortkey": 3}, "a column or a list"),
        ({"diststyle": "even", "distkey": "id"}, "needs diststyle KEY"),
        ({"diststyle": "key"}, "needs a distkey"),
        ({"diststyle": "random"}, "must be one of"),
        ({"encode_auto": "yes"}, "true or false"),
        ({"interleaved": True}, "unknown keys"),
    ],
)
def test_table_options_are_checked_against_the_contract(
    options: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(ConfigurationError, match=complaint):
        redshift_sql.create_table_sql(contract(options))


# ---------------------------------------------------------------- staging and INSERT


def test_the_staging_table_is_temporary_with_the_contract_columns_only() -> None:
    tree = parse(redshift_sql.staging_table_sql(contract(), "datalakep_staging_1"))

    assert isinstance(tree, exp.Create)
    assert "TemporaryProperty" in properties(tree)
    defs = [c for c in tree.this.expressions if isinstance(c, exp.ColumnDef)]
    assert [d.name for d in defs] == ["id", "Name", "day"]  # no lineage, contract order
    assert [d.args["kind"].sql("redshift") for d in defs] == ["INTEGER", "VARCHAR(50)", "DATE"]


def test_multi_row_insert_binds_one_placeholder_per_value() -> None:
    tree = parse(redshift_sql.insert_values_sql("s", ["id", "Name", HOSTILE], 3))

    assert isinstance(tree, exp.Insert)
    assert [i.name for i in tree.this.expressions] == ["id", "Name", HOSTILE]
    rows = tree.expression.expressions
    assert len(rows) == 3
    assert all(len(r.expressions) == 3 for r in rows)
    assert all(isinstance(v, exp.Placeholder) for r in rows for v in r.expressions)


@pytest.mark.parametrize(("columns", "rows"), [(12, 1000), (100, 327), (40000, 1)])
def test_a_batch_never_binds_more_than_32767_values(columns: int, rows: int) -> None:
    assert redshift_sql.batch_rows(columns) == rows


# ---------------------------------------------------------------- COPY and LOCK


def test_copy_loads_parquet_from_s3_with_the_iam_role() -> None:
    uri = "s3://staging-bucket/datalakep-staging/0f1e.parquet"
    tree = parse(redshift_sql.copy_parquet_sql("datalakep_staging_1", uri, ROLE))

    assert isinstance(tree, exp.Copy)
    assert tree.this.name == "datalakep_staging_1"
    assert [f.this for f in tree.args["files"]] == [uri]
    assert tree.args["credentials"].args["iam_role"].this == ROLE
    [param] = tree.args["params"]
    assert (param.this.name, param.expression.name) == ("FORMAT", "PARQUET")
    assert "FORMAT AS PARQUET" in redshift_sql.copy_parquet_sql("s", uri, ROLE)


@pytest.mark.parametrize(
    ("uri", "role"),
    [
        ("s3://b/k'; DROP TABLE t;--", ROLE),  # quotes are doubled, so this one is fine
        ("s3://b/k\\", ROLE),
        ("s3://b/k\n", ROLE),
        ("https://b/k", ROLE),
        ("s3://b/k", "arn:aws:iam::123:role/short-account"),
        ("s3://b/k", ROLE + "' CREDENTIALS 'x"),
    ],
)
def test_copy_refuses_what_could_escape_its_strings(uri: str, role: str) -> None:
    if "DROP" in uri:
        tree = parse(redshift_sql.copy_parquet_sql("s", uri, role))
        assert [f.this for f in tree.args["files"]] == [uri]
        return
    with pytest.raises(ConfigurationError):
        redshift_sql.copy_parquet_sql("s", uri, role)


def test_lock_and_drop_quote_their_table() -> None:
    # sqlglot keeps LOCK as an opaque command: check its text.
    assert redshift_sql.lock_sql("My Ledger") == 'LOCK "My Ledger"'
    drop = parse(redshift_sql.drop_table_sql(HOSTILE))
    assert isinstance(drop, exp.Drop)
    assert drop.args["exists"]
    assert drop.find(exp.Table).name == HOSTILE  # type: ignore[union-attr]


# ---------------------------------------------------------------- merge and keys


def test_the_shared_merge_parses_as_redshift() -> None:
    lineage = merge.Lineage("load-1", datetime(2026, 1, 1))

    delete, insert = merge.merge_statements(contract(), "stage", lineage, REDSHIFT)

    deleted = parse(delete[0])
    assert isinstance(deleted, exp.Delete)
    assert deleted.this.name == "people"
    assert [t.name for t in deleted.args["using"]] == ["stage"]
    inserted = parse(insert[0])
    assert isinstance(inserted, exp.Insert)
    assert [i.name for i in inserted.this.expressions][-2:] == ["_load_id", "_loaded_at"]
    assert len(list(inserted.find_all(exp.Placeholder))) == 2 == len(insert[1])


def test_key_checks_look_in_append_mode_for_keys_already_loaded() -> None:
    # A key repeated within the rows is refused in Arrow before staging
    # (test_warehouse_behaviour); only the table's keys need a query.
    append = merge.key_checks(contract(mode=LoadMode.APPEND), "stage", REDSHIFT)
    keyless = TableContract("t", (col("a", "integer"),), (), LoadMode.APPEND)

    assert merge.key_checks(contract(), "stage", REDSHIFT) == ()
    assert merge.key_checks(contract(mode=LoadMode.REPLACE), "stage", REDSHIFT) == ()
    assert merge.key_checks(keyless, "stage", REDSHIFT) == ()
    ((problem, query),) = append
    assert problem == "a key is already in the table"
    joined = parse(query)
    assert [t.name for t in joined.find_all(exp.Table)] == ["people", "stage"]


# ---------------------------------------------------------------- identifiers

MULTIBYTE_127 = "é" * 63 + "a"  # 64 characters, 127 UTF-8 bytes
MULTIBYTE_128 = "é" * 64  # 64 characters, 128 UTF-8 bytes


@pytest.mark.parametrize(
    "name", ["select", "user", "order", "Mixed Case", HOSTILE, MULTIBYTE_127, 'say "hi"']
)
def test_any_valid_name_is_one_quoted_identifier_everywhere(name: str) -> None:
    table = TableContract(name, (col(name, "integer", False), col("v", "varchar(5)")), (name,))
    options = {"redshift": {"distkey": name, "sortkey": [name]}}
    table = TableContract(table.name, table.columns, table.primary_key, options=options)
    appended = TableContract(table.name, table.columns, table.primary_key, LoadMode.APPEND)
    statements = [
        redshift_sql.create_table_sql(table),
        redshift_sql.staging_table_sql(table, name),
        redshift_sql.insert_values_sql(name, [name, "v"], 2),
        redshift_sql.copy_parquet_sql(name, "s3://b/k.parquet", ROLE),
        redshift_sql.drop_table_sql(name),
        *(q for _, q in merge.key_checks(appended, "stage", REDSHIFT)),
    ]

    for statement in statements:
        assert len(sqlglot.parse(statement, read="redshift")) == 1  # no second statement
        tree = parse(statement)
        names = {i.name for i in tree.find_all(exp.Identifier)}
        assert name in names


def test_a_128_byte_name_is_refused_before_any_sql_is_built() -> None:
    with pytest.raises(ConfigurationError, match="128 UTF-8 bytes"):
        redshift_sql.staging_table_sql(contract(), MULTIBYTE_128)
    with pytest.raises(ConfigurationError, match="128 UTF-8 bytes"):
        redshift_sql.create_table_sql(contract(name=MULTIBYTE_128))
    with pytest.raises(ConfigurationError, match="128 UTF-8 bytes"):
        redshift_sql.lock_sql("a" * 128)
    assert redshift_sql.lock_sql("a" * 127) == f'LOCK "{"a" * 127}"'


def test_literals_double_quotes_and_refuse_escapes() -> None:
    assert redshift_sql.literal("it's") == "'it''s'"
    for bad in ("a\\b", "a\x00b", "a\rb", "a\x7fb"):
        with pytest.raises(ConfigurationError):
            redshift_sql.literal(bad)
