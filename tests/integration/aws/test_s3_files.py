from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from botocore.stub import Stubber

from domain.errors import TerminalError, TransientError
from domain.source import ObjectInfo
from infrastructure.aws.clients import aws_client
from infrastructure.aws.s3_files import S3FileSource
from infrastructure.aws.s3_uri import s3_uri

pytestmark = pytest.mark.integration

ODD_KEYS = (
    "in/with space.csv",
    "in/plus+sign.csv",
    "Passagiere ü/Zeile 1+2.xlsx",
    "top%20level.CSV",
)


@pytest.fixture
def s3(aws: str) -> Any:
    client = aws_client("s3")
    client.create_bucket(Bucket="src")
    return client


def etag(s3: Any, key: str) -> str:
    return str(s3.head_object(Bucket="src", Key=key)["ETag"]).strip('"')


def test_head_and_fetch_odd_keys_through_a_temp_file(s3: Any, tmp_path: Path) -> None:
    files = S3FileSource(spool_dir=tmp_path)
    for n, key in enumerate(ODD_KEYS):
        body = f"{key}\n".encode() * (n + 1)
        s3.put_object(Bucket="src", Key=key, Body=body)
        uri = s3_uri("src", key)

        info = files.head(uri)
        with files.fetch(info) as local:
            assert local.path.read_bytes() == body
            assert local.size == len(body)
            assert local.path.parent == tmp_path
            assert local.path.suffix == PurePosixPath(key).suffix

        assert (info.uri, info.size, info.version) == (uri, len(body), etag(s3, key))
        assert info.name == PurePosixPath(key).name
        assert not local.path.exists()
    assert list(tmp_path.iterdir()) == []


def test_the_temp_file_is_removed_when_the_block_raises(s3: Any, tmp_path: Path) -> None:
    s3.put_object(Bucket="src", Key="a.csv", Body=b"x")
    files = S3FileSource(spool_dir=tmp_path)
    info = files.head("s3://src/a.csv")
    with pytest.raises(RuntimeError), files.fetch(info) as local:
        assert local.path.exists()
        raise RuntimeError("reader failed")
    assert list(tmp_path.iterdir()) == []


def test_versioned_bucket_pins_the_version_head_reported(s3: Any, tmp_path: Path) -> None:
    s3.put_bucket_versioning(Bucket="src", VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket="src", Key="v.csv", Body=b"one")
    second = s3.put_object(Bucket="src", Key="v.csv", Body=b"two")["VersionId"]
    files = S3FileSource(spool_dir=tmp_path)

    info = files.head("s3://src/v.csv")
    s3.put_object(Bucket="src", Key="v.csv", Body=b"three")
    with files.fetch(info) as local:
        content = local.path.read_bytes()

    assert info.version == second
    assert second != "null"
    assert content == b"two"


def test_unversioned_overwrite_between_head_and_fetch_is_transient(s3: Any, tmp_path: Path) -> None:
    s3.put_object(Bucket="src", Key="u.csv", Body=b"one")
    files = S3FileSource(spool_dir=tmp_path)
    info = files.head("s3://src/u.csv")
    s3.put_object(Bucket="src", Key="u.csv", Body=b"two")

    with pytest.raises(TransientError) as caught, files.fetch(info):
        pass

    assert caught.value.code == "version_changed"
    assert list(tmp_path.iterdir()) == []
    # A retry heads afresh and gets the new version.
    again = files.head("s3://src/u.csv")
    assert again.version == etag(s3, "u.csv")
    with files.fetch(again) as local:
        assert local.path.read_bytes() == b"two"


def test_missing_objects_and_bad_uris_are_terminal(s3: Any) -> None:
    files = S3FileSource()
    for uri in ("s3://src/nope.csv", "s3://no-such-bucket/a.csv"):
        with pytest.raises(TerminalError) as head:
            files.head(uri)
        with pytest.raises(TerminalError) as fetch, files.fetch(ObjectInfo(uri, size=0)):
            pass
        assert head.value.code == fetch.value.code == "not_found", uri
    with pytest.raises(TerminalError) as bad:
        files.head("/local/file.csv")
    assert bad.value.code == "invalid_uri"


