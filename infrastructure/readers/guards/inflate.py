"""A zip member's bytes, inflated in bounded chunks, fast.

The extent guard reads every worksheet's XML before calamine does: 464 MB for a
million-row sheet. Python's zipfile inflates that in ~0.8 s (zlib, plus a CRC
over every byte); ISA-L's inflate takes ~0.25 s. The guard needs no CRC:
calamine's own zip reader checks it when it parses the same member.

The fast path reads the member's deflate stream straight from the file. Anything
else (stored members, encryption, a file object rather than a path) goes
through zipfile.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from collections.abc import Iterator
from typing import cast

from isal import isal_zlib

_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")
_LOCAL_SIGNATURE = b"PK\x03\x04"
_ENCRYPTED = 0x1
_READ = 1 << 20
# isal's stub declares its error class as an instance of Exception.
_ISAL_ERROR = cast("type[Exception]", isal_zlib.error)


def member_chunks(archive: zipfile.ZipFile, member: zipfile.ZipInfo, size: int) -> Iterator[bytes]:
    """The inflated bytes of ``member``, ``size`` at most per chunk.

    Never more than the member's declared size in all: its central-directory
    entry is what the zip-bomb guard checked, so a stream that inflates past
    it is refused rather than followed.
    """
    fast = (
        isinstance(archive.filename, str)
        and member.compress_type == zipfile.ZIP_DEFLATED
        and not member.flag_bits & _ENCRYPTED
    )
    if not fast:
        yield from _zipfile_chunks(archive, member, size)
        return
    assert archive.filename is not None  # checked above; for mypy
    with open(archive.filename, "rb") as fh:
        fh.seek(member.header_offset)
        header = fh.read(_LOCAL_HEADER.size)
        if len(header) < _LOCAL_HEADER.size or header[:4] != _LOCAL_SIGNATURE:
            raise zipfile.BadZipFile(f"{member.filename}: bad local file header")
        fields = _LOCAL_HEADER.unpack(header)
        name_length, extra_length = fields[-2], fields[-1]
        fh.seek(name_length + extra_length, 1)
        inflater = isal_zlib.decompressobj(-15)
        left, produced = member.compress_size, 0
        pending = b""
        while True:
            if not pending:
                if left <= 0 or inflater.eof:
                    break
                pending = fh.read(min(_READ, left))
                if not pending:
                    raise zipfile.BadZipFile(f"{member.filename}: truncated")
                left -= len(pending)
            try:
                chunk = inflater.decompress(pending, size)
            except _ISAL_ERROR as exc:
                # ISA-L's error is no zlib.error; callers know damage by the latter.
                raise zlib.error(f"{member.filename}: {exc}") from exc
            pending = inflater.unconsumed_tail
            produced += len(chunk)
            if produced > member.file_size:
                raise zipfile.BadZipFile(
                    f"{member.filename}: inflates past its declared {member.file_size:,} bytes"
                )
            if chunk:
                yield chunk
        if not inflater.eof:
            raise zipfile.BadZipFile(f"{member.filename}: truncated deflate stream")


def _zipfile_chunks(
    archive: zipfile.ZipFile, member: zipfile.ZipInfo, size: int
) -> Iterator[bytes]:
    """zipfile's own inflate: for members ISA-L cannot take from the file directly."""
    try:
        with archive.open(member) as stream:
            while chunk := stream.read(size):
                yield chunk
    except (NotImplementedError, RuntimeError, EOFError) as exc:
        # zipfile's words for an unsupported compression method, an
        # encrypted member and a truncated one: damage, like BadZipFile.
        raise zipfile.BadZipFile(f"{member.filename}: {exc}") from exc
