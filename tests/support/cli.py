"""The CLI in-process, as the e2e tests drive it: an isolated project and JSON results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from entrypoints.cli import main

CONFIG = Path(__file__).resolve().parents[2] / "config" / "datalakep.yaml"


def isolated_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **tables: dict[str, Any]
) -> Path:
    """Work in ``tmp_path`` with the shipped config plus ``tables``; return the config file.

    Reports and the default warehouse are relative to the working directory.
    """
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATALAKEP_WAREHOUSE", raising=False)
    config = yaml.safe_load(CONFIG.read_text())
    config["tables"].update(tables)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("DATALAKEP_CONFIG", str(path))
    return path


def ingest_json(
    capsys: pytest.CaptureFixture[str], db: Path, *files: Path
) -> tuple[int, list[dict[str, Any]]]:
    """`datalakep ingest FILES --json` into the DuckDB file ``db``: exit code and results."""
    code = main(["ingest", *map(str, files), "--warehouse", f"duckdb:///{db}", "--json"])
    out = capsys.readouterr().out
    return code, [json.loads(line) for line in out.splitlines() if line.strip()]
