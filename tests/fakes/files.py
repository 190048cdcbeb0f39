"""An in-memory FileSource: objects are bytes under URIs."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from application.ports import LocalFile
from domain.errors import TerminalError
from domain.source import ObjectInfo


@dataclass
class _Object:
    data: bytes
    version: str


class InMemoryFileSource:
    def __init__(self) -> None:
        self.objects: dict[str, _Object] = {}
        self.fetched: list[str] = []
        self.heads: list[str] = []  # the URIs head() was asked for, in order

    def put(self, uri: str, data: bytes, version: str | None = None) -> ObjectInfo:
        """Store (or overwrite, as a new version) an object."""
        self.objects[uri] = _Object(data, version or f"sha256:{hashlib.sha256(data).hexdigest()}")
        return self._info(uri)

    def head(self, uri: str) -> ObjectInfo:
        self.heads.append(uri)
        return self._info(uri)

    def _info(self, uri: str) -> ObjectInfo:
        obj = self.objects.get(uri)
        if obj is None:
            raise TerminalError(f"{uri}: no such object", code="not_found", source=uri)
        return ObjectInfo(uri=uri, size=len(obj.data), version=obj.version)

    def list_objects(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        """The objects under ``s3://bucket/prefix``, in key order as S3 lists them."""
        start = f"s3://{bucket}/{prefix}"
        for uri in sorted(u for u in self.objects if u.startswith(start)):
            yield self._info(uri)

    @contextmanager
    def fetch(self, info: ObjectInfo) -> Iterator[LocalFile]:
        uri = info.uri
        obj = self.objects.get(uri)
        if obj is None:
            raise TerminalError(f"{uri}: no such object", code="not_found", source=uri)
        self.fetched.append(uri)
        # The path is only a name: InMemoryWorkbookReader looks sheets up by URI.
        yield LocalFile(path=Path(uri.split("://", 1)[-1]), size=len(obj.data))
