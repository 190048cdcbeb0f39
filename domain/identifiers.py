"""What a contract may name a table or column: a name every warehouse can hold.

Table and column names become SQL identifiers. Checking them when the YAML is
loaded stops start-up with the table and column at fault, instead of failing
every file that reaches that table at load time.
"""

from __future__ import annotations

# Redshift's limit, the strictest of the engines after PostgreSQL's 63 (which the
# SQL dialect carries and checks itself).
MAX_IDENTIFIER_BYTES = 127


def identifier_problem(name: str) -> str | None:
    """Why ``name`` cannot be an identifier, or None when it can."""
    if not name:
        return "is empty"
    if "\x00" in name:
        return "contains NUL"
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return "is not valid Unicode"
    if size > MAX_IDENTIFIER_BYTES:
        return f"is {size} UTF-8 bytes, at most {MAX_IDENTIFIER_BYTES} allowed"
    return None
