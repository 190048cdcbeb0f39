import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from infrastructure.readers.guards.inflate import member_chunks

XML = b"<row r='1'><c r='A1'><v>1</v></c></row>" * 20_000 + os.urandom(50_000)


@dataclass
class Built:
    archive: zipfile.ZipFile
    member: zipfile.ZipInfo


@pytest.fixture
def deflated(tmp_path: Path) -> Built:
    path = tmp_path / "book.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        out.writestr("xl/worksheets/sheet1.xml", XML)
    archive = zipfile.ZipFile(path)
    return Built(archive, archive.getinfo("xl/worksheets/sheet1.xml"))


def test_the_fast_path_inflates_exactly_what_zipfile_does_in_bounded_chunks(
    deflated: Built,
) -> None:
    chunks = list(member_chunks(deflated.archive, deflated.member, 64 * 1024))

    assert b"".join(chunks) == XML == deflated.archive.read(deflated.member)
    assert max(len(c) for c in chunks) <= 64 * 1024


def test_a_stored_member_goes_through_zipfile(tmp_path: Path) -> None:
    path = tmp_path / "stored.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as out:
        out.writestr("a.xml", XML)
    archive = zipfile.ZipFile(path)

    assert b"".join(member_chunks(archive, archive.getinfo("a.xml"), 1000)) == XML


def test_a_member_inflating_past_its_declared_size_is_refused(deflated: Built) -> None:
    deflated.member.file_size = len(XML) // 2  # what a lying central directory says

    with pytest.raises(zipfile.BadZipFile, match="inflates past its declared"):
        b"".join(member_chunks(deflated.archive, deflated.member, 1 << 20))


def test_a_cut_deflate_stream_is_refused(deflated: Built) -> None:
    deflated.member.compress_size //= 2

    with pytest.raises(zipfile.BadZipFile, match="truncated"):
        b"".join(member_chunks(deflated.archive, deflated.member, 1 << 20))


def test_a_bad_local_header_is_refused(deflated: Built) -> None:
    deflated.member.header_offset += 1

    with pytest.raises(zipfile.BadZipFile, match="local file header"):
        b"".join(member_chunks(deflated.archive, deflated.member, 1 << 20))
