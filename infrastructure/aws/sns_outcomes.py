"""File outcomes published to an SNS topic, one JSON message per file.

Whoever uploads a file can subscribe (e-mail, SQS, a chat hook) and learn what
became of it without looking in the bucket. ``status`` and ``table`` are also
message attributes, so a subscription filter policy such as
``{"status": ["rejected", "failed"]}`` sends an uploader only the files that
need them.
"""

from __future__ import annotations

import json
from typing import Any

from application.outcomes import FileOutcome
from domain.errors import ConfigurationError, TransientError
from infrastructure.aws.errors import error_code, is_transient
from infrastructure.aws.s3_uri import parse_s3_uri

# SNS refuses empty attribute values; a file without a table (unreadable, ignored) gets this.
NO_TABLE = "none"


def outcome_message(outcome: FileOutcome) -> dict[str, Any]:
    """The notification's JSON body, without the presigned URL."""
    return {
        "source": outcome.source,
        "version": outcome.version,
        "status": outcome.status.value,
        "table": outcome.table,
        "load_id": ",".join(outcome.load_ids) or None,
        "rows_read": outcome.rows_read,
        "rows_loaded": outcome.rows_loaded,
        "rows_rejected": outcome.rows_rejected,
        "reason": outcome.reason,
        "error_code": outcome.error_code,
        "first_rejects": [
            {
                "sheet": r.sheet,
                "row": r.row,
                "column": r.column,
                "reason": r.reason.value,
                "message": r.message,
            }
            for r in outcome.first_rejects
        ],
        "rejects_report": outcome.rejects_report,
    }


class SnsOutcomeNotifier:
    """An ``OutcomeListener`` publishing to ``topic_arn``.

    With ``report_url_seconds`` > 0 the message also carries a presigned GET URL
    to the annotated workbook, valid that long: the uploader opens the report
    without S3 credentials. Presigning is local signing, no request to S3.
    """

    def __init__(
        self,
        topic_arn: str,
        *,
        report_url_seconds: int,
        client: Any | None = None,
        s3_client: Any | None = None,
    ) -> None:
        self._topic_arn = topic_arn
        self._report_url_seconds = report_url_seconds
        self._client = client
        self._s3_client = s3_client

    def _aws(self, service: str) -> Any:
        from infrastructure.aws.clients import aws_client

        return aws_client(service)

    def file_outcome(self, outcome: FileOutcome) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        body = outcome_message(outcome)
        url = self._presign(outcome.rejects_report) if self._report_url_seconds > 0 else None
        if url is not None:
            body["rejects_report_url"] = url
        attributes = {
            "status": {"DataType": "String", "StringValue": outcome.status.value},
            "table": {"DataType": "String", "StringValue": outcome.table or NO_TABLE},
        }
        client = self._client = self._client or self._aws("sns")
        try:
            client.publish(
                TopicArn=self._topic_arn,
                Message=json.dumps(body, ensure_ascii=False),
                MessageAttributes=attributes,
            )
        except ClientError as error:
            code = error_code(error)
            if is_transient(error):
                raise TransientError(
                    f"cannot publish the outcome of {outcome.source}: SNS said {code}",
                    code="sns_unavailable",
                ) from None
            # Not found, denied: every notification would fail the same way.
            raise ConfigurationError(
                f"cannot publish to {self._topic_arn}: SNS said {code}"
            ) from None
        except BotoCoreError as error:
            raise TransientError(
                f"cannot publish the outcome of {outcome.source}: SNS unreachable "
                f"({type(error).__name__})",
                code="sns_unavailable",
            ) from None

    def _presign(self, location: str | None) -> str | None:
        if location is None:
            return None
        try:
            bucket, key = parse_s3_uri(location)
        except ValueError:
            return None  # a local report (CLI): nothing to presign
        client = self._s3_client = self._s3_client or self._aws("s3")
        url: str = client.generate_presigned_url(
            "get_object",
            Params={"Bucket": bucket, "Key": key},
            ExpiresIn=self._report_url_seconds,
        )
        return url
