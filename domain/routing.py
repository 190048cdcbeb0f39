"""Which table a sheet belongs to, and which of its rows is the header.

Routing is deliberately strict: a configured rule wins, otherwise the header
must match exactly one contract (names or aliases, any order, case and
surrounding spaces ignored). Anything else is rejected, naming the closest
contract and what differs, because loading into a guessed table is worse
than not loading at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import PurePosixPath
from typing import Any

from domain.contracts import Catalog, TableContract, normalize_header
from domain.errors import ConfigurationError, UnroutableSheetError
from domain.rejects import (
    EARLIER_REPORT_SUMMARY_LABELS,
    REPORT_ERRORS_COLUMN,
    REPORT_ROW_COLUMN,
    REPORT_SUMMARY_LABELS,
    REPORT_SUMMARY_SHEET,
)
from domain.sheet import SheetPreview

# The rejects workbook's helper columns: a fixed report routes and loads like
# the original sheet, these columns carrying nothing to load.
REPORT_HELPER_COLUMNS = frozenset(
    normalize_header(c) for c in (REPORT_ROW_COLUMN, REPORT_ERRORS_COLUMN)
)


@dataclass(frozen=True)
class RoutingRule:
    table: str | None  # None only for an ignore rule
    file: str | None = None  # glob on the file name
    key: str | None = None  # glob on the object key or path
    sheet: str | None = None  # glob on the sheet name
    # The matching sheets hold no data for any table (notes, instructions): they
    # are reported as ignored, neither routed nor refused.
    ignore: bool = False

    def matches(self, uri: str, sheet: str) -> bool:
        key = _key_of(uri)
        name = PurePosixPath(key).name
        return (
            (self.file is None or fnmatchcase(name.casefold(), self.file.casefold()))
            and (self.key is None or fnmatchcase(key.casefold(), self.key.casefold()))
            and (self.sheet is None or fnmatchcase(sheet.casefold(), self.sheet.casefold()))
        )


@dataclass(frozen=True)
class HeaderMatch:
    contract: TableContract
    # positions[i] is the sheet column holding contract.columns[i]
    positions: tuple[int, ...]
    missing: tuple[str, ...]
    extra: tuple[str, ...]
    duplicated: tuple[str, ...]

    @property
    def exact(self) -> bool:
        return not (self.missing or self.extra or self.duplicated)

    @property
    def score(self) -> float:
        matched = len(self.contract.columns) - len(self.missing)
        return matched / (len(self.contract.columns) + len(self.extra) + len(self.duplicated))


@dataclass(frozen=True)
class RouteDecision:
    sheet: str
    contract: TableContract
    header_row: int  # as the spreadsheet shows it (1-based)
    header: tuple[str, ...]
    positions: tuple[int, ...]
    rule: RoutingRule | None


def match_header(contract: TableContract, labels: Sequence[str | None]) -> HeaderMatch:
    index = contract.header_index()
    found: dict[str, int] = {}
    extra: list[str] = []
    duplicated: list[str] = []
    occurrences: dict[str, int] = {}
    for position, label in enumerate(labels):
        if label is None or not str(label).strip():
            continue  # unnamed columns (trailing blanks, spacers) carry nothing to load
        key = normalize_header(label)
        if key in REPORT_HELPER_COLUMNS and key not in index:
            continue
        occurrences[key] = occurrences.get(key, 0) + 1
        copy = f"{key}_{occurrences[key]}"
        if occurrences[key] > 1 and copy in index:
            key = copy  # a repeated label's n-th copy is the contract's "<label>_<n>"
        column = index.get(key)
        if column is None:
            extra.append(str(label).strip())
        elif column in found:
            duplicated.append(str(label).strip())
        else:
            found[column] = position
    missing = tuple(c for c in contract.column_names if c not in found)
    positions = tuple(found.get(c, -1) for c in contract.column_names)
    return HeaderMatch(contract, positions, missing, tuple(extra), tuple(duplicated))


class Router:
    def __init__(self, catalog: Catalog, rules: Sequence[RoutingRule] = ()) -> None:
        for rule in rules:
            if rule.table is not None:
                catalog.get(rule.table)  # fail at start-up on a rule naming an unknown table
        self._catalog = catalog
        self._rules = tuple(rules)

    @property
    def catalog(self) -> Catalog:
        return self._catalog

    def ignores(self, uri: str, sheet: str) -> bool:
        """Whether the first rule matching this sheet is an ignore rule."""
        rule = self._rule(uri, sheet)
        return rule is not None and rule.ignore

    def route(self, uri: str, preview: SheetPreview) -> RouteDecision:
        """The table ``preview``'s sheet belongs to; never called for an ignored sheet."""
        rule = self._rule(uri, preview.name)
        if rule is None:
            candidates = list(self._catalog)
        elif rule.table is None:
            raise ValueError(f"{_where(uri, preview.name)} is ignored by {rule}, not routed")
        else:
            candidates = [self._catalog.get(rule.table)]
        best: tuple[HeaderMatch, int] | None = None
        for offset, row in enumerate(preview.rows):
            if not any(cell is not None and str(cell).strip() for cell in row):
                continue
            matches = [match_header(c, row) for c in candidates]
            exact = [m for m in matches if m.exact]
            row_number = preview.first_row + offset
            if len(exact) == 1:
                m = exact[0]
                return RouteDecision(
                    preview.name,
                    m.contract,
                    row_number,
                    tuple(_label(x) for x in row),
                    m.positions,
                    rule,
                )
            if len(exact) > 1:
                raise UnroutableSheetError(
                    f"{_where(uri, preview.name)}: header in row {row_number} matches "
                    f"several tables ({', '.join(m.contract.name for m in exact)}); "
                    "add a routing rule",
                    source=uri,
                    sheet=preview.name,
                    row=row_number,
                    candidates=[m.contract.name for m in exact],
                )
            top = max(matches, key=lambda m: m.score)
            if best is None or top.score > best[0].score:
                best = (top, row_number)
        raise _unroutable(uri, preview, best, rule)

    def _rule(self, uri: str, sheet: str) -> RoutingRule | None:
        return next((r for r in self._rules if r.matches(uri, sheet)), None)


