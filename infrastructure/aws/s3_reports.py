"""Rejects reports stored in S3, beside the source file they describe."""

from __future__ import annotations

import hashlib
import posixpath
import tempfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from domain.errors import ConfigurationError, TransientError
from domain.rejects import RejectsReport
from infrastructure.aws.errors import error_code, is_transient
from infrastructure.aws.s3_uri import parse_s3_uri, s3_uri
from infrastructure.reports.local import LocalRejectsReportWriter
from infrastructure.scratch import scratch_prefix

# User metadata on every object datalakeP writes to S3 (x-amz-meta-datalakep-output).
# An event for such an object is acknowledged and never ingested, wherever it lands:
# a report of a report would beget another, without end.
OUTPUT_METADATA = {"datalakep-output": "rejects-report"}


def is_own_output(metadata: Mapping[str, str]) -> bool:
    """Whether an object's user metadata (as head_object returns it) marks it as ours."""
    return any(key.lower() in OUTPUT_METADATA for key in metadata)


MAX_KEY_BYTES = 1024  # S3's limit, in UTF-8 bytes

_CONTENT_TYPES = {
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".csv": "text/csv; charset=utf-8",
}


class S3RejectsReportWriter:
    """Writes ``s3://<bucket>/<prefix><source dir>/<source>.<load id>.rejects.{xlsx,csv}``.

    The report goes to the source's own bucket, so whoever may drop files there
    finds the report in the same place, under a prefix that the source event
    notifications must exclude (or the report would be ingested in turn).
    Both files are built locally (the workbook writer needs a seekable file)
    in a private temporary directory under ``local_dir``, removed afterwards.
    """

    def __init__(self, local_dir: Path, *, prefix: str, client: Any | None = None) -> None:
        self._local_dir = local_dir
        self._prefix = prefix if not prefix or prefix.endswith("/") else f"{prefix}/"
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            from infrastructure.aws.clients import aws_client

            self._client = aws_client("s3")
        return self._client

    def key_prefix(self, source_uri: str) -> tuple[str, str]:
        """``(bucket, key prefix)`` under which the report on ``source_uri`` goes."""
        bucket, key = parse_s3_uri(source_uri)
        directory = _normalised(PurePosixPath(key).parent.as_posix())
        return bucket, f"{self._prefix}{directory}/" if directory else self._prefix

    def write(self, report: RejectsReport) -> str:
        """Upload both files; return the workbook's s3:// URI.

        Raises ValueError for a source that is not in S3.
        """
        bucket, key_prefix = self.key_prefix(report.source_uri)
        self._local_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(
            prefix=f"{scratch_prefix()}rejects-", dir=self._local_dir
        ) as tmp:
            local = LocalRejectsReportWriter(Path(tmp))
            local.write(report)
            paths = local.paths(report)
            # The CSV first: once the returned workbook exists, so does its CSV.
            self._upload(paths.csv, bucket, fit_key(f"{key_prefix}{paths.csv.name}"))
            xlsx_key = fit_key(f"{key_prefix}{paths.xlsx.name}")
            self._upload(paths.xlsx, bucket, xlsx_key)
        return s3_uri(bucket, xlsx_key)

    def _upload(self, path: Path, bucket: str, key: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        uri = s3_uri(bucket, key)
        # put_object, not upload_file: reports stay far below the 5 GB single-PUT
        # limit, and its errors arrive as ClientError rather than wrapped.
        try:
            with path.open("rb") as body:
                self.client.put_object(
                    Bucket=bucket,
                    Key=key,
                    Body=body,
                    ContentType=_CONTENT_TYPES[path.suffix],
                    Metadata=OUTPUT_METADATA,
                )
        except ClientError as error:
            code = error_code(error)
            if is_transient(error):
                raise TransientError(
                    f"cannot upload the rejects report to {uri}: S3 said {code}",
                    code="s3_unavailable",
                    target=uri,
                ) from None
            # Denied, no such bucket...: every report would fail the same way.
            raise ConfigurationError(
                f"cannot upload the rejects report to {uri}: S3 said {code}", target=uri
            ) from None
        except BotoCoreError as error:
            raise TransientError(
                f"cannot upload the rejects report to {uri}: S3 unreachable "
                f"({type(error).__name__})",
                code="s3_unavailable",
                target=uri,
            ) from None


def _normalised(directory: str) -> str:
    """``directory`` without ``.``, ``..`` or empty segments: a report stays under the prefix.

    S3 keys are plain strings, so ``rejects/a/../../x`` would be stored as given;
    a person or a tool that resolves it would find the report outside the prefix.
    """
    parts: list[str] = []
    for part in posixpath.normpath(f"/{directory}").split("/"):
        if part not in ("", ".", ".."):
            parts.append(part)
    return "/".join(parts)


def fit_key(key: str) -> str:
    """``key``, or when S3 would refuse it as too long, a shorter one made from it.

    The shorter key keeps the start of the long one and its extension, with a hash
    of the rest in between: the same long key always gives the same short one (a
    retried message rewrites its report), and the workbook and CSV of one report
    still differ only by extension.
    """
    if len(key.encode("utf-8")) <= MAX_KEY_BYTES:
        return key
    stem, _, extension = key.rpartition(".")
    digest = hashlib.sha256(stem.encode("utf-8")).hexdigest()[:16]
    # The same room for every extension, so both files of a report share their head.
    room = MAX_KEY_BYTES - len(f"~{digest}.rejects.xlsx")
    head = stem.encode("utf-8")[:room].decode("utf-8", errors="ignore")
    return f"{head}~{digest}.rejects.{extension}"
