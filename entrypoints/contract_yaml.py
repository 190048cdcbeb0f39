"""An inferred contract as config YAML, and added to a config file without rewriting it.

The config file is a person's: its comments, order and spacing are theirs, so
`contract infer --write` inserts lines of text into the ``tables`` and
``routing`` sections and never round-trips the file through a YAML dumper.
The result is parsed back and must give the inferred contract exactly, or
nothing is written.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Sequence
from pathlib import PurePosixPath

import yaml

from domain.contracts import Column, LoadMode, TableContract, contract_from_mapping
from domain.errors import ConfigurationError
from domain.inference import InferredContract
from domain.routing import RoutingRule, rules_from_config

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*( [A-Za-z0-9_.]+)*")
_YAML_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "null", "y", "n"})
_TOP_LEVEL = re.compile(r"^(?P<key>[A-Za-z_][A-Za-z0-9_]*):(?P<rest>.*)$")
_INDENT = "  "


def scalar(value: object) -> str:
    """A YAML flow scalar: plain when unambiguous, else double-quoted (JSON is valid YAML)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if _PLAIN.fullmatch(text) and text.lower() not in _YAML_WORDS:
        return text
    return json.dumps(text, ensure_ascii=False)


def _column_line(column: Column) -> str:
    parts = [f"name: {scalar(column.name)}", f"type: {scalar(str(column.type))}"]
    if not column.nullable:
        parts.append("nullable: false")
    if column.allowed is not None:
        parts.append(f"allowed: [{', '.join(json.dumps(str(v)) for v in column.allowed)}]")
    return "- {" + ", ".join(parts) + "}"


def table_lines(inferred: InferredContract, source: str) -> list[str]:
    """The table's entry under ``tables:``, indented one level."""
    contract = inferred.contract
    lines = [
        f"{scalar(contract.name)}:",
        f"{_INDENT}# inferred by `datalakep contract infer` from {source} "
        f"[sheet {inferred.sheet}], {inferred.rows:,} rows",
    ]
    if contract.primary_key:
        lines.append(f"{_INDENT}primary_key: [{', '.join(map(scalar, contract.primary_key))}]")
    if contract.load_mode is LoadMode.APPEND:
        if inferred.note:
            lines += [f"{_INDENT}# {part}" for part in textwrap.wrap(inferred.note, 80)]
        lines.append(f"{_INDENT}load_mode: append")
    lines.append(f"{_INDENT}columns:")
    lines += [f"{_INDENT * 2}{_column_line(c)}" for c in contract.columns]
    return [_INDENT + line for line in lines]


def routing_line(table: str, file_name: str, sheet: str | None) -> str:
    rule = f"file: {scalar(file_name)}"
    if sheet is not None:
        rule += f", sheet: {scalar(sheet)}"
    return f"{_INDENT}- {{{rule}, table: {scalar(table)}}}"


def add_table(
    text: str, inferred: InferredContract, source: str, sheet: str | None, where: str
) -> str:
    """``text`` (a config file) with the table and a routing rule for its file name.

    Raises ConfigurationError when the table exists or the result would not
    parse back to exactly this contract.
    """
    contract = inferred.contract
    config = yaml.safe_load(text) or {}
    if contract.name in (config.get("tables") or {}):
        raise ConfigurationError(
            f"{where} already has a table {contract.name}; choose another name with --table",
            table=contract.name,
        )
    file_name = PurePosixPath(source.replace("\\", "/")).name
    # First: rules are tried in order, and this one names the file exactly.
    rule = [routing_line(contract.name, file_name, sheet)]
    updated = _insert(text, "routing", rule, first=True)
    updated = _insert(updated, "tables", table_lines(inferred, file_name))
    _check(updated, contract, RoutingRule(contract.name, file=file_name, sheet=sheet), where)
    return updated


def _insert(text: str, section: str, lines: Sequence[str], *, first: bool = False) -> str:
    """Insert ``lines`` into the top-level block ``section:`` (at its end unless
    ``first``), or add the block at the end of the file."""
    source = text.splitlines()
    heads = [(i, m) for i, line in enumerate(source) if (m := _TOP_LEVEL.match(line))]
    found = next(((i, m) for i, m in heads if m["key"] == section), None)
    if found is None:
        tail = [] if not source or not source[-1].strip() else [""]
        return "\n".join([*source, *tail, f"{section}:", *lines]) + "\n"
    start, head = found
    rest = head["rest"].split("#", 1)[0].strip()
    if rest in ("[]", "{}", "null", "~"):
        source[start] = f"{section}:"
    elif rest:
        raise ConfigurationError(
            f"config section {section} is written inline; write it as a block to use --write"
        )
    if first:
        return "\n".join([*source[: start + 1], *lines, *source[start + 1 :]]) + "\n"
    end = start + 1
    while end < len(source) and (not source[end].strip() or source[end][0].isspace()):
        end += 1
    # Blank lines closing the block stay between it and the next section.
    while end > start + 1 and not source[end - 1].strip():
        end -= 1
    return "\n".join([*source[:end], *lines, *source[end:]]) + "\n"


def _check(text: str, contract: TableContract, rule: RoutingRule, where: str) -> None:
    config = yaml.safe_load(text)
    written = contract_from_mapping(contract.name, config["tables"][contract.name])
    if written != contract or rule not in rules_from_config(config.get("routing")):
        raise ConfigurationError(
            f"could not add table {contract.name} to {where} faithfully; nothing was written"
        )
