"""Fixtures of the fault suite, and the figures it writes for scripts/reliability.

Each test gets its own moto stack and its own PostgreSQL database. Tests record what
their audit found in ``figures``; with DATALAKEP_RELIABILITY_REPORT=path set, the
figures of every test, with its outcome, are written there as JSON at the end of the
run (tests/faults/report.py prints them).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Generator, Iterator
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

from devtools.demo import BUCKET, create_stack
from infrastructure.aws.clients import aws_client
from tests.faults.harness import Audit, Stack, write_config
from tests.support.postgres import PostgresServer, fresh_database

REPORT_ENV = "DATALAKEP_RELIABILITY_REPORT"


@dataclass
class Figures:
    """One test's contribution to the reliability table."""

    scenario: str
    test: str
    runs: int = 0
    files: int = 0
    rows_expected: int = 0
    rows_loaded: int = 0
    duplicates: int = 0
    lost: int = 0
    dlq: int = 0
    passed: bool = False
    # Free text the report prints under the table (e.g. where random kills landed).
    notes: list[str] = field(default_factory=list)

    def record(self, audit: Audit, runs: int) -> None:
        """Called before the test asserts, so a failing test still shows what it saw."""
        self.runs += runs
        self.files += audit.files
        self.rows_expected += audit.rows_expected
        self.rows_loaded += audit.rows_loaded
        self.duplicates += audit.duplicates
        self.lost += audit.lost
        self.dlq += audit.dlq


_FIGURES: dict[str, Figures] = {}
_OUTCOMES: dict[str, bool] = {}


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Figures:
    scenario = getattr(request.module, "SCENARIO", request.module.__name__)
    made = Figures(scenario=scenario, test=request.node.nodeid)
    _FIGURES[request.node.nodeid] = made
    return made


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    # Passed means every phase (setup, call, teardown) passed; a skip is no pass.
    before = _OUTCOMES.get(item.nodeid, True)
    _OUTCOMES[item.nodeid] = before and not report.failed and not report.skipped
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    target = os.environ.get(REPORT_ENV)
    if not target or not _FIGURES:
        return
    rows: list[dict[str, Any]] = []
    for nodeid, made in _FIGURES.items():
        made.passed = _OUTCOMES.get(nodeid, False)
        rows.append(asdict(made))
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"tests": rows}, indent=2))


# ------------------------------------------------------------------ stacks


@pytest.fixture(scope="session")
def file_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Sample files made once per run: many tests upload the same ones."""
    return tmp_path_factory.mktemp("fault-files")


MakeStack = Callable[..., Stack]


@pytest.fixture
def make_stack(
    aws: str, postgres: PostgresServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> Iterator[MakeStack]:
    """Build this test's stack: queue (+DLQ) with S3 notifications, a fresh database.

    ``warehouse`` replaces the URL the workers use (e.g. one through a proxy) given
    the direct one; ``worker`` settings go to the config file the workers read.
    """
    # moto's web server logs every request: thousands of lines in a failure's report.
    caplog.set_level(logging.WARNING, logger="werkzeug")
    with ExitStack() as cleanup:

        def make(
            *,
            visibility_timeout: int = 30,
            max_receive_count: int = 10,
            versioned: bool = False,
            warehouse: Callable[[str], str] | None = None,
            **worker: Any,
        ) -> Stack:
            database = cleanup.enter_context(fresh_database(postgres, "faults"))
            queue, dlq = create_stack(
                visibility_timeout=visibility_timeout, max_receive_count=max_receive_count
            )
            if versioned:
                aws_client("s3").put_bucket_versioning(
                    Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"}
                )
            # The worker receives with its own visibility timeout; keep both the same.
            config = write_config(
                tmp_path / "datalakep.yaml", visibility_timeout=visibility_timeout, **worker
            )
            work = tmp_path / "files"
            work.mkdir(exist_ok=True)
            return Stack(
                queue=queue,
                dlq=dlq,
                warehouse=warehouse(database) if warehouse else database,
                database=database,
                config=config,
                work=work,
            )

        yield make
