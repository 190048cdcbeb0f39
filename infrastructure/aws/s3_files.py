"""S3 objects behind the FileSource port."""

from __future__ import annotations

import errno
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any

from application.ports import LocalFile
from domain.clock import utc_naive
from domain.errors import DatalakepError, TerminalError, TransientError
from domain.source import ObjectInfo
from infrastructure.aws.errors import error_code, is_transient
from infrastructure.aws.s3_reports import is_own_output
from infrastructure.aws.s3_uri import parse_s3_uri, s3_uri
from infrastructure.scratch import free_bytes, scratch_prefix, spool_dir

_CHUNK = 1 << 20
# HEAD responses have no body, so S3 can only say "404" or "403" there.
_NOT_FOUND = frozenset({"404", "NotFound", "NoSuchKey", "NoSuchBucket", "NoSuchVersion"})
_DENIED = frozenset({"403", "Forbidden", "AccessDenied", "AllAccessDisabled", "InvalidAccessKeyId"})
_CHANGED = frozenset({"412", "PreconditionFailed"})
# A suffix only helps a person reading the spool dir; odd ones are dropped
# rather than let a key choose arbitrary file name characters.
_PLAIN_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,10}")


@dataclass(frozen=True)
class _Pin:
    """What a GET must match to return the bytes that head() described."""

    version_id: str | None
    etag: str | None
    size: int = 0
    # The object carries the metadata datalakeP puts on what it writes itself.
    report: bool = False

    @classmethod
    def of(cls, response: dict[str, Any]) -> _Pin:
        version_id = response.get("VersionId")
        # "null" is the version of objects written while versioning was off or
        # suspended; it is overwritten in place, so only the ETag identifies it.
        if version_id == "null":
            version_id = None
        return cls(
            version_id=version_id,
            etag=str(response["ETag"]),
            size=int(response.get("ContentLength", response.get("Size", 0))),
            report=is_own_output(response.get("Metadata") or {}),
        )

    @classmethod
    def of_info(cls, info: ObjectInfo) -> _Pin:
        """The pin of the version ``head`` described in ``info``.

        ``head`` reports the ETag as the version where there is no VersionId.
        """
        etag = None if info.etag is None else f'"{info.etag}"'
        version_id = info.version if info.version not in (None, info.etag) else None
        return cls(version_id=version_id, etag=etag, size=info.size)

    @property
    def version(self) -> str:
        return self.version_id or str(self.etag).strip('"')

    def get_args(self) -> dict[str, str]:
        if self.version_id:
            return {"VersionId": self.version_id}
        return {"IfMatch": self.etag} if self.etag else {}


