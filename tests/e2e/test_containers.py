"""Each entrypoint's container builds and resolves its use cases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from application.ingest import IngestPassengerFile
from application.tables import InitializeTables, InitTables, ShowHistory
from entrypoints.containers import cli_container
from tests.conftest import CONFIG
from tests.e2e.workbooks import write_kaggle
from tests.fakes.secrets import InMemorySecretProvider
from tests.fakes.warehouse import InMemoryWarehouse
from tests.support.postgres import PostgresServer, fresh_database

pytestmark = pytest.mark.e2e


def test_cli_container_builds_with_the_shipped_config(tmp_path: Path) -> None:
    container = cli_container(None, f"duckdb:///{tmp_path / 'x.duckdb'}")
    try:
        assert isinstance(container.ingest(), IngestPassengerFile)
        assert isinstance(container.init_tables(), InitializeTables)
        assert isinstance(container.history(), ShowHistory)
        assert len(container.catalog()) == 3
    finally:
        container.shutdown_resources()


def test_cli_container_providers_can_be_overridden_with_fakes(tmp_path: Path) -> None:
    container = cli_container(None, f"duckdb:///{tmp_path / 'x.duckdb'}")
    fake = InMemoryWarehouse()
    with container.warehouse.override(fake):
        container.init_tables().execute(InitTables())
    assert set(fake.tables) == {"train_data", "test_data", "gender_submission"}
    assert not (tmp_path / "x.duckdb").exists()


def test_a_secretsmanager_password_is_read_through_the_secret_provider(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    config = yaml.safe_load(CONFIG.read_text())
    config["warehouse"].update({"password": "SecretsManager", "secret_name": "prod/warehouse"})
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    with fresh_database(postgres, "secrets") as url:
        container = cli_container(str(path), url)
        secrets = InMemorySecretProvider({"prod/warehouse": json.dumps({"password": "pw"})})
        try:
            with container.secrets.override(secrets):
                result = container.init_tables().execute(InitTables())
        finally:
            container.shutdown_resources()
    assert result.ok
    assert secrets.requested == ["prod/warehouse"]


def test_worker_and_lambda_containers_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from application.handle_event import HandleStorageEvent
    from application.worker import QueueWorker
    from entrypoints.aws_containers import lambda_container, worker_container
    from tests.fakes.messages import InMemoryMessageSource

    monkeypatch.setenv("DATALAKEP_WAREHOUSE", f"duckdb:///{tmp_path / 'x.duckdb'}")
    monkeypatch.setenv("DATALAKEP_ALLOWED_SOURCES", "inbox/incoming/")
    worker = worker_container("http://127.0.0.1:1/queue/q")
    with worker.messages.override(InMemoryMessageSource()):
        assert isinstance(worker.worker(), QueueWorker)
    lam = lambda_container()
    assert isinstance(lam.handle_event(), HandleStorageEvent)
    assert lam.hand_off() is None  # no worker queue configured
    assert [r.bucket for r in lam.sources()] == ["inbox"]
    worker.shutdown_resources()
    lam.shutdown_resources()


def test_reconcile_container_builds_from_options_then_environment_then_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from application.reconcile import Reconcile
    from entrypoints.aws_containers import reconcile_container
    from infrastructure.aws.sqs_messages import SqsDeadLetterQueue, SqsMessageSource

    monkeypatch.setenv("DATALAKEP_WORKER_QUEUE_URL", "http://127.0.0.1:1/queue/from-env")
    monkeypatch.setenv("DATALAKEP_ALLOWED_SOURCES", "inbox/incoming/")
    config = yaml.safe_load(CONFIG.read_text())
    config["worker"]["dlq_url"] = "http://127.0.0.1:1/queue/dlq-from-config"
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    warehouse = f"duckdb:///{tmp_path / 'x.duckdb'}"

    from_env = reconcile_container(str(path), warehouse)
    given = reconcile_container(str(path), warehouse, "http://127.0.0.1:1/queue/dlq", "http://q")
    try:
        urls = []
        for container in (from_env, given):
            assert isinstance(container.reconcile(), Reconcile)
            dead_letters, queue = container.dead_letters(), container.queue()
            assert isinstance(dead_letters, SqsDeadLetterQueue)
            assert isinstance(queue, SqsMessageSource)
            urls.append((dead_letters.queue_url, queue.queue_url))
        assert urls == [
            ("http://127.0.0.1:1/queue/dlq-from-config", "http://127.0.0.1:1/queue/from-env"),
            ("http://127.0.0.1:1/queue/dlq", "http://q"),
        ]
    finally:
        from_env.shutdown_resources()
        given.shutdown_resources()


def test_a_cold_ingest_imports_no_integration_the_service_does_not_use(
    titanic: Path, tmp_path: Path
) -> None:
    # pandas (through pyarrow's first conversion), pydantic-settings and werkzeug
    # (through dependency-injector) are installed here but not in the image; a cold
    # start paid 0.3-0.5 s of CPU for them. numpy is not in the image either, and an
    # entrypoint keeps it out (entrypoints/__init__.py): every reader, validation,
    # the rejects workbook and the load must then do without it, in the process and
    # in its parser child (a child in want of it would fail its sheet, and the exit
    # code with it). A fresh process shows what it imports.
    sources = [write_kaggle(titanic, "train", fmt, tmp_path) for fmt in ("xlsx", "xls", "ods")]
    bad = tmp_path / "gender_submission.csv"  # one row in 11 rejected: under the limit
    bad.write_text(
        "PassengerId,Survived\n" + "".join(f"{n},0\n" for n in range(892, 902)) + "902,maybe\n"
    )
    probe = (
        "import sys\n"
        "from entrypoints.cli import main\n"
        f"code = main(['ingest', *{[str(p) for p in [*sources, bad]]!r}, '--warehouse', "
        f"'duckdb:///{tmp_path / 'wh.duckdb'}', '--json'])\n"
        "print(code, sorted(m for m in ('numpy', 'pandas', 'pydantic', 'pydantic_settings', "
        "'werkzeug') if m in sys.modules))\n"
    )
    env = {**os.environ, "DATALAKEP_CONFIG": str(CONFIG)}
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.stdout.split("\n")[-2:] == ["0 []", ""], done.stdout + done.stderr
    sheets = [json.loads(line) for line in done.stdout.splitlines()[:-1]]
    assert [(s["table"], s["status"], s["rows_loaded"], s["rows_rejected"]) for s in sheets] == [
        ("train_data", "loaded", 891, 0),
        ("train_data", "loaded", 891, 0),
        ("train_data", "loaded", 891, 0),
        ("gender_submission", "loaded", 10, 1),
    ]
    assert sheets[-1]["rejects_report"], "the rejected row's report was written"
