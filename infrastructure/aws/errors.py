"""Which boto errors are worth retrying, shared by the AWS adapters.

The client factory already retries throttling and 5xx a few times, so what
reaches an adapter has outlasted those retries; it is still transient, because
the same request may succeed minutes later, when the message comes back.
"""

from __future__ import annotations

from typing import Any

# botocore's own list of throttling codes (botocore.retries.standard), plus
# the codes services use for "try again" that are not throttling as such.
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "KMS.ThrottlingException",
    }
)


def error_code(error: Any) -> str:
    """The service's error code of a botocore ClientError ("" if it has none)."""
    return str(error.response.get("Error", {}).get("Code", ""))


def http_status(error: Any) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def is_transient(error: Any) -> bool:
    """True for a ClientError that a later, identical request may not get."""
    status = http_status(error)
    return error_code(error) in THROTTLING_CODES or status == 429 or status >= 500