class S3FileSource:
    """Reads ``s3://bucket/key`` objects; the version is the S3 VersionId, else the ETag.

    ``fetch`` downloads exactly the version its ObjectInfo (from ``head``)
    names, by VersionId or If-Match on the ETag, so the bytes loaded always
    match the version written to the ledger even if the object is overwritten
    in between.

    In a versioned bucket that GET needs s3:GetObjectVersion besides
    s3:GetObject. Without s3:ListBucket, S3 answers 403 rather than 404 for a
    missing key, so a missing object then shows up as ``access_denied``.
    """

    def __init__(self, client: Any | None = None, spool_dir: Path | None = None) -> None:
        self._client = client
        self._spool_dir = spool_dir

    @property
    def client(self) -> Any:
        if self._client is None:
            from infrastructure.aws.clients import aws_client

            self._client = aws_client("s3")
        return self._client

    # ------------------------------------------------------------- FileSource

    def head(self, uri: str) -> ObjectInfo:
        bucket, key = _location(uri)
        pin, modified = self._head(bucket, key, uri)
        return ObjectInfo(
            uri=s3_uri(bucket, key),
            size=pin.size,
            version=pin.version,
            etag=str(pin.etag).strip('"'),
            datalakep_output=pin.report,
            last_modified=modified,
        )

    @contextmanager
    def fetch(self, info: ObjectInfo) -> Iterator[LocalFile]:
        uri = info.uri
        bucket, key = _location(uri)
        pin = _Pin.of_info(info)
        directory = self._spool_dir or spool_dir()
        free = free_bytes(directory)
        if pin.size > free:
            raise _no_room(uri, directory, pin.size, free)
        spool = tempfile.NamedTemporaryFile(  # noqa: SIM115 - kept past this block, removed below
            prefix=scratch_prefix(), suffix=_suffix(key), dir=directory, delete=False
        )
        path = Path(spool.name)
        try:
            try:
                with spool:
                    size = self._download(bucket, key, uri, pin, spool)
            except OSError as error:
                if error.errno != errno.ENOSPC:
                    raise
                raise _no_room(uri, directory, pin.size, free_bytes(directory)) from None
            yield LocalFile(path=path, size=size)
        finally:
            path.unlink(missing_ok=True)

    def read_range(self, info: ObjectInfo, start: int, length: int) -> bytes:
        """``length`` bytes of the version ``info`` describes, from ``start`` (a ranged GET)."""
        bucket, key = _location(info.uri)
        pin = _Pin.of_info(info)
        end = min(info.size, start + length) - 1
        if end < start:
            return b""
        response = _call(
            "fetch",
            info.uri,
            self.client.get_object,
            Bucket=bucket,
            Key=key,
            Range=f"bytes={start}-{end}",
            **pin.get_args(),
        )
        body = response["Body"]
        try:
            data: bytes = body.read()
        finally:
            body.close()
        return data

    # ------------------------------------------------------------- listing

    def list_objects(
        self, bucket: str, prefix: str = "", page_size: int = 1000
    ) -> Iterator[ObjectInfo]:
        """The current objects under ``prefix``, versions as ``head`` reports them.

        In a versioned bucket that takes ListObjectVersions (and
        s3:ListBucketVersions): a plain listing only has ETags, which would
        never match the VersionIds recorded in the ledger.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        where = f"s3://{bucket}/{prefix}"
        pages = {"PaginationConfig": {"PageSize": page_size}}
        try:
            if self._versioned(bucket):
                paginator = self.client.get_paginator("list_object_versions")
                for page in paginator.paginate(Bucket=bucket, Prefix=prefix, **pages):
                    for item in page.get("Versions", []):
                        if item.get("IsLatest"):
                            yield _listed(bucket, item)
            else:
                paginator = self.client.get_paginator("list_objects_v2")
                for page in paginator.paginate(Bucket=bucket, Prefix=prefix, **pages):
                    for item in page.get("Contents", []):
                        yield _listed(bucket, item)
        except ClientError as error:
            raise _s3_error(error, "list", where) from None
        except BotoCoreError as error:
            raise _unreachable(error, "list", where) from None

    # ------------------------------------------------------------- internals

    def _head(self, bucket: str, key: str, uri: str) -> tuple[_Pin, datetime | None]:
        response = _call("head", uri, self.client.head_object, Bucket=bucket, Key=key)
        modified = response.get("LastModified")
        return _Pin.of(response), modified if modified is None else utc_naive(modified)

    def _download(self, bucket: str, key: str, uri: str, pin: _Pin, spool: IO[bytes]) -> int:
        from botocore.exceptions import BotoCoreError

        response = _call(
            "fetch", uri, self.client.get_object, Bucket=bucket, Key=key, **pin.get_args()
        )
        body = response["Body"]
        written = 0
        try:
            # Chunked copy: memory stays at one chunk whatever the object's size.
            for chunk in body.iter_chunks(_CHUNK):
                spool.write(chunk)
                written += len(chunk)
        except BotoCoreError as error:  # the connection broke mid-body
            raise _unreachable(error, "fetch", uri) from None
        finally:
            body.close()
        expected = response.get("ContentLength")
        if expected is not None and written != int(expected):
            raise TransientError(
                f"{uri}: read {written} of {expected} bytes", code="s3_unavailable", source=uri
            )
        return written

    def _versioned(self, bucket: str) -> bool:
        response = self.client.get_bucket_versioning(Bucket=bucket)
        return response.get("Status") in ("Enabled", "Suspended")


def _location(uri: str) -> tuple[str, str]:
    try:
        return parse_s3_uri(uri)
    except ValueError as error:
        # Terminal, not ValueError: a bad URI in a message must be reported
        # like any other bad input, not crash the worker.
        raise TerminalError(str(error), code="invalid_uri", source=uri) from None


def _suffix(key: str) -> str:
    suffix = PurePosixPath(key).suffix
    return suffix if _PLAIN_SUFFIX.fullmatch(suffix) else ""


def _listed(bucket: str, item: dict[str, Any]) -> ObjectInfo:
    pin = _Pin.of(item)
    return ObjectInfo(
        uri=s3_uri(bucket, item["Key"]),
        size=int(item["Size"]),
        version=pin.version,
        etag=str(pin.etag).strip('"'),
        last_modified=_modified(item),
    )


def _modified(response: dict[str, Any]) -> datetime | None:
    """LastModified as naive UTC, to the second as HEAD gives it (a listing has ms)."""
    modified = response.get("LastModified")
    return None if modified is None else utc_naive(modified).replace(microsecond=0)


def _call(action: str, uri: str, operation: Any, **kwargs: Any) -> dict[str, Any]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        response: dict[str, Any] = operation(**kwargs)
    except ClientError as error:
        raise _s3_error(error, action, uri) from None
    except BotoCoreError as error:
        raise _unreachable(error, action, uri) from None
    return response


def _s3_error(error: Any, action: str, uri: str) -> DatalakepError:
    code = error_code(error)
    if code in _NOT_FOUND:
        return TerminalError(f"{uri}: no such object", code="not_found", source=uri)
    if code in _DENIED:
        return TerminalError(f"{uri}: access denied ({action})", code="access_denied", source=uri)
    if code in _CHANGED:
        # Only the current version can be read now; a retry heads it afresh.
        return TransientError(
            f"{uri}: the object was overwritten while being read",
            code="version_changed",
            source=uri,
        )
    if is_transient(error):
        return TransientError(
            f"{uri}: S3 said {code} ({action})", code="s3_unavailable", source=uri
        )
    return TerminalError(f"{uri}: S3 said {code} ({action})", code="s3_error", source=uri)


def _no_room(uri: str, directory: Path, need: int, free: int) -> TransientError:
    # Transient: the space may be freed (a sweep, another file done), or another
    # worker with more of it may take the message.
    return TransientError(
        f"{uri}: {need:,} bytes to download, {free:,} bytes free in {directory}",
        code="scratch_full",
        source=uri,
        directory=str(directory),
    )


def _unreachable(error: Exception, action: str, uri: str) -> TransientError:
    return TransientError(
        f"{uri}: S3 unreachable ({type(error).__name__}, {action})",
        code="s3_unavailable",
        source=uri,
    )
