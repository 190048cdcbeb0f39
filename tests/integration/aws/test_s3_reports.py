from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from domain.errors import ConfigurationError
from domain.rejects import CellReject, RejectedRow, RejectReason, RejectsReport, SheetRejects
from infrastructure.aws.clients import aws_client
from infrastructure.aws.s3_files import S3FileSource
from infrastructure.aws.s3_reports import S3RejectsReportWriter
from infrastructure.aws.s3_uri import parse_s3_uri

pytestmark = pytest.mark.integration


def report(source_uri: str) -> RejectsReport:
    problem = CellReject(
        sheet="train", row=3, column="Age", position=1, value="abc",
        reason=RejectReason.TYPE, message="not a number",
    )  # fmt: skip
    sheet = SheetRejects(
        sheet="train",
        table="train_data",
        header=("Name", "Age"),
        header_row=1,
        rows=(RejectedRow(row=3, values=("Doe, John", "abc"), problems=(problem,)),),
    )
    return RejectsReport(source_uri, "v1", "load-1", (sheet,))


@pytest.fixture
def s3(aws: str) -> Any:
    client = aws_client("s3")
    client.create_bucket(Bucket="src")
    return client


def keys(s3: Any, prefix: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket="src", Prefix=prefix)["Contents"])


def test_the_report_lands_beside_the_source_under_the_prefix(s3: Any, tmp_path: Path) -> None:
    writer = S3RejectsReportWriter(tmp_path, prefix="rejects/")

    uri = writer.write(report("s3://src/in/Passagiere ü/Zeile 1+2.xlsx"))

    base = "rejects/in/Passagiere ü/Zeile_1_2.xlsx.load-1.rejects"
    assert uri == f"s3://src/{base}.xlsx"
    assert keys(s3, "rejects/") == [f"{base}.csv", f"{base}.xlsx"]
    bucket, key = parse_s3_uri(uri)
    workbook_path = tmp_path / "downloaded.xlsx"
    s3.download_file(bucket, key, str(workbook_path))
    assert load_workbook(workbook_path, read_only=True).sheetnames == ["summary", "train"]
    csv = s3.get_object(Bucket="src", Key=f"{base}.csv")["Body"].read().decode()
    assert "not a number" in csv
    workbook_path.unlink()
    assert list(tmp_path.iterdir()) == []


def test_a_source_at_the_bucket_root_and_a_bare_prefix(s3: Any, tmp_path: Path) -> None:
    uri = S3RejectsReportWriter(tmp_path, prefix="bad").write(report("s3://src/top.csv"))

    assert uri == "s3://src/bad/top.csv.load-1.rejects.xlsx"
    assert keys(s3, "bad/") == ["bad/top.csv.load-1.rejects.csv", "bad/top.csv.load-1.rejects.xlsx"]
    assert list(tmp_path.iterdir()) == []


def test_refusals_leave_nothing_behind(aws: str, tmp_path: Path) -> None:
    writer = S3RejectsReportWriter(tmp_path, prefix="rejects/")
    with pytest.raises(ValueError, match="not an s3:// URI"):
        writer.write(report("file:///tmp/a.csv"))
    with pytest.raises(ConfigurationError, match="NoSuchBucket"):
        writer.write(report("s3://no-such-bucket/a.csv"))
    assert list(tmp_path.iterdir()) == []


def test_reports_carry_datalakep_metadata_that_head_recognises(s3: Any, tmp_path: Path) -> None:
    # No prefix at all: the reports land beside their sources, and only the
    # metadata tells them apart from files people dropped there.
    uri = S3RejectsReportWriter(tmp_path, prefix="").write(report("s3://src/in/a.xlsx"))
    s3.put_object(Bucket="src", Key="in/b.xlsx", Body=b"a user's file")
    files = S3FileSource()

    assert files.head(uri).datalakep_output
    assert files.head(uri.removesuffix(".xlsx") + ".csv").datalakep_output
    assert not files.head("s3://src/in/b.xlsx").datalakep_output


@pytest.mark.parametrize(
    ("source", "report_dir"),
    [
        ("s3://src/in/../../../etc/a.xlsx", "rejects/etc/"),
        ("s3://src/../a.xlsx", "rejects/"),
        ("s3://src/in/./x//y/a.xlsx", "rejects/in/x/y/"),
    ],
)
def test_dot_dot_segments_in_report_keys_are_normalised(
    s3: Any, tmp_path: Path, source: str, report_dir: str
) -> None:
    uri = S3RejectsReportWriter(tmp_path, prefix="rejects/").write(report(source))

    assert uri == f"s3://src/{report_dir}a.xlsx.load-1.rejects.xlsx"
    assert all(".." not in key.split("/") for key in keys(s3, "rejects/"))


def test_a_report_key_longer_than_s3_allows_is_shortened_the_same_way_each_time(
    s3: Any, tmp_path: Path
) -> None:
    source = "s3://src/" + "dossier-é/" * 90 + "x" * 15 + ".xlsx"  # a 1,010-byte key
    writer = S3RejectsReportWriter(tmp_path, prefix="rejects/")

    first = writer.write(report(source))
    again = writer.write(report(source))

    assert first == again
    written = keys(s3, "rejects/")
    assert len(written) == 2
    assert all(len(k.encode()) <= 1024 for k in written)
    assert {k.rsplit(".", 1)[0] for k in written} == {parse_s3_uri(first)[1].rsplit(".", 1)[0]}
    assert written[0].startswith("rejects/dossier-é/")
    assert written[1].endswith(".rejects.xlsx")
