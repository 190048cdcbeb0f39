"""Files on local disk, for the CLI and for runs with no cloud at all."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlparse

from application.ports import LocalFile
from domain.errors import TerminalError
from domain.source import ObjectInfo

_CHUNK = 1 << 20


def local_path(uri: str) -> Path:
    if uri.startswith("file://"):
        return Path(unquote(urlparse(uri).path))
    return Path(uri)


def file_uri(path: Path) -> str:
    """The identity a local file has in the ledger: its absolute path."""
    return path.resolve().as_uri()


class LocalFileSource:
    """Reads paths or ``file://`` URIs; the version of a file is its sha256.

    Hashing costs one sequential read (about 0.1 s for 65 MB), and makes a
    re-run of the same bytes under the same name a guaranteed skip.
    """

    def head(self, uri: str) -> ObjectInfo:
        path = local_path(uri)
        if not path.is_file():
            raise TerminalError(f"{uri}: no such file", code="not_found", source=uri)
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        return ObjectInfo(
            uri=file_uri(path), size=path.stat().st_size, version=f"sha256:{digest.hexdigest()}"
        )

    @contextmanager
    def fetch(self, info: ObjectInfo) -> Iterator[LocalFile]:
        uri = info.uri
        path = local_path(uri)
        if not path.is_file():
            raise TerminalError(f"{uri}: no such file", code="not_found", source=uri)
        yield LocalFile(path=path, size=path.stat().st_size)
