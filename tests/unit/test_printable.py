"""Keys and cells reach logs and terminals escaped: a newline cannot forge a line."""

from __future__ import annotations

import io
import logging

import pytest

from application.handle_event import HandleEvent, HandleStorageEvent
from application.results import Outcome, SheetResult
from domain.events import ObjectCreated, SourceRule, StorageEvent
from domain.printable import printable
from entrypoints.cli_output import print_results
from tests.unit.conftest import Harness

pytestmark = pytest.mark.unit

FORGED = "incoming/a.xlsx\n2026-12-01 00:00:00 INFO all good\r\x1b[2K\u2028\x85"


def test_control_characters_are_escaped_and_the_rest_kept() -> None:
    assert printable(FORGED) == (
        "incoming/a.xlsx\\n2026-12-01 00:00:00 INFO all good\\r\\x1b[2K\\u2028\\x85"
    )
    assert printable("Übersicht ß 乗客\\n") == "Übersicht ß 乗客\\n"
    assert printable(None) == "None"


def test_cli_output_shows_a_forged_key_on_one_line() -> None:
    out = io.StringIO()
    result = SheetResult(
        f"s3://inbox/{FORGED}", "S\nheet", None, Outcome.FAILED, error=f"bad: {FORGED}"
    )

    print_results([result], out, dry_run=False)

    lines = out.getvalue().splitlines()
    assert not any(line.startswith("2026-12-01") for line in lines)
    assert "\x1b" not in out.getvalue()
    assert "\r" not in out.getvalue()
    assert any("incoming/a.xlsx\\n2026-12-01" in line for line in lines)


def test_a_log_line_about_a_forged_key_stays_one_line(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    use_case = HandleStorageEvent(harness.use_case, harness.files, [SourceRule("inbox", "in/")])

    use_case.execute(HandleEvent(StorageEvent((ObjectCreated("inbox", f"other/{FORGED}"),))))

    [record] = [r for r in caplog.records if "outside the allowed sources" in r.getMessage()]
    assert "\n" not in record.getMessage()
    assert "\x1b" not in record.getMessage()
