from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import yaml

from domain.errors import ConfigurationError
from domain.inference import infer_contract
from domain.sheet import RawSheet
from entrypoints.contract_yaml import add_table

pytestmark = pytest.mark.unit

INFERRED = infer_contract(
    RawSheet(
        source="in/Q1 sales.csv",
        name="Q1 sales",
        header=("id", "amount: net", "true"),
        header_row=1,
        cells=pa.table(
            [pa.array(["1", "2"]), pa.array(["1.5", "2"]), pa.array(["a", "b"])],
            names=["c0", "c1", "c2"],
        ),
        row_numbers=pa.array(np.array([2, 3], dtype=np.int64)),
    ),
    "q1_sales",
)


@pytest.mark.parametrize(
    "text",
    [
        "# mine\ntables:\n  t:\n    load_mode: append\n    columns: [{name: a, type: int}]\n",
        "routing: []  # none yet\n\ntables:\n  t:\n    load_mode: append\n"
        "    columns: [{name: a, type: int}]\n\n# the end\n",
        "routing:\n  - {file: 'x*', table: t}\ntables:\n  t:\n    load_mode: append\n"
        "    columns: [{name: a, type: int}]\nlimits: {max_sheets: 3}\n",
    ],
)
def test_the_table_and_a_first_routing_rule_are_added_and_nothing_else_changes(text: str) -> None:
    updated = add_table(text, INFERRED, "in/Q1 sales.csv", None, "c.yaml")

    config = yaml.safe_load(updated)
    assert config["routing"][0] == {"file": "Q1 sales.csv", "table": "q1_sales"}
    assert [c["name"] for c in config["tables"]["q1_sales"]["columns"]] == [
        "id",
        "amount: net",
        "true",
    ]
    assert config["tables"]["t"]["columns"] == [{"name": "a", "type": "int"}]
    kept = [line for line in text.splitlines() if "routing: []" not in line]
    assert all(line in updated.splitlines() for line in kept)


def test_an_inline_section_is_refused_rather_than_rewritten() -> None:
    with pytest.raises(ConfigurationError, match="written inline"):
        add_table("tables: {t: {columns: []}}\n", INFERRED, "x.csv", None, "c.yaml")
