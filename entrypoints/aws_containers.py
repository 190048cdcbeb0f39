"""AWS mode's containers: the Lambda's, the worker's and reconcile's, on containers.Core.

S3 in, S3 rejects reports out, SQS between the Lambda and the worker; boto3 is
imported when a client is first made.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from application.handle_event import HandleStorageEvent, LocalCapacity
from application.ports import (
    DeadLetterQueue,
    FileSource,
    MessageSource,
    OutcomeListener,
    RejectsReportWriter,
)
from application.reconcile import Reconcile
from application.worker import QueueWorker, WorkerSettings
from domain.errors import ConfigurationError
from domain.events import OwnOutputs, SourceRule
from domain.events import rules_from_config as source_rules_from_config
from entrypoints.containers import Core, configure, ingest_factory, shipped_setting
from entrypoints.lean_imports import providers


def build_source_rules(items: list[Mapping[str, Any]] | None) -> tuple[SourceRule, ...]:
    """Config's aws.sources, plus $DATALAKEP_ALLOWED_SOURCES ("bucket/prefix,bucket2").

    An empty allow-list is refused: every event would be acknowledged and deleted
    unread, which looks exactly like a quiet day.
    """
    rules = list(source_rules_from_config(items))
    for item in os.environ.get("DATALAKEP_ALLOWED_SOURCES", "").split(","):
        bucket, _, prefix = item.strip().partition("/")
        if bucket:
            rules.append(SourceRule(bucket, prefix))
    if not rules:
        raise ConfigurationError(
            "no allowed sources: set aws.sources in the config (a list of {bucket, prefix}) "
            "or DATALAKEP_ALLOWED_SOURCES=bucket/prefix,...; with none, every event "
            "would be dropped unread"
        )
    return tuple(rules)


def build_own_outputs(rejects_prefix: str | None, staging: Mapping[str, Any] | None) -> OwnOutputs:
    """Where the service writes to S3 itself: the rejects prefix, and Redshift's staging."""
    rules: tuple[SourceRule, ...] = ()
    if staging and staging.get("bucket") and staging.get("prefix"):
        rules = (SourceRule(str(staging["bucket"]), str(staging["prefix"])),)
    prefix = str(shipped_setting("aws", "rejects_prefix", rejects_prefix))
    return OwnOutputs(prefixes=(prefix,), staging=rules)


def build_aws_client(service: str) -> Any:
    """A boto3 client; the containers hold one per service as a Singleton."""
    from infrastructure.aws.clients import aws_client

    return aws_client(service)


def build_s3_files(client: Any) -> FileSource:
    from infrastructure.aws.s3_files import S3FileSource

    return S3FileSource(client)


def build_s3_reports(prefix: str | None, client: Any) -> RejectsReportWriter:
    import tempfile

    from infrastructure.aws.s3_reports import S3RejectsReportWriter

    return S3RejectsReportWriter(
        Path(tempfile.gettempdir()),
        prefix=str(shipped_setting("aws", "rejects_prefix", prefix)),
        client=client,
    )


def build_queue(
    queue_url: str | None, visibility_timeout: int | None, client: Callable[[], Any]
) -> MessageSource | None:
    """The queue at ``queue_url``, if one is configured; ``client`` is made only then."""
    if not queue_url:
        return None
    from infrastructure.aws.sqs_messages import SqsMessageSource

    timeout = int(shipped_setting("worker", "visibility_timeout", visibility_timeout))
    return SqsMessageSource(queue_url, client(), visibility_timeout=timeout)


def build_worker_settings(worker: Mapping[str, Any] | None) -> WorkerSettings:
    """The ``worker:`` section, each setting missing there taken from the shipped YAML."""
    worker = worker or {}
    names = [f.name for f in fields(WorkerSettings)]
    return WorkerSettings(**{n: int(shipped_setting("worker", n, worker.get(n))) for n in names})


def build_outcome_listeners(
    metrics: Mapping[str, Any] | bool | None,
    topic_arn: str | None,
    report_url_seconds: int | None,
    sns_client: Callable[[], Any],
    s3_client: Callable[[], Any],
) -> tuple[OutcomeListener, ...]:
    """EMF metrics unless ``metrics: false``; SNS notifications when a topic is set."""
    listeners: list[OutcomeListener] = []
    if isinstance(metrics, Mapping):
        from infrastructure.observability.emf import EmfMetrics

        namespace = metrics.get("namespace")
        if not namespace:
            raise ConfigurationError("metrics.namespace is required unless metrics: false")
        listeners.append(EmfMetrics(str(namespace)))
    elif metrics not in (False, None):
        raise ConfigurationError("metrics must be a mapping with a namespace, or false")
    if topic_arn:
        from infrastructure.aws.sns_outcomes import SnsOutcomeNotifier

        url_seconds = shipped_setting("aws", "outcome_report_url_seconds", report_url_seconds)
        listeners.append(
            SnsOutcomeNotifier(
                topic_arn,
                report_url_seconds=int(url_seconds),
                client=sns_client(),
                s3_client=s3_client(),
            )
        )
    return tuple(listeners)


