"""The statements only Redshift runs: table attributes, staging, COPY, LOCK.

Everything the three engines share (DDL body, merge, ledger, drift) stays in
:mod:`infrastructure.warehouse.sql`; this module only adds around it. Identifiers
go through :func:`dialect.quote_ident`; the two literals COPY needs (S3 URI, IAM role)
go through :func:`literal`, which refuses what could end or escape the string.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from domain.contracts import TableContract
from domain.errors import ConfigurationError
from infrastructure.warehouse.sql import ddl
from infrastructure.warehouse.sql.dialect import REDSHIFT, quote_ident

DISTSTYLES = ("AUTO", "EVEN", "KEY", "ALL")
TABLE_OPTION_KEYS = frozenset({"diststyle", "distkey", "sortkey", "encode_auto"})
# A Bind message counts its parameters in an Int16.
MAX_BIND_PARAMETERS = 32767
INSERT_BATCH_ROWS = 1000
_MAX_SORTKEY_COLUMNS = 400  # Redshift's limit for a compound sort key


@dataclass(frozen=True)
class TableOptions:
    diststyle: str | None = None
    distkey: str | None = None
    sortkey: tuple[str, ...] = ()
    encode_auto: bool = False

    @property
    def sql(self) -> str:
        parts = []
        if self.diststyle:
            parts.append(f"DISTSTYLE {self.diststyle}")
        if self.distkey:
            parts.append(f"DISTKEY ({quote_ident(self.distkey)})")
        if self.sortkey:
            parts.append(f"SORTKEY ({', '.join(quote_ident(c) for c in self.sortkey)})")
        if self.encode_auto:
            parts.append("ENCODE AUTO")
        return " ".join(parts)


def table_options(contract: TableContract) -> TableOptions:
    """The contract's ``options.redshift`` mapping, checked against its own columns.

    Column names are taken from the contract (with its spelling), never from the
    mapping, so configuration can only name columns the table really has.
    """
    raw = contract.options.get("redshift")
    if raw is None:
        return TableOptions()
    table = contract.name
    if not isinstance(raw, Mapping):
        raise _bad(table, "options.redshift must be a mapping")
    unknown = sorted(set(raw) - TABLE_OPTION_KEYS)
    if unknown:
        raise _bad(table, f"options.redshift: unknown keys {unknown}")
    columns = {c.name.casefold(): c.name for c in ddl.table_columns(contract)}

    def column(value: Any, what: str) -> str:
        if not isinstance(value, str) or value.casefold() not in columns:
            raise _bad(table, f"options.redshift.{what}: {value!r} is not a column of the table")
        return columns[value.casefold()]

    distkey = None if raw.get("distkey") is None else column(raw["distkey"], "distkey")
    diststyle = _diststyle(table, raw.get("diststyle"), distkey)
    sortkey_raw = raw.get("sortkey") or ()
    if isinstance(sortkey_raw, str):
        sortkey_raw = (sortkey_raw,)
    if not isinstance(sortkey_raw, Sequence):
        raise _bad(table, "options.redshift.sortkey must be a column or a list of columns")
    sortkey = tuple(column(v, "sortkey") for v in sortkey_raw)
    if len(set(sortkey)) != len(sortkey) or len(sortkey) > _MAX_SORTKEY_COLUMNS:
        raise _bad(table, "options.redshift.sortkey: duplicate columns or more than 400")
    encode_auto = raw.get("encode_auto", False)
    if not isinstance(encode_auto, bool):
        raise _bad(table, "options.redshift.encode_auto must be true or false")
    return TableOptions(diststyle, distkey, sortkey, encode_auto)


def _diststyle(table: str, diststyle: Any, distkey: str | None) -> str | None:
    """The distribution style, ``KEY`` exactly when a distkey is given."""
    if diststyle is not None:
        if not isinstance(diststyle, str) or diststyle.upper() not in DISTSTYLES:
            raise _bad(table, f"options.redshift.diststyle must be one of {list(DISTSTYLES)}")
        diststyle = diststyle.upper()
    if distkey is not None and diststyle not in (None, "KEY"):
        raise _bad(table, f"options.redshift: distkey needs diststyle KEY, not {diststyle}")
    if diststyle == "KEY" and distkey is None:
        raise _bad(table, "options.redshift: diststyle KEY needs a distkey")
    return "KEY" if distkey is not None else diststyle


def _bad(table: str, message: str) -> ConfigurationError:
    return ConfigurationError(f"table {table}: {message}", table=table)


# ---------------------------------------------------------------- DDL


def create_table_sql(contract: TableContract, with_options: bool = True) -> str:
    """The shared CREATE TABLE, followed by the contract's Redshift table attributes."""
    statement = ddl.create_table_sql(contract, REDSHIFT)
    attributes = table_options(contract).sql if with_options else ""
    return f"{statement} {attributes}" if attributes else statement


