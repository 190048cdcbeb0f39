"""Whether a Lambda invocation can ingest an object: scratch space in /tmp and time left.

Lambda's /tmp is small (512 MB by default) and its deadline is hard. The object's
size says little about either: what counts is the parsed rows' Arrow file, which
scratch_estimate.py costs from the zip directory. Here that directory is read
from S3 by ranged GETs (a few KB), before anything is downloaded.
"""

from __future__ import annotations

import io
import logging
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from domain.errors import DatalakepError
from domain.printable import printable
from domain.source import ObjectInfo
from infrastructure.readers.guards.checks import SUPPORTED, FileKind
from infrastructure.readers.guards.scratch_estimate import ScratchEstimate, estimate, unzipped
from infrastructure.scratch import SHM_HEADROOM, free_bytes, shm_dir, spool_dir

log = logging.getLogger(__name__)

# The share of the time left that a file may be estimated to need: the rest is
# for the report, the commit and the estimate's own error.
TIME_MARGIN = 0.7
_READ_AHEAD = 64 * 1024


class ByteRanges(Protocol):
    def read_range(self, info: ObjectInfo, start: int, length: int) -> bytes: ...


class ScratchCapacity:
    """The LocalCapacity of a process whose scratch is the spool dir (and /dev/shm if any)."""

    def __init__(self, files: ByteRanges, spool: Path | None = None) -> None:
        self._files = files
        self._spool = spool

    def shortfall(self, info: ObjectInfo, seconds_left: float | None) -> str | None:
        kind = SUPPORTED.get(info.suffix)
        if kind is None:
            return None  # refused by the reader at once, whatever its size
        try:
            needed = self._estimate(info, kind)
        except DatalakepError as error:
            log.warning("%s: no scratch estimate (%s)", printable(info.uri), printable(error))
            return None
        spool = self._spool or spool_dir()
        shm = shm_dir()
        in_shm = shm is not None and free_bytes(shm) * (1 - SHM_HEADROOM) >= needed.arrow_bytes
        need = info.size if in_shm else needed.scratch_bytes(info.size)
        free = free_bytes(spool)
        if need > free:
            return (
                f"needs about {need / 2**20:,.0f} MB of scratch, {spool} has "
                f"{free / 2**20:,.0f} MB free"
            )
        if seconds_left is not None and needed.seconds > seconds_left * TIME_MARGIN:
            return f"needs about {needed.seconds:,.0f} s, {seconds_left:,.0f} s left"
        return None

    def _estimate(self, info: ObjectInfo, kind: FileKind) -> ScratchEstimate:
        if kind is FileKind.CSV:
            # Read in this process: no Arrow file, only the download.
            return replace(unzipped(info.size), arrow_bytes=0)
        source = io.BufferedReader(_RangeFile(self._files, info), buffer_size=_READ_AHEAD)
        return estimate(source, info.size, kind.is_zip)


class _RangeFile(io.RawIOBase):
    """A read-only, seekable file over ranged GETs of one object version."""

    def __init__(self, files: ByteRanges, info: ObjectInfo) -> None:
        self._files = files
        self._info = info
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._info.size}
        self._position = max(0, base[whence] + offset)
        return self._position

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._files.read_range(self._info, self._position, len(buffer))
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)
