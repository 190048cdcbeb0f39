"""The use case behind `datalakep contract infer`: a contract from a file's own cells."""

from __future__ import annotations

from dataclasses import dataclass

from application.ports import FileSource, WorkbookReader
from domain.errors import ConfigurationError
from domain.inference import InferredContract, header_row_of, infer_contract


@dataclass(frozen=True)
class InferContract:
    uri: str
    table: str
    sheet: str | None = None  # None: the file's first sheet
    allowed: bool = False  # list the values of low-cardinality text columns


class InferTableContract:
    """Reads the sheet as ingestion will (same reader, same limits) and infers from it.

    Reading through the ingest path is what makes the promise hold: the contract
    is inferred from exactly the text validation will later coerce.
    """

    def __init__(self, files: FileSource, reader: WorkbookReader, header_search_rows: int) -> None:
        self._files = files
        self._reader = reader
        self._header_search_rows = header_search_rows

    def execute(self, command: InferContract) -> InferredContract:
        info = self._files.head(command.uri)
        with self._files.fetch(info) as local, self._reader.open(local, info) as workbook:
            names = workbook.sheet_names
            sheet = command.sheet if command.sheet is not None else names[0]
            if sheet not in names:
                raise ConfigurationError(
                    f"{command.uri}: no sheet {sheet!r}; its sheets are {', '.join(names)}",
                    source=command.uri,
                    sheet=sheet,
                )
            preview = workbook.preview(sheet, self._header_search_rows)
            raw = workbook.read(sheet, header_row_of(preview))
        return infer_contract(raw, command.table, allowed=command.allowed)
