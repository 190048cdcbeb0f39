"""One error hierarchy for the whole service.

Every error carries a stable ``code`` (for logs, metrics and the ledger) and a
``details`` mapping (file, sheet, row, column...). Callers decide what to do by
class alone: a :class:`TransientError` is worth retrying as is; a
:class:`TerminalError` never succeeds on retry, so its input is reported and
quarantined instead of blocking a queue.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class DatalakepError(Exception):
    code: str = "datalakep_error"

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details: Mapping[str, Any] = details

    def __str__(self) -> str:
        return self.message


class TransientError(DatalakepError):
    """The same input may succeed later: a server was down, a lock was taken."""

    code = "transient"


class TerminalError(DatalakepError):
    """The input itself is the problem; retrying cannot help."""

    code = "terminal"


class ConfigurationError(TerminalError):
    code = "configuration"


class UnreadableFileError(TerminalError):
    """The file cannot be parsed: corrupt, encrypted, unsupported or too large."""

    code = "unreadable_file"


class UnroutableSheetError(TerminalError):
    code = "unroutable_sheet"


class SchemaDriftError(TerminalError):
    """A warehouse table exists with columns that disagree with its contract."""

    code = "schema_drift"


class WarehouseUnavailableError(TransientError):
    code = "warehouse_unavailable"


class WarehouseAuthenticationError(TransientError):
    """The warehouse refused the credentials, also after the secret was read again.

    Transient for a service: a rotation may be half done (the secret updated before
    the database, or the other way round), and the messages must wait, not be
    dead-lettered. For a person at the CLI it is a configuration error.
    """

    code = "warehouse_authentication"
