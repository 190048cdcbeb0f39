"""What differs between the SQL engines, and the one place identifiers are quoted.

Identifiers are quoted here and nowhere else, so a name from a contract can never
change a statement's meaning. The statements are written once in the SQL the three
engines share; what differs between them is data in :class:`Dialect`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from domain.errors import ConfigurationError
from domain.identifiers import MAX_IDENTIFIER_BYTES, identifier_problem

Params = tuple[Any, ...]

Statement = tuple[str, Params]


@dataclass(frozen=True)
class Dialect:
    name: str
    placeholder: str  # the driver's paramstyle marker
    max_identifier_bytes: int  # PostgreSQL truncates longer names silently
    case_sensitive_identifiers: bool  # DuckDB and Redshift match quoted names in any case
    reports_text_length: bool  # DuckDB keeps no varchar/char length in its catalog
    char_reported_as_varchar: bool  # DuckDB stores CHAR(n) as VARCHAR
    # The server stamps _loaded_at itself when a bulk load leaves it out: parsing a
    # timestamp per row out of COPY's CSV costs PostgreSQL ~0.45 s per million rows.
    loaded_at_default: str | None = None
    # Redshift's ALTER TABLE ... ADD COLUMN has no IF NOT EXISTS.
    add_column_if_not_exists: bool = True
    # The contract's key declared in the table. Not in DuckDB: it enforces a key with
    # an ART index, which made a million-row load 1.5x slower and an upsert of it 3.7x
    # (each key deleted and inserted again); the load refuses what it would (a key
    # repeated in the rows, in Arrow; in append mode one already in the table,
    # merge.key_checks), as it does for Redshift, which declares the key and never
    # checks it.
    declares_primary_key: bool = True


DUCKDB = Dialect(
    "duckdb", "?", MAX_IDENTIFIER_BYTES, False, False, True, declares_primary_key=False
)

POSTGRES = Dialect(
    "postgres", "%s", 63, True, True, False, loaded_at_default="(now() AT TIME ZONE 'UTC')"
)

REDSHIFT = Dialect(
    "redshift", "%s", MAX_IDENTIFIER_BYTES, False, True, False, add_column_if_not_exists=False
)


def quote_ident(name: str) -> str:
    """``name`` as a double-quoted identifier, exactly as written (never case-folded)."""
    problem = identifier_problem(name) if isinstance(name, str) else "is not text"
    if problem is not None:
        raise ConfigurationError(f"invalid SQL identifier {name!r}: {problem}", identifier=name)
    return '"' + name.replace('"', '""') + '"'


def quote(name: str, dialect: Dialect) -> str:
    """``name`` quoted, and refused when longer than ``dialect`` keeps names."""
    quoted = quote_ident(name)
    size = len(name.encode("utf-8"))
    if size > dialect.max_identifier_bytes:
        raise ConfigurationError(
            f"invalid SQL identifier {name!r}: {size} UTF-8 bytes, {dialect.name} allows "
            f"{dialect.max_identifier_bytes}",
            identifier=name,
        )
    return quoted


_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")


def escape_percent(statement: str) -> str:
    """``statement`` for a driver with ``%s`` parameters: each ``%`` quoted in it doubled.

    A name such as ``100%`` is legal in a quoted identifier, but psycopg would read its
    ``%`` as the start of a placeholder. Run only statements that are given parameters
    through this; without parameters the driver sends the text untouched.
    """
    return _QUOTED.sub(lambda m: m.group(0).replace("%", "%%"), statement)
