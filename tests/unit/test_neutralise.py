from __future__ import annotations

import pytest

from infrastructure.reports.neutralise import neutralise

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "value",
    [
        '=HYPERLINK("http://x","y")',
        "@SUM(1)",
        "-2+3+cmd|' /C calc'!A0",
        "-3,1",
        "+1 ",
        "\t=1",
        "\r=1",
        "=",
    ],
)
def test_a_value_a_spreadsheet_could_evaluate_is_quoted(value: str) -> None:
    assert neutralise(value) == "'" + value


@pytest.mark.parametrize(
    "value", ["abc", "3", "3-1", " =1", "a=b", "'=1", "Braund, Mr. Owen Harris", "€=1"]
)
def test_other_values_are_unchanged(value: str) -> None:
    assert neutralise(value) == value


@pytest.mark.parametrize("value", ["-3", "+1", "-0.9167", "-1e5", "+.5"])
def test_a_number_is_never_quoted(value: str) -> None:
    # A lone number evaluates to itself: quoting it only showed "'-5" to people.
    assert neutralise(value) == value


@pytest.mark.parametrize("value", [None, ""])
def test_null_and_empty_stay_as_they_are(value: str | None) -> None:
    assert neutralise(value) == value
