"""Make untrusted cell text inert before it goes into a report a person opens.

The rejects report echoes back exactly the cells we could not load, so it is
the one place where a hostile spreadsheet's content reaches a person's Excel or
LibreOffice. A cell such as ``=HYPERLINK("http://evil","click")`` or
``@SUM(1+1)*cmd|' /C calc'!A0`` would be evaluated when the CSV is opened
(CSV/formula injection, see the OWASP "CSV Injection" page).
"""

from __future__ import annotations

import re

# OWASP's list: the four characters that start a formula in Excel, Calc or
# Sheets, plus tab and carriage return, which some importers strip before
# deciding whether the rest is a formula.
FORMULA_TRIGGERS = frozenset("=+-@\t\r")
# A lone number literal. A spreadsheet evaluates it to that number and
# nothing else, so "-5" needs no quote (and shows none).
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def needs_neutralising(value: str | None) -> bool:
    """True when a spreadsheet could evaluate ``value`` as more than a number."""
    if not value or value[0] not in FORMULA_TRIGGERS:
        return False
    return _NUMBER.fullmatch(value) is None


def neutralise(value: str | None) -> str | None:
    """``value`` prefixed with a single quote if a spreadsheet could evaluate it.

    The quote makes every spreadsheet program treat the cell as text. A plain
    number such as ``-3`` is left alone: it can only evaluate to itself.
    """
    if needs_neutralising(value):
        return "'" + str(value)
    return value
