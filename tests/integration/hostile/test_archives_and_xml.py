"""Archive and XML attacks: refused with their reason, in bounded memory, and the process goes on.

Each case reads the hostile files and then a good workbook in one child
process, with the reader the containers build (so the forked parser and its
limits are part of what is tested).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.hostile.child import ChildRun, Outcome, read_in_child
from tests.integration.hostile.files import (
    BILLION_LAUGHS,
    EXTERNAL_ENTITY,
    GOOD_ROWS,
    good_workbook,
    many_small_parts,
    random_bytes,
    truncated,
    with_dtd,
    worksheet_bomb,
)
from tests.integration.readers.builders import ole2_file

pytestmark = pytest.mark.integration

# Peak RSS of the child (an idle one is ~140 MB with pyarrow and fastexcel loaded).
MEMORY_BOUND_MB = 400


def assert_survived(run: ChildRun, hostile: int) -> list[Outcome]:
    """The child ended normally within the memory bound and read the good file after the rest."""
    assert run.exited_normally, run.describe()
    assert 0 < run.peak_rss_mb < MEMORY_BOUND_MB, run.describe()
    *refused, good = run.outcomes
    assert len(refused) == hostile, run.describe()
    assert good.ok, good
    assert good.rows == {"Passengers": GOOD_ROWS}, good
    return refused


def assert_refused(outcome: Outcome, code: str, *reasons: str) -> None:
    assert not outcome.ok, outcome
    assert outcome.error_class == "UnreadableFileError", outcome
    assert outcome.code == code, outcome.message
    assert outcome.message is not None, outcome
    assert outcome.message.startswith(outcome.uri), outcome
    assert outcome.details["source"] == outcome.uri
    for reason in reasons:
        assert reason in outcome.message


def test_a_worksheet_that_inflates_1000x_is_a_zip_bomb(tmp_path: Path) -> None:
    bomb = worksheet_bomb(tmp_path / "bomb.xlsx", inflated_mb=64)
    assert bomb.stat().st_size < 200 * 1024

    [outcome] = assert_survived(read_in_child(bomb, good_workbook(tmp_path)), hostile=1)

    assert_refused(outcome, "zip_bomb", "'xl/worksheets/sheet1.xml'", "over the limit of 200x")
    assert outcome.details["ratio"] > 200


def test_an_archive_over_the_inflated_size_limit_is_a_zip_bomb(tmp_path: Path) -> None:
    # 80 parts of 1 MB, each too small for the ratio check: the total catches them.
    path = many_small_parts(tmp_path / "parts.xlsx", parts=80)
    limits = {"max_uncompressed_bytes": 64 * 1024 * 1024}

    run = read_in_child(path, good_workbook(tmp_path), limits=limits)

    [outcome] = assert_survived(run, hostile=1)
    assert_refused(outcome, "zip_bomb", "over the limit of 67,108,864")


def test_parts_nobody_reads_are_not_held_in_memory(tmp_path: Path) -> None:
    # 600 MB of XML parts that pass every zip guard. The preview's cut copy
    # of the package used to copy them all into memory (1.5 GB for 1,500).
    path = many_small_parts(tmp_path / "padded.xlsx", parts=600)

    [outcome] = assert_survived(read_in_child(path, good_workbook(tmp_path)), hostile=1)

    assert outcome.ok, outcome
    assert outcome.rows == {"Passengers": 5}, outcome


@pytest.mark.parametrize("attack", ["billion_laughs", "external_entity"])
def test_a_dtd_in_any_part_is_refused_before_an_xml_parser_sees_it(
    tmp_path: Path, attack: str
) -> None:
    declaration = BILLION_LAUGHS if attack == "billion_laughs" else EXTERNAL_ENTITY
    parts = {
        "sheet": "xl/worksheets/sheet1.xml",
        "sst": "xl/sharedStrings.xml",
        "workbook": "xl/workbook.xml",
    }
    files = [with_dtd(tmp_path / f"{attack}-{p}.xlsx", p, declaration) for p in parts]

    refused = assert_survived(read_in_child(*files, good_workbook(tmp_path)), hostile=3)

    for outcome, member in zip(refused, parts.values(), strict=True):
        assert_refused(outcome, "corrupt_workbook", f"part {member!r} declares a DTD")
        assert outcome.details["member"] == member
        # Nothing was expanded, nothing was read from the local disk.
        assert "lollol" not in str(outcome)
        assert "root:" not in str(outcome)


def test_broken_containers_are_refused_naming_what_is_wrong(tmp_path: Path) -> None:
    files = [
        truncated(tmp_path / "cut.xlsx"),
        random_bytes(tmp_path / "noise.xlsx"),
        ole2_file(tmp_path / "locked.xlsx", encrypted=True),
        random_bytes(tmp_path / "noise.csv"),
    ]

    cut, noise, locked, noise_csv = assert_survived(
        read_in_child(*files, good_workbook(tmp_path)), hostile=4
    )

    assert_refused(cut, "corrupt_workbook", "not a valid xlsx file", "truncated")
    assert_refused(noise, "corrupt_workbook", "neither a zip nor an OLE2 container")
    assert_refused(locked, "encrypted_workbook", "password-protected")
    assert_refused(noise_csv, "malformed_csv", "neither UTF-8 nor Windows-1252")
