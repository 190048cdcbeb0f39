from __future__ import annotations

import pytest

from domain.errors import ConfigurationError
from infrastructure.readers import ReaderLimits

pytestmark = pytest.mark.integration


def test_defaults() -> None:
    limits = ReaderLimits()
    assert limits.max_file_bytes == 300 * 1024 * 1024
    assert limits.max_rows_per_sheet == 1_048_576
    assert limits.max_uncompressed_bytes == 2 * 1024**3
    assert limits.max_compression_ratio == 200.0
    assert limits.max_sheets == 500


def test_from_mapping_overrides_the_keys_given() -> None:
    limits = ReaderLimits.from_mapping({"max_file_bytes": 1000, "max_compression_ratio": 50})
    assert limits.max_file_bytes == 1000
    assert limits.max_compression_ratio == 50
    assert limits.max_sheets == 500


def test_from_mapping_of_nothing_is_the_defaults() -> None:
    assert ReaderLimits.from_mapping(None) == ReaderLimits()
    assert ReaderLimits.from_mapping({}) == ReaderLimits()


def test_unknown_keys_are_refused_by_name() -> None:
    with pytest.raises(ConfigurationError, match="max_file_size"):
        ReaderLimits.from_mapping({"max_file_size": 10})


@pytest.mark.parametrize(
    "values",
    [
        {"max_rows_per_sheet": 0},
        {"max_sheets": -1},
        {"max_file_bytes": "300MB"},
        {"max_file_bytes": True},
        {"max_rows_per_sheet": 10.5},
    ],
)
def test_bad_values_are_configuration_errors(values: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        ReaderLimits.from_mapping(values)
