from __future__ import annotations

import io

import pytest

from entrypoints.cli_output import TerminalProgress

pytestmark = pytest.mark.unit


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_any_long_job_shows_rows_done_of_total_and_clears_the_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(TerminalProgress, "DELAY_S", 0.0)
    screen = Terminal()
    progress = TerminalProgress(screen)

    progress.start_file()
    progress.stage("out/sample.xlsx", None, "writing", 16_384, 65_536)
    progress.stage("out/sample.xlsx", None, "writing", 65_536, 65_536)
    progress.finish()

    shown = screen.getvalue()
    assert "██████░░░░░░░░░░░░░░░░░░ sample.xlsx: writing 16,384 of 65,536 rows" in shown
    assert "█" * 24 + " sample.xlsx: writing 65,536 of 65,536 rows" in shown
    assert shown.endswith("\r\x1b[K")


def test_nothing_is_shown_off_a_terminal() -> None:
    log = io.StringIO()
    progress = TerminalProgress(log)
    progress.start_file()
    progress.stage("x.csv", "x", "validating", 10, 10)
    progress.finish()
    assert log.getvalue() == ""
