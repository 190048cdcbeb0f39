"""A NUL in a header cell or a sheet name refuses that sheet alone, on PostgreSQL.

PostgreSQL's text cannot hold NUL. The refusal's message quotes the header or the
sheet name, and writing it to the ledger used to fail the whole workbook with an
unrelated database error.
"""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
import xlsxwriter

from entrypoints.cli import main
from tests.support.postgres import PostgresServer, fresh_database

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[3]


@pytest.mark.parametrize("where", ["header cell", "sheet name"])
def test_only_the_sheet_with_a_nul_is_refused_naming_it_and_the_others_load(
    postgres: PostgresServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    where: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATALAKEP_CONFIG", str(ROOT / "config" / "datalakep.yaml"))
    path = tmp_path / "with-nul.xlsx"
    book = xlsxwriter.Workbook(str(path))
    good = book.add_worksheet("gender")
    good.write_row(0, 0, ["PassengerId", "Survived"])
    good.write_row(1, 0, [1, 0])
    extra = book.add_worksheet("ex\x00tra" if where == "sheet name" else "extra")
    extra.write_row(0, 0, ["a\x00b" if where == "header cell" else "a", "c"])
    extra.write_row(1, 0, [1, 2])
    book.close()

    with fresh_database(postgres, "nul") as url:
        code = main(["ingest", str(path), "--warehouse", url, "--json"])
        results = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        with psycopg.connect(url) as con:
            ledger = con.execute(
                "SELECT status, sheets, error FROM datalakep_load_ledger ORDER BY status"
            ).fetchall()
            loaded = con.execute("SELECT count(*) FROM gender_submission").fetchone()

    by_sheet = {r["sheet"]: r for r in results}
    nul_sheet = "ex\x00tra" if where == "sheet name" else "extra"
    assert code == 1  # a sheet was refused
    assert set(by_sheet) == {"gender", nul_sheet}
    assert by_sheet["gender"]["status"] == "loaded"
    assert loaded == (1,)
    refused = by_sheet[nul_sheet]
    assert refused["status"] == "rejected"
    assert f"[sheet {nul_sheet}]" in refused["error"]
    [(sheets, error)] = [row[1:] for row in ledger if row[0] == "rejected"]
    assert json.loads(sheets) == [nul_sheet]
    assert "\\x00" in error
    assert "\x00" not in error
