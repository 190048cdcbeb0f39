import pyarrow as pa
import pytest

from infrastructure.warehouse.arrow_columns import repeated_text


@pytest.mark.parametrize("value", ["4f1c-load", "", "Zoë ☃"])
def test_repeated_text_equals_the_list_it_replaces(value: str) -> None:
    made = repeated_text(value, 5)

    made.validate(full=True)
    assert made.type == pa.string()
    assert made.to_pylist() == [value] * 5


def test_repeated_text_of_no_rows_is_empty() -> None:
    assert repeated_text("x", 0).to_pylist() == []
