"""The one place boto3 clients are made.

Explicit retries and timeouts, so a throttled or unreachable endpoint fails in
bounded time. Endpoints, region and credentials come from the standard AWS
environment (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_S3, AWS_REGION, the credential
chain), so the same code talks to moto or to AWS.
"""

from __future__ import annotations

import logging
import os
from typing import Any

DEFAULT_REGION = "us-east-1"


# botocore's DEBUG logs carry whole response bodies, Secrets Manager values
# included; no log level chosen for the service may let them through.
_WIRE_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer")


def _silence_wire_logs() -> None:
    for name in _WIRE_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)


def aws_client(service: str, region: str | None = None) -> Any:
    """A new client, configured from the environment as it is now.

    Not cached here: each entrypoint's container holds its clients as
    Singleton providers, and an adapter built without one makes its own once.
    """
    import boto3
    from botocore.config import Config

    _silence_wire_logs()

    config = Config(
        region_name=region
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or DEFAULT_REGION,
        retries={"max_attempts": 5, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
    )
    # boto3 reads AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE> itself (>= 1.28).
    return boto3.session.Session().client(service, config=config)  # type: ignore[call-overload]
