"""How much a single file may cost to read, set per deployment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from domain.errors import ConfigurationError

MB = 1024 * 1024


@dataclass(frozen=True)
class ReaderLimits:
    """Bounds checked before and while parsing, so one hostile file cannot exhaust memory.

    ``max_compression_ratio`` applies per zip member; members that inflate to
    less than 1 MB are exempt because small XML parts legitimately compress
    100x and cannot hurt.
    """

    max_file_bytes: int = 300 * MB
    # Excel's own sheet limit; a CSV beyond it would not open in Excel either.
    max_rows_per_sheet: int = 1_048_576
    max_uncompressed_bytes: int = 2048 * MB
    max_compression_ratio: float = 200.0
    max_sheets: int = 500
    # calamine allocates every cell of a sheet's bounding box (~32 bytes each),
    # so two far-apart cells can cost gigabytes; 50M cells is ~1.6 GB.
    max_cells_per_sheet: int = 50_000_000
    # The parser's own process (isolated.py): address space on top of what it
    # starts with, and CPU seconds. A million-row sheet needs about 1 GB and 5 s.
    parser_memory_mb: int = 4096
    parser_cpu_seconds: int = 300
    # An .xlsx/.xlsm worksheet whose XML inflates to at least this is parsed in
    # parts of at most this size (and 16 MiB), on every core (parsers/excel.py,
    # part_plan).
    split_sheet_bytes: int = 32 * MB

    def splits(self, inflated_bytes: int) -> bool:
        """Whether a worksheet whose XML inflates to this is parsed in parts.

        Such a sheet is also scanned for its extent by the parser, in the parts'
        own pass over its XML, not by the guards.
        """
        return inflated_bytes >= self.split_sheet_bytes

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            wanted = float if f.name == "max_compression_ratio" else int
            # bool is an int subclass; "true" as a limit is a YAML mistake, not 1.
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigurationError(
                    f"reader limit {f.name} must be a number, got {value!r}", key=f.name
                )
            if wanted is int and not isinstance(value, int):
                raise ConfigurationError(
                    f"reader limit {f.name} must be a whole number, got {value!r}", key=f.name
                )
            if value <= 0:
                raise ConfigurationError(
                    f"reader limit {f.name} must be positive, got {value!r}", key=f.name
                )

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> ReaderLimits:
        """Build from configuration; unknown keys are typos and are refused."""
        values = values or {}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigurationError(
                f"unknown reader limits {unknown}; known: {sorted(known)}", keys=unknown
            )
        return cls(**dict(values))