def staging_table_sql(contract: TableContract, staging: str) -> str:
    """A session temp table with the contract's columns only, in contract order.

    Not ``LIKE target``: that would copy the NOT NULL lineage columns, which
    neither the INSERTs nor a Parquet COPY (which maps columns by position) fill.
    """
    columns = ",\n    ".join(f"{quote_ident(c.name)} {c.type.sql}" for c in contract.columns)
    return f"CREATE TEMP TABLE {quote_ident(staging)} (\n    {columns}\n)"


def drop_table_sql(table: str) -> str:
    return f"DROP TABLE IF EXISTS {quote_ident(table)}"


def lock_sql(table: str) -> str:
    """Redshift has no advisory locks; an exclusive table lock serialises loads."""
    return f"LOCK {quote_ident(table)}"


# ---------------------------------------------------------------- small loads


def batch_rows(column_count: int, preferred: int = INSERT_BATCH_ROWS) -> int:
    """Rows per multi-row INSERT, so that one statement never binds too many values."""
    return max(1, min(preferred, MAX_BIND_PARAMETERS // max(1, column_count)))


def insert_values_sql(table: str, columns: Sequence[str], rows: int) -> str:
    """``INSERT INTO t (cols) VALUES (%s, …), …`` for ``rows`` rows."""
    if rows < 1:
        raise ValueError("an INSERT needs at least one row")
    marks = "(" + ", ".join(REDSHIFT.placeholder for _ in columns) + ")"
    listed = ", ".join(quote_ident(c) for c in columns)
    return f"INSERT INTO {quote_ident(table)} ({listed}) VALUES " + ", ".join([marks] * rows)


# ---------------------------------------------------------------- large loads

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IAM_ROLE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")


def literal(value: str) -> str:
    """A single-quoted SQL string; refuses backslashes and control characters.

    Redshift reads backslash escapes inside COPY's strings, so rather than
    guessing how it would read one, values that contain one are refused.
    """
    if "\\" in value or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ConfigurationError(f"refusing to quote {value!r}: backslash or control character")
    return "'" + value.replace("'", "''") + "'"


def check_bucket(bucket: str) -> str:
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise ConfigurationError(f"staging bucket {bucket!r} is not a valid S3 bucket name")
    return bucket


def check_iam_role(role: str) -> str:
    # Chained roles are comma-separated ARNs, as COPY's IAM_ROLE accepts them.
    if not all(_IAM_ROLE.match(part) for part in role.split(",")):
        raise ConfigurationError(f"staging IAM role {role!r} is not an IAM role ARN")
    return role


def copy_parquet_sql(table: str, s3_uri: str, iam_role: str) -> str:
    """Load one staged Parquet object; its columns map to the table's by position.

    ``s3_uri`` is a key prefix to COPY; the staging keys are unique, so it names
    exactly one object. No REGION: COPY of Parquet refuses it, and needs the bucket
    in the cluster's region.
    """
    if not s3_uri.startswith("s3://"):
        raise ConfigurationError(f"COPY source {s3_uri!r} is not an s3:// URI")
    return (
        f"COPY {quote_ident(table)} FROM {literal(s3_uri)} "
        f"IAM_ROLE {literal(check_iam_role(iam_role))} FORMAT AS PARQUET"
    )
