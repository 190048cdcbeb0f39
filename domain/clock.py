"""The one clock: every timestamp the service stores is naive UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_naive(moment: datetime) -> datetime:
    """How timestamps are stored: naive, in UTC (an aware value is converted)."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def utc_now() -> datetime:
    # Naive UTC: every warehouse stores TIMESTAMP without time zone.
    return utc_naive(datetime.now(UTC))