class AwsCore(Core):
    """S3 in, S3 rejects reports out: what the Lambda and the worker share."""

    # Made when first needed (boto3 is imported then), shared by every adapter here.
    s3_client = providers.Singleton(build_aws_client, "s3")
    sqs_client = providers.Singleton(build_aws_client, "sqs")
    sns_client = providers.Singleton(build_aws_client, "sns")
    files = providers.Singleton(build_s3_files, s3_client)
    reports = providers.Singleton(build_s3_reports, Core.config.aws.rejects_prefix, s3_client)
    sources = providers.Singleton(build_source_rules, Core.config.aws.sources)
    own_outputs = providers.Singleton(
        build_own_outputs, Core.config.aws.rejects_prefix, Core.config.warehouse.staging
    )
    outcomes = providers.Singleton(
        build_outcome_listeners,
        Core.config.metrics,
        Core.config.aws.outcome_topic_arn,
        Core.config.aws.outcome_report_url_seconds,
        sns_client.provider,
        s3_client.provider,
    )
    ingest = ingest_factory(files, reports, providers.Object(None), outcomes)
    # The worker's queue as the Lambda sees it: where it hands heavy files, and where
    # reconcile sends the files it finds missing.
    hand_off = providers.Singleton(
        build_queue,
        Core.config.aws.worker_queue_url,
        Core.config.worker.visibility_timeout,
        sqs_client.provider,
    )


def build_capacity(files: FileSource) -> LocalCapacity:
    from infrastructure.aws.capacity import ScratchCapacity
    from infrastructure.aws.s3_files import S3FileSource

    assert isinstance(files, S3FileSource)
    return ScratchCapacity(files)


def handle_event_factory(
    **lambda_only: providers.Provider[Any],
) -> providers.Factory[HandleStorageEvent]:
    """The S3-event use case on AwsCore's wiring; the Lambda adds its hand-off and capacity."""
    return providers.Factory(
        HandleStorageEvent,
        ingest=AwsCore.ingest,
        files=AwsCore.files,
        sources=AwsCore.sources,
        own_outputs=AwsCore.own_outputs,
        outcomes=AwsCore.outcomes,
        **lambda_only,
    )


class LambdaContainer(AwsCore):
    capacity = providers.Singleton(build_capacity, AwsCore.files)
    handle_event = handle_event_factory(hand_off=AwsCore.hand_off, capacity=capacity)


class WorkerContainer(AwsCore):
    messages = providers.Singleton(
        build_queue,
        Core.config.worker.queue_url,
        Core.config.worker.visibility_timeout,
        AwsCore.sqs_client.provider,
    )
    handle_event = handle_event_factory()
    worker_settings = providers.Singleton(build_worker_settings, Core.config.worker)
    worker = providers.Singleton(
        QueueWorker, messages=messages, handler=handle_event, settings=worker_settings
    )


def build_dead_letters(
    dlq_url: str | None, hold_seconds: int | None, client: Callable[[], Any]
) -> DeadLetterQueue:
    if not dlq_url:
        raise ConfigurationError(
            "reconcile needs the dead-letter queue's URL: --dlq-url, or worker.dlq_url in config"
        )
    from infrastructure.aws.sqs_messages import SqsDeadLetterQueue

    hold = int(shipped_setting("worker", "dlq_hold_seconds", hold_seconds))
    return SqsDeadLetterQueue(dlq_url, client(), hold_seconds=hold)


class ReconcileContainer(AwsCore):
    """`datalakep reconcile`: the bucket against the ledger and the DLQ."""

    # The S3 file source lists the bucket too (ObjectListing).
    listing = AwsCore.files
    dead_letters = providers.Singleton(
        build_dead_letters,
        Core.config.worker.dlq_url,
        Core.config.worker.dlq_hold_seconds,
        AwsCore.sqs_client.provider,
    )
    queue = AwsCore.hand_off
    reconcile = providers.Factory(
        Reconcile,
        objects=listing,
        warehouse=Core.warehouse,
        dead_letters=dead_letters,
        sources=AwsCore.sources,
        queue=queue,
    )


def lambda_container() -> LambdaContainer:
    """Configured from the environment only, as a Lambda function is."""
    container = LambdaContainer()
    configure(container, None, None)
    queue = os.environ.get("DATALAKEP_WORKER_QUEUE_URL")
    if queue:
        container.config.aws.worker_queue_url.from_value(queue)
    return container


def worker_container(
    queue_url: str, config_file: str | None = None, warehouse_url: str | None = None
) -> WorkerContainer:
    container = WorkerContainer()
    configure(container, config_file, warehouse_url)
    container.config.worker.queue_url.from_value(queue_url)
    return container


def reconcile_container(
    config_file: str | None = None,
    warehouse_url: str | None = None,
    dlq_url: str | None = None,
    queue_url: str | None = None,
) -> ReconcileContainer:
    """The DLQ: ``dlq_url``, else config; the queue: ``queue_url``, else the environment,
    else config, as the Lambda finds it."""
    container = ReconcileContainer()
    configure(container, config_file, warehouse_url)
    if dlq_url:
        container.config.worker.dlq_url.from_value(dlq_url)
    queue = queue_url or os.environ.get("DATALAKEP_WORKER_QUEUE_URL")
    if queue:
        container.config.aws.worker_queue_url.from_value(queue)
    return container
