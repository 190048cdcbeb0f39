"""`--since`: durations back from now, or timestamps, as the ledger's naive UTC."""

from __future__ import annotations

from datetime import datetime

import pytest

from application.tables import parse_since
from domain.errors import ConfigurationError

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 1, 12, 0, 0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90m", datetime(2026, 12, 1, 10, 30)),
        ("2h", datetime(2026, 12, 1, 10, 0)),
        ("1d12h", datetime(2026, 11, 30, 0, 0)),
        ("1w", datetime(2026, 11, 24, 12, 0)),
        ("30s", datetime(2026, 12, 1, 11, 59, 30)),
        ("2026-11-30T08:00", datetime(2026, 11, 30, 8, 0)),
        ("2026-11-30 08:00:00+02:00", datetime(2026, 11, 30, 6, 0)),
        ("2026-11-30T08:00Z", datetime(2026, 11, 30, 8, 0)),
    ],
)
def test_since_reads_durations_and_timestamps(text: str, expected: datetime) -> None:
    assert parse_since(text, NOW) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "2h ago", "5", "-2h", "2026-13-01"])
def test_anything_else_is_a_usage_error_naming_the_value(text: str) -> None:
    with pytest.raises(ConfigurationError, match="--since"):
        parse_since(text, NOW)
