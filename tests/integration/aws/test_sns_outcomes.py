"""The SNS outcome adapter against moto in server mode: what fails, fails as our errors."""

from __future__ import annotations

import pytest

from application.outcomes import FileOutcome, FileStatus
from domain.errors import ConfigurationError
from infrastructure.aws.sns_outcomes import SnsOutcomeNotifier

pytestmark = pytest.mark.integration


def test_a_missing_topic_is_a_configuration_error_naming_it(aws: str) -> None:
    topic = "arn:aws:sns:us-east-1:123456789012:no-such-topic"
    notifier = SnsOutcomeNotifier(topic, report_url_seconds=0)
    with pytest.raises(ConfigurationError, match="no-such-topic"):
        notifier.file_outcome(FileOutcome(source="s3://b/k.xlsx", status=FileStatus.LOADED))


def test_a_local_report_gets_no_presigned_url(aws: str) -> None:
    from infrastructure.aws.clients import aws_client

    topic = aws_client("sns").create_topic(Name="t")["TopicArn"]
    queue = aws_client("sqs").create_queue(QueueName="q")["QueueUrl"]
    arn = aws_client("sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
    aws_client("sns").subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=arn["Attributes"]["QueueArn"],
        Attributes={"RawMessageDelivery": "true"},
    )
    outcome = FileOutcome(
        source="data/in.xlsx", status=FileStatus.REJECTED, rejects_report="data/rejects/in.xlsx"
    )

    SnsOutcomeNotifier(topic, report_url_seconds=60).file_outcome(outcome)

    [message] = aws_client("sqs").receive_message(QueueUrl=queue, WaitTimeSeconds=1)["Messages"]
    assert '"rejects_report": "data/rejects/in.xlsx"' in message["Body"]
    assert "rejects_report_url" not in message["Body"]