ERROR_CASES = (
    ("403", 403, TerminalError, "access_denied"),
    ("AccessDenied", 403, TerminalError, "access_denied"),
    ("SlowDown", 503, TransientError, "s3_unavailable"),
    ("InternalError", 500, TransientError, "s3_unavailable"),
    ("InvalidObjectState", 403, TerminalError, "s3_error"),
)


def test_s3_errors_are_classified(aws: str) -> None:
    # moto enforces no IAM by default, so denials and throttling are stubbed.
    client = aws_client("s3")
    for code, status, expected, expected_code in ERROR_CASES:
        with Stubber(client) as stub:
            stub.add_client_error("head_object", service_error_code=code, http_status_code=status)
            with pytest.raises(expected) as caught:
                S3FileSource(client).head("s3://src/a.csv")
        assert getattr(caught.value, "code", None) == expected_code, code


def test_an_unreachable_endpoint_is_transient(aws: str) -> None:
    import boto3
    from botocore.config import Config

    from tests.support.moto_server import _free_port

    dead = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{_free_port()}",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=1),
    )
    with pytest.raises(TransientError):
        S3FileSource(dead).head("s3://src/a.csv")


class _ChunkSpy:
    """Delegates to an S3 client, recording the size of every body chunk read."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.chunks: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def get_object(self, **kwargs: Any) -> Any:
        response = self._client.get_object(**kwargs)
        body, spy = response["Body"], self

        class Body:
            def iter_chunks(self, size: int) -> Any:
                for chunk in body.iter_chunks(size):
                    spy.chunks.append(len(chunk))
                    yield chunk

            def close(self) -> None:
                body.close()

        response["Body"] = Body()
        return response


def test_fetch_streams_in_bounded_chunks(s3: Any, tmp_path: Path) -> None:
    size = 5 * (1 << 20) + 123
    s3.put_object(Bucket="src", Key="big.xlsx", Body=b"\x00" * size)
    spy = _ChunkSpy(s3)

    files = S3FileSource(spy, spool_dir=tmp_path)
    with files.fetch(files.head("s3://src/big.xlsx")) as local:
        assert local.size == local.path.stat().st_size == size

    assert sum(spy.chunks) == size
    assert len(spy.chunks) >= 6
    assert max(spy.chunks) <= 1 << 20


def test_list_objects_pages_through_everything_under_the_prefix(s3: Any) -> None:
    keys = [f"in/{key}" for key in ODD_KEYS]
    for key in [*keys, "elsewhere/x.csv"]:
        s3.put_object(Bucket="src", Key=key, Body=key.encode())
    pages: list[str] = []
    s3.meta.events.register("before-call.s3.ListObjectsV2", lambda **_: pages.append("page"))
    files = S3FileSource(s3)

    listed = list(files.list_objects("src", "in/", page_size=2))

    assert sorted(i.uri for i in listed) == sorted(s3_uri("src", k) for k in keys)
    assert {i.uri: i.version for i in listed} == {i.uri: files.head(i.uri).version for i in listed}
    assert len(pages) == 2


def test_list_objects_in_a_versioned_bucket_reports_current_version_ids(s3: Any) -> None:
    s3.put_bucket_versioning(Bucket="src", VersioningConfiguration={"Status": "Enabled"})
    for n in range(3):
        s3.put_object(Bucket="src", Key="in/a b.csv", Body=str(n).encode())
    s3.put_object(Bucket="src", Key="in/gone.csv", Body=b"x")
    s3.delete_object(Bucket="src", Key="in/gone.csv")
    s3.put_object(Bucket="src", Key="in/ü+1.csv", Body=b"y")
    files = S3FileSource(s3)

    listed = list(files.list_objects("src", "in/", page_size=2))

    assert sorted(i.uri for i in listed) == ["s3://src/in/a b.csv", "s3://src/in/ü+1.csv"]
    for info in listed:
        assert info == files.head(info.uri)


def test_listing_a_missing_bucket_is_terminal(aws: str) -> None:
    with pytest.raises(TerminalError) as caught:
        list(S3FileSource().list_objects("no-such-bucket"))
    assert caught.value.code == "not_found"
