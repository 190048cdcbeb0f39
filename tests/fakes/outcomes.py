"""An OutcomeListener that keeps what it was told, for tests to assert on."""

from __future__ import annotations

from application.outcomes import FileOutcome
from domain.errors import DatalakepError


class InMemoryOutcomes:
    def __init__(self) -> None:
        self.outcomes: list[FileOutcome] = []
        # Raised (once) by the next call, as an unreachable topic would.
        self.fail_next: DatalakepError | None = None

    def file_outcome(self, outcome: FileOutcome) -> None:
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        self.outcomes.append(outcome)

    def statuses(self) -> list[tuple[str, str]]:
        return [(o.source, o.status.value) for o in self.outcomes]