def _unroutable(
    uri: str, preview: SheetPreview, best: tuple[HeaderMatch, int] | None, rule: RoutingRule | None
) -> UnroutableSheetError:
    sheet = preview.name
    where = _where(uri, sheet)
    if best is None:
        last = preview.first_row + len(preview.rows) - 1
        return UnroutableSheetError(
            f"{where}: no header row found in rows {preview.first_row}-{last}, which are blank "
            "(ingest.header_search_rows sets how far down a header may sit)",
            source=uri,
            sheet=sheet,
        )
    match, row = best
    parts = []
    if match.missing:
        parts.append(f"missing columns {', '.join(match.missing)}")
    if match.extra:
        parts.append(f"extra columns {', '.join(match.extra)}")
    if match.duplicated:
        parts.append(f"repeated columns {', '.join(match.duplicated)}")
    how = f"routing rule sends it to {match.contract.name}" if rule else "no table matches"
    return UnroutableSheetError(
        f"{where}: {how}; closest table {match.contract.name} (header row {row}): "
        + "; ".join(parts),
        source=uri,
        sheet=sheet,
        row=row,
        closest=match.contract.name,
        missing=list(match.missing),
        extra=list(match.extra),
        duplicated=list(match.duplicated),
    )


def is_report_only_sheet(preview: SheetPreview) -> bool:
    """True for a rejects workbook's sheet that holds no rows to load.

    That is its summary sheet (named ``summary``, labels Source, Version and
    Report id, Load id in earlier reports, down column A) and the sheet of a
    refused sheet, whose header is the helper columns alone. Uploading a fixed
    report must not refuse them.
    """
    rows = [r for r in preview.rows if any(c is not None and str(c).strip() for c in r)]
    if not rows:
        return False
    if preview.name.casefold() == REPORT_SUMMARY_SHEET:
        firsts = tuple(_label(r[0]) if r else "" for r in rows[: len(REPORT_SUMMARY_LABELS)])
        if firsts in (REPORT_SUMMARY_LABELS, *EARLIER_REPORT_SUMMARY_LABELS):
            return True
    labels = {normalize_header(c) for c in rows[0] if c is not None and str(c).strip()}
    return labels <= REPORT_HELPER_COLUMNS


def rules_from_config(items: Sequence[Mapping[str, Any]] | None) -> tuple[RoutingRule, ...]:
    rules = []
    for item in items or ():
        unknown = set(item) - {"table", "file", "key", "sheet", "ignore"}
        if unknown:
            raise ConfigurationError(f"routing rule {dict(item)}: unknown keys {sorted(unknown)}")
        ignore = item.get("ignore", False)
        if not isinstance(ignore, bool):
            raise ConfigurationError(f"routing rule {dict(item)}: ignore must be true or false")
        if ignore == ("table" in item):
            raise ConfigurationError(
                f"routing rule {dict(item)}: "
                + ("names a table and ignore: true" if ignore else "names no table")
                + "; a rule either sends sheets to a table or ignores them"
            )
        rules.append(
            RoutingRule(
                table=_opt(item.get("table")),
                file=_opt(item.get("file")),
                key=_opt(item.get("key")),
                sheet=_opt(item.get("sheet")),
                ignore=ignore,
            )
        )
    return tuple(rules)


def _opt(value: Any) -> str | None:
    return None if value is None else str(value)


def _label(cell: str | None) -> str:
    return "" if cell is None else str(cell).strip()


def _key_of(uri: str) -> str:
    if uri.startswith("s3://"):
        return uri[5:].split("/", 1)[-1]
    return uri.split("://", 1)[-1]


def _where(uri: str, sheet: str) -> str:
    return f"{uri} [sheet {sheet}]"
