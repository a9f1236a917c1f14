"""`report` copying its files to the loopback S3 server (real boto3, moto server mode)."""
from __future__ import annotations

import json

import boto3
import pytest

from frame_infer.client import report
from frame_infer.s3 import S3Location, make_client

from ..helpers.loopback import JsonHandler, StandIn
from ..helpers.rows import write_sample_predictions


class RefusingS3(StandIn):
    """An S3 endpoint that must not be called: it records each request and answers 403."""

    def __init__(self):
        self.requests: list[str] = []
        requests = self.requests

        class Handler(JsonHandler):
            def _refuse(self):
                requests.append(f"{self.command} {self.path}")
                self.send_json(403, {"error": "this endpoint must not be called"})

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _refuse

        self.serve(Handler)


@pytest.fixture()
def out_dir(tmp_path):
    return write_sample_predictions(tmp_path)


def test_copy_to_s3_with_injected_client_and_missing_bucket(out_dir, s3_server):
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    client.create_bucket(Bucket="other")
    paths = report.write_report(out_dir, S3Location("other", ""), client)
    assert paths.s3_uris[0] == "s3://other/predictions.csv"
    assert client.head_object(Bucket="other", Key="timeline.png")["ContentType"] == "image/png"
    with pytest.raises(report.ReportError, match="check the bucket exists"):
        report.write_report(out_dir, S3Location("no-such-bucket", "x"), client)
    paths = report.write_report(out_dir, S3Location("other", "runs/clip1"), client)
    names = ["predictions.csv", "summary_per_second.csv", "timeline.png", "summary.md",
             "predictions.jsonl"]
    assert paths.s3_uris == [f"s3://other/runs/clip1/{n}" for n in names]
    for path in [*paths.files(), out_dir / "predictions.jsonl"]:
        body = client.get_object(Bucket="other", Key=f"runs/clip1/{path.name}")["Body"].read()
        assert body == path.read_bytes()


@pytest.mark.parametrize("spelling", [["--bucket", "--s3-endpoint-url"],
                                      ["--s3", "--endpoint-url"]])  # old, for one release
def test_report_command_copies_to_the_s3_endpoint_it_is_given(out_dir, s3_server,
                                                              monkeypatch, capsys, spelling):
    """`report --bucket s3://... --s3-endpoint-url URL` (issue 13: report had no endpoint
    option); no AWS_ENDPOINT_URL_S3, so only the option leads to the loopback server."""
    from frame_infer.cli import main

    for name, value in [("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1")]:
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    client = boto3.client("s3", endpoint_url=s3_server)
    client.create_bucket(Bucket="cli-reports")
    bucket, endpoint = spelling
    assert main(["report", str(out_dir), bucket, "s3://cli-reports/run", endpoint,
                 s3_server]) == 0
    captured = capsys.readouterr()
    assert "copied s3://cli-reports/run/summary.md" in captured.out
    body = client.get_object(Bucket="cli-reports", Key="run/predictions.csv")["Body"].read()
    assert body == (out_dir / "predictions.csv").read_bytes()
    notes = [line for line in captured.err.splitlines() if "is deprecated" in line]
    assert notes == ([] if bucket == "--bucket" else [
        "frame-infer report: --s3 is deprecated and goes away in the next release; "
        "write --bucket",
        "frame-infer report: --endpoint-url is deprecated and goes away in the next release; "
        "write --s3-endpoint-url"])


def test_report_command_copies_through_the_given_endpoint_only(out_dir, s3_server,
                                                               monkeypatch, capsys):
    """AWS_ENDPOINT_URL_S3 names another S3 endpoint, which refuses and records every
    call: with --s3-endpoint-url every S3 call of the command goes to the option's
    server, none to the standard configuration's."""
    for name, value in [("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1")]:
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    client = boto3.client("s3", endpoint_url=s3_server)
    client.create_bucket(Bucket="only-here")
    from frame_infer.cli import main

    with RefusingS3() as decoy:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", decoy.url)
        assert make_client("s3").meta.endpoint_url == decoy.url  # the decoy is really in use
        code = main(["report", str(out_dir), "--bucket", "s3://only-here/run",
                     "--s3-endpoint-url", s3_server, "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert decoy.requests == []
    doc = json.loads(captured.out)
    names = ["predictions.csv", "summary_per_second.csv", "timeline.png", "summary.md",
             "predictions.jsonl"]
    assert doc["s3_uris"] == [f"s3://only-here/run/{n}" for n in names]
    listed = client.list_objects_v2(Bucket="only-here", Prefix="run/")["Contents"]
    assert sorted(o["Key"] for o in listed) == sorted(f"run/{n}" for n in names)
    assert "copied s3://only-here/run/summary.md" in captured.err  # --json: humans on stderr
