"""Make untrusted cell text inert before it goes into a report a person opens.

The rejects report echoes back exactly the cells we could not load, so it is
the one place where a hostile spreadsheet's content reaches a person's Excel or
LibreOffice. A cell such as ``=HYPERLINK("http://evil","click")`` or
``@SUM(1+1)*cmd|' /C calc'!A0`` would be evaluated when the CSV is opened
(CSV/formula injection, see the OWASP "CSV Injection" page).
"""

from __future__ import annotations

# OWASP's list: the four characters that start a formula in Excel, Calc or
# Sheets, plus tab and carriage return, which some importers strip before
# deciding whether the rest is a formula.
FORMULA_TRIGGERS = frozenset("=+-@\t\r")


def neutralise(value: str | None) -> str | None:
    """``value`` prefixed with a single quote if a spreadsheet could evaluate it.

    The quote makes every spreadsheet program treat the cell as text. A plain
    negative number such as ``-3`` is prefixed too (``'-3``): telling it apart
    from ``-3+cmd|...`` safely is not worth the risk, and a report that shows a
    rejected value as text loses nothing.
    """
    if value and value[0] in FORMULA_TRIGGERS:
        return "'" + value
    return value
