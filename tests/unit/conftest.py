from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import count

import pytest

from application.ingest import IngestPassengerFile
from application.ports import OutcomeListener
from application.results import CheckFile, IngestFile, IngestResult
from application.validate import ValidateFile
from domain.routing import Router
from tests.fakes.files import InMemoryFileSource
from tests.fakes.reports import InMemoryRejectsReportWriter
from tests.fakes.warehouse import InMemoryWarehouse
from tests.fakes.workbooks import InMemoryWorkbookReader

pytestmark = pytest.mark.unit

TRAIN_HEADER = (
    "PassengerId", "Survived", "Pclass", "Name", "Sex", "Age",
    "SibSp", "Parch", "Ticket", "Fare", "Cabin", "Embarked",
)  # fmt: skip


def passenger(pid: int, **overrides: object) -> list[object]:
    """One valid train_data row, in TRAIN_HEADER order."""
    row: dict[str, object] = {
        "PassengerId": pid, "Survived": 0, "Pclass": 3, "Name": f"Doe, Mr. John {pid}",
        "Sex": "male", "Age": 22, "SibSp": 1, "Parch": 0, "Ticket": "A/5 21171",
        "Fare": 7.25, "Cabin": None, "Embarked": "S",
    }  # fmt: skip
    row.update(overrides)
    return [row[c] for c in TRAIN_HEADER]


@dataclass
class Harness:
    files: InMemoryFileSource
    reader: InMemoryWorkbookReader
    warehouse: InMemoryWarehouse
    reports: InMemoryRejectsReportWriter
    use_case: IngestPassengerFile
    validator: ValidateFile

    def drop(
        self, uri: str, sheets: Mapping[str, Sequence[Sequence[object]]], version: str | None = None
    ) -> None:
        """Put a workbook in the source, as an upload would."""
        body = repr(sheets).encode()
        self.files.put(uri, body, version)
        self.reader.add(uri, sheets)

    def ingest(self, uri: str) -> IngestResult:
        return self.use_case.execute(IngestFile(uri))

    def validate(self, uri: str, *, write_report: bool = False) -> IngestResult:
        """The dry run on the same fakes: what ingest would do, loading nothing."""
        return self.validator.execute(CheckFile(uri, write_report=write_report))


@pytest.fixture
def harness(router: Router) -> Harness:
    return make_harness(router)


def make_harness(router: Router, outcomes: Sequence[OutcomeListener] = ()) -> Harness:
    """The use case on fresh fakes; also for tests that cannot take a fixture (hypothesis)."""
    ids = count(1)
    files = InMemoryFileSource()
    reader = InMemoryWorkbookReader()
    warehouse = InMemoryWarehouse()
    reports = InMemoryRejectsReportWriter()
    use_case = IngestPassengerFile(
        files,
        reader,
        router,
        warehouse,
        reports,
        new_id=lambda: f"load-{next(ids)}",
        outcomes=outcomes,
    )
    validator = ValidateFile(files, reader, router, reports, new_id=lambda: f"load-{next(ids)}")
    return Harness(files, reader, warehouse, reports, use_case, validator)
