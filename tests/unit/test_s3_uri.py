from __future__ import annotations

import pytest

from infrastructure.aws.s3_uri import parse_s3_uri, s3_uri

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "key", ["in/with space.csv", "in/plus+sign.csv", "Passagiere ü/Zeile 1+2.xlsx", "a%20b?#.csv"]
)
def test_keys_round_trip_verbatim(key: str) -> None:
    assert parse_s3_uri(s3_uri("src", key)) == ("src", key)


def test_nothing_is_encoded() -> None:
    assert s3_uri("src", "a b/c+d ü.csv") == "s3://src/a b/c+d ü.csv"


@pytest.mark.parametrize("uri", ["src/key", "s3://", "s3://bucket", "s3://bucket/", "s3:///key"])
def test_anything_else_is_refused(uri: str) -> None:
    with pytest.raises(ValueError, match="s3:// URI"):
        parse_s3_uri(uri)
