"""Each fake, held in a variable of its port's type, so mypy checks it against the Protocol.

A Protocol is matched structurally only where a value meets the type; a fake
that drifted from its port would otherwise pass until a test happened to call
the changed method. mypy checks this module with the rest of ``tests``.
"""

from __future__ import annotations

from application.ports import (
    DeadLetterQueue,
    FileSource,
    MessageSource,
    ObjectListing,
    OutcomeListener,
    RejectsReportWriter,
    SecretProvider,
    Warehouse,
    Workbook,
    WorkbookReader,
)
from tests.fakes.files import InMemoryFileSource
from tests.fakes.messages import InMemoryDeadLetterQueue, InMemoryMessageSource
from tests.fakes.outcomes import InMemoryOutcomes
from tests.fakes.reports import InMemoryRejectsReportWriter
from tests.fakes.secrets import InMemorySecretProvider
from tests.fakes.warehouse import InMemoryWarehouse
from tests.fakes.workbooks import InMemoryWorkbook, InMemoryWorkbookReader

files: FileSource = InMemoryFileSource()
listing: ObjectListing = InMemoryFileSource()
messages: MessageSource = InMemoryMessageSource()
outcomes: OutcomeListener = InMemoryOutcomes()
dead_letters: DeadLetterQueue = InMemoryDeadLetterQueue(InMemoryMessageSource())
reports: RejectsReportWriter = InMemoryRejectsReportWriter()
secrets: SecretProvider = InMemorySecretProvider()
warehouse: Warehouse = InMemoryWarehouse()
workbook: Workbook = InMemoryWorkbook("memory://w.xlsx", {})
reader: WorkbookReader = InMemoryWorkbookReader()
