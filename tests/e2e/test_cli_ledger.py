"""The ledger answers questions through the CLI, on DuckDB and on PostgreSQL."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import openpyxl
import pytest

from entrypoints.cli import main
from tests.e2e.workbooks import passenger_csv
from tests.support.postgres import fresh_database
from tests.unit.conftest import passenger

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).parents[2]


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    monkeypatch.chdir(tmp_path)  # reports are written under the working directory
    monkeypatch.delenv("DATALAKEP_WAREHOUSE", raising=False)
    monkeypatch.setenv("DATALAKEP_CONFIG", str(ROOT / "config" / "datalakep.yaml"))
    if request.param == "duckdb":
        yield f"duckdb:///{tmp_path / 'wh.duckdb'}"
        return
    with fresh_database(request.getfixturevalue("postgres"), "ledger") as url:
        yield url


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def name(uri: str) -> str:
    return unquote(uri.rsplit("/", 1)[-1])


def rows(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines()]


def test_history_filters_show_and_the_report_name_the_same_load(
    warehouse: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    good = [passenger(i) for i in range(1, 11)]
    passenger_csv(inbox / "clean.csv", good)
    passenger_csv(inbox / "one bad.csv", [*good[:9], passenger(10, Sex="?")])
    passenger_csv(inbox / "all bad.csv", [passenger(i, Age="old") for i in range(1, 4)])

    code, out, err = cli(
        capsys, "--log-format", "json", "ingest", str(inbox), "--warehouse", warehouse, "--json"
    )

    assert code == 1  # "all bad" was refused
    logs = [json.loads(line) for line in err.splitlines()]  # every stderr line is JSON
    assert Counter(
        (name(x["source"]), x["status"]) for x in logs if x["logger"] == "datalakep.outcome"
    ) == Counter({("all bad.csv", "rejected"): 1, ("clean.csv", "loaded"): 1,
                  ("one bad.csv", "loaded"): 1})  # fmt: skip
    ingested = {name(r["source"]): r for r in rows(out)}

    def history(*args: str) -> list[dict[str, Any]]:
        code, out, _ = cli(capsys, "history", "--warehouse", warehouse, "--json", *args)
        assert code == 0
        return rows(out)

    assert len(history()) == 3
    [refused] = history("--status", "rejected")
    assert name(refused["source"]) == "all bad.csv"
    assert refused["error"]
    [one_bad] = history("--source", "*/one?20bad.csv")  # local sources are file:// URIs
    assert one_bad["load_id"] == ingested["one bad.csv"]["load_id"]
    assert one_bad["rejects_report"] == ingested["one bad.csv"]["rejects_report"]
    assert refused["rejects_report"] == ingested["all bad.csv"]["rejects_report"]
    assert history("--source", "*/clean.csv")[0]["rejects_report"] is None
    assert len(history("--table", "train_data", "--since", "1h")) == 3
    assert len(history("--since", "2000-01-01T00:00", "--limit", "1")) == 1
    assert history("--since", "2999-01-01T00:00+01:00") == []
    assert history("--table", "test_data") == []

    code, out, _ = cli(capsys, "show", one_bad["load_id"], "--warehouse", warehouse)
    assert code == 0
    shown = dict(line.split("  ", 1) for line in out.splitlines())
    assert shown["rejects report"].strip() == one_bad["rejects_report"]
    assert shown["sheets"].strip() == one_bad["sheets"][0]
    assert shown["rows rejected"].strip() == "1"
    code, out, _ = cli(capsys, "show", one_bad["load_id"], "--warehouse", warehouse, "--json")
    assert rows(out) == [one_bad]
    assert cli(capsys, "show", "no-such-load", "--warehouse", warehouse)[0] == 1
    assert cli(capsys, "history", "--since", "yesterday", "--warehouse", warehouse)[0] == 2

    # The report names the ledger's load of each sheet.
    summary = openpyxl.load_workbook(one_bad["rejects_report"], read_only=True)["summary"]
    table = [list(r) for r in summary.iter_rows(values_only=True)]
    header = next(r for r in table if r and r[0] == "Sheet")
    sheet_row = next(r for r in table if r and r[0] == one_bad["sheets"][0])
    assert sheet_row[header.index("Load id")] == one_bad["load_id"]
