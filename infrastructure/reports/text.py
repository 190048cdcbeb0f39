"""Cell text as both report files may show it: XML-legal, inert, within Excel's size."""

from __future__ import annotations

import re

from infrastructure.reports.neutralise import neutralise

# A cell holds 32,767 characters in Excel.
MAX_CELL_CHARS = 32_767
# The control characters XML 1.0 forbids (openpyxl's ILLEGAL_CHARACTERS_RE).
ILLEGAL_XML_CHARS = re.compile(r"[\000-\010]|[\013-\014]|[\016-\037]")


def xml_safe(value: str) -> str:
    # Control characters are illegal in XML (openpyxl refuses them); showing
    # them escaped tells the person exactly what is in the cell.
    return ILLEGAL_XML_CHARS.sub(lambda m: f"\\x{ord(m.group()):02x}", value)


def fit_cell(value: str) -> str:
    if len(value) > MAX_CELL_CHARS:
        return value[: MAX_CELL_CHARS - 1] + "…"
    return value


def report_text(value: str | None) -> str | None:
    """A cell's text as the CSV shows it: inert, XML-legal, in size."""
    if value is None:
        return None
    return fit_cell(neutralise(xml_safe(value)) or "")
