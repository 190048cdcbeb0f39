"""`python -m devtools.sample` for any configured table: rows its contract accepts, every one."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.sample import main as sample
from tests.support.cli import ingest_json, isolated_project

pytestmark = pytest.mark.e2e

CONFIG = Path(__file__).resolve().parents[2] / "config" / "datalakep.yaml"
READINGS = {
    "primary_key": ["id"],
    "columns": [
        {"name": "id", "type": "bigint", "nullable": False},
        {"name": "station", "type": "varchar(12)", "nullable": False},
        {"name": "code", "type": "char(2)"},
        {"name": "level", "type": "decimal(8,3)", "min": 0, "max": 500},
        {"name": "ratio", "type": "double"},
        {"name": "count", "type": "smallint", "min": -5},
        {"name": "ok", "type": "boolean"},
        {"name": "day", "type": "date", "min": "2020-01-01", "max": "2020-12-31"},
        {"name": "at", "type": "timestamp"},
        {"name": "kind", "type": "varchar(8)", "allowed": ["rain", "snow"]},
    ],
}


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_sample_rows_for_any_table_load_without_a_reject(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    suffix: str,
) -> None:  # fmt: skip
    isolated_project(tmp_path, monkeypatch, readings=READINGS)
    out = tmp_path / f"readings{suffix}"

    assert sample(["--table", "readings", "--rows", "1000", "--out", str(out)]) == 0
    capsys.readouterr()
    code, [result] = ingest_json(capsys, tmp_path / "w.duckdb", out)

    assert code == 0
    assert (result["table"], result["rows_loaded"], result["rows_rejected"]) == (
        "readings",
        1000,
        0,
    )


def test_sample_names_the_tables_it_knows(capsys: pytest.CaptureFixture[str]) -> None:
    code = sample(["--table", "nope", "--out", "x.xlsx"])
    assert code == 2
    assert "no contract for table 'nope'; known: gender_submission" in capsys.readouterr().err
