"""Rows staged in S3 as one Parquet object for Redshift's COPY, and always removed."""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa

from domain.errors import ConfigurationError, WarehouseUnavailableError
from infrastructure.warehouse.redshift_options import Staging

log = logging.getLogger(__name__)
# Errors a retry will not cure: the bucket or the permissions are wrong.
_MISCONFIGURED = frozenset(
    {"AccessDenied", "NoSuchBucket", "InvalidAccessKeyId", "AllAccessDisabled", "InvalidBucketName"}
)


class ParquetStager:
    """Writes an Arrow table to ``s3://bucket/prefix<uuid>.parquet`` for one COPY.

    ``s3`` is a boto3 S3 client; by default the shared one from
    :func:`infrastructure.aws.clients.aws_client`, made on first use.
    """

    def __init__(self, staging: Staging, s3: Any | None = None) -> None:
        self._staging = staging
        self._s3 = s3

    @property
    def client(self) -> Any:
        if self._s3 is None:
            from infrastructure.aws.clients import aws_client

            self._s3 = aws_client("s3")
        return self._s3

    @contextmanager
    def staged(self, rows: pa.Table) -> Iterator[str]:
        """Yield the object's s3:// URI; the object is deleted on exit, error or not."""
        import pyarrow.parquet as pq

        bucket = self._staging.bucket
        key = f"{self._staging.prefix}{uuid.uuid4().hex}.parquet"
        buffer = io.BytesIO()
        # Microsecond timestamps: COPY reads INT64 TIMESTAMP_MICROS; nanoseconds it does not.
        pq.write_table(rows, buffer, coerce_timestamps="us", allow_truncated_timestamps=False)
        buffer.seek(0)
        uri = f"s3://{bucket}/{key}"
        try:
            # Inside the try: a failed multipart upload may still leave an object behind.
            self._upload(buffer, bucket, key, uri)
            yield uri
        finally:
            self._delete(bucket, key)

    def _upload(self, buffer: io.BytesIO, bucket: str, key: str, uri: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.upload_fileobj(buffer, bucket, key)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _MISCONFIGURED:
                raise ConfigurationError(
                    f"cannot stage rows at {uri}: {code}", uri=uri, code_s3=code
                ) from exc
            raise WarehouseUnavailableError(f"cannot stage rows at {uri}: {exc}", uri=uri) from exc
        except BotoCoreError as exc:  # endpoint unreachable, timeouts
            raise WarehouseUnavailableError(f"cannot stage rows at {uri}: {exc}", uri=uri) from exc

    def _delete(self, bucket: str, key: str) -> None:
        try:
            self.client.delete_object(Bucket=bucket, Key=key)
        except Exception as exc:  # noqa: BLE001 - cleanup must not hide the load's own outcome
            # A leftover object costs storage, not correctness: a lifecycle rule on the
            # prefix is the backstop.
            log.warning("could not delete staged object s3://%s/%s: %s", bucket, key, exc)
