"""Text from files and object keys, made safe to print on one line.

An S3 key or a cell may hold any character. Printed as is, a newline in a key
forges a log line of its own, a carriage return overwrites the one shown, and
an ANSI escape sequence recolours or clears the operator's terminal. Every
place that shows such text to a person or a log (log calls, CLI output) passes
it through :func:`printable`, the one place that decides how it is escaped.
"""

from __future__ import annotations

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


# Unicode's control characters (category Cc: C0, DEL and C1), and the line and
# paragraph separators, which log viewers and JSON-lines readers also break on.
_CONTROLS = [*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029]
_TABLE = {code: _escape(chr(code)) for code in _CONTROLS}


def printable(value: object) -> str:
    """``value`` as text with control characters escaped (``\\n``, ``\\x1b``, ``\\u2028``).

    Everything else, accents and CJK included, is kept as it is.
    """
    return str(value).translate(_TABLE)
