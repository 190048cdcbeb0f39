"""``s3://bucket/key`` URIs that hold the key exactly as S3 stores it.

No percent-encoding either way: the URI is an identity in the ledger and in
logs, and "Zeile 1+2.xlsx" must stay one name whether it came from an event
(where S3 URL-encodes keys, space as '+') or from a listing (decoded by
boto3). Decoding event keys is the event parser's job, done once at the edge.
"""

from __future__ import annotations

SCHEME = "s3://"


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``(bucket, key)`` of ``s3://bucket/key``; the key is taken verbatim.

    Raises ValueError for anything else, including an empty bucket or key.
    """
    if not uri.startswith(SCHEME):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, slash, key = uri[len(SCHEME) :].partition("/")
    if not bucket or not slash or not key:
        raise ValueError(f"an s3:// URI needs a bucket and a key: {uri!r}")
    return bucket, key


def s3_uri(bucket: str, key: str) -> str:
    if not bucket or "/" in bucket or not key:
        raise ValueError(f"invalid S3 location: bucket {bucket!r}, key {key!r}")
    return f"{SCHEME}{bucket}/{key}"
