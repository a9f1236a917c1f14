"""`report` copying its files to the loopback S3 server (real boto3, moto server mode)."""
from __future__ import annotations

import boto3
import pytest

from frame_infer.client import report

from ..helpers.rows import write_sample_predictions


@pytest.fixture()
def out_dir(tmp_path):
    return write_sample_predictions(tmp_path)


def test_copy_to_s3_with_default_client(out_dir, aws_env):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="reports")
    paths = report.write_report(out_dir, s3_uri="s3://reports/runs/clip1/")
    names = ["predictions.csv", "summary_per_second.csv", "timeline.png", "summary.md",
             "predictions.jsonl"]
    assert paths.s3_uris == [f"s3://reports/runs/clip1/{n}" for n in names]
    listed = s3.list_objects_v2(Bucket="reports", Prefix="runs/clip1/")["Contents"]
    assert sorted(o["Key"] for o in listed) == sorted(f"runs/clip1/{n}" for n in names)
    for path in [*paths.files(), out_dir / "predictions.jsonl"]:
        body = s3.get_object(Bucket="reports", Key=f"runs/clip1/{path.name}")["Body"].read()
        assert body == path.read_bytes()


def test_copy_to_s3_with_injected_client_and_missing_bucket(out_dir, s3_server):
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    client.create_bucket(Bucket="other")
    paths = report.write_report(out_dir, s3_uri="s3://other", s3_client=client)
    assert paths.s3_uris[0] == "s3://other/predictions.csv"
    assert client.head_object(Bucket="other", Key="timeline.png")["ContentType"] == "image/png"
    with pytest.raises(report.ReportError, match="check the bucket exists"):
        report.write_report(out_dir, s3_uri="s3://no-such-bucket/x", s3_client=client)
