"""A malformed warehouse URL is refused without ever showing its password."""

from __future__ import annotations

import pytest

from domain.errors import ConfigurationError
from infrastructure.warehouse.urls import parse_warehouse_url

pytestmark = pytest.mark.unit

PASSWORD = "pw-never-shown-91c2"


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql:/loader:{PASSWORD}@db.internal/dev",
        f"postgresql//loader:{PASSWORD}@db.internal/dev",
        f"duckdb://loader:{PASSWORD}@db.internal/x.duckdb",
        f"postgresql://loader:{PASSWORD}@db.internal:99999/dev",
        f"postgresql://loader:{PASSWORD}@/dev",
        f"redshift://loader:p@ss{PASSWORD}@/dev",
    ],
)
def test_a_malformed_url_is_a_configuration_error_without_its_password(url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_warehouse_url(url)

    shown = f"{caught.value} {caught.value.details!r}"
    assert PASSWORD not in shown
    assert "loader" in shown
