"""``frame-infer run`` end to end: a real video (PyAV) through the real MMS."""
from __future__ import annotations

import json
from urllib.parse import urlsplit

import boto3
import pytest

from frame_infer.cli import main
from frame_infer.client.extract import make_sample_video
from frame_infer.errors import ExitCode

from ..helpers.mms import model_url
from ..helpers.rows import read_rows

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("source_fps, seconds, expected", [(30, 3, 90), (25, 2, 60)])
def test_video_to_report(mms, tmp_path, capsys, source_fps, seconds, expected):
    video = make_sample_video(tmp_path / "clip.mp4", seconds=seconds, fps=source_fps,
                              size=(320, 240))
    out = tmp_path / "out"
    code = main(["run", str(video), "--endpoint", model_url(mms), "--out", str(out),
                 "--frames-per-request", "8", "--concurrency", "4", "--no-progress", "--json"])
    assert code == ExitCode.OK
    captured = capsys.readouterr()
    document = json.loads(captured.out)  # --json: stdout is one object, nothing else
    assert document["command"] == "run" and document["exit_code"] == 0
    assert document["frames"] == expected and document["summary"]["predicted"] == expected
    assert document["summary"]["complete"] and document["summary"]["error_codes"] == {}
    assert document["report"]["files"]["timeline_png"] == str(out / "timeline.png")
    assert f"{expected} frames: {expected} predicted" in captured.err  # people: stderr
    result = read_rows(out)
    assert [r["index"] for r in result] == list(range(expected))
    for r in result:
        assert r["timestamp"] == pytest.approx(r["index"] / 30, abs=1e-9)
        assert "label" in r
    for name in ("predictions.csv", "summary_per_second.csv", "timeline.png", "summary.md"):
        assert (out / name).stat().st_size > 0
    # The same command again resumes: nothing is cut or sent twice.
    assert main(["run", str(video), "--endpoint", model_url(mms), "--out", str(out),
                 "--no-progress", "--json"]) == ExitCode.OK
    again = json.loads(capsys.readouterr().out)["summary"]
    assert again["requests"] == 0 and again["skipped"] == expected
    assert read_rows(out) == result


def test_run_with_bucket_uploads_frames_and_results(mms, aws_env, tmp_path, capsys):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="video-jobs")
    video = make_sample_video(tmp_path / "clip.mp4", seconds=1, fps=30, size=(160, 120))
    out = tmp_path / "out"
    assert main(["run", str(video), "--endpoint", model_url(mms), "--out", str(out),
                 "--bucket", "s3://video-jobs/job1", "--no-progress"]) == 0
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="video-jobs")["Contents"]}
    assert {f"job1/frames/frame_{i:06d}.jpg" for i in range(30)} <= keys
    assert {"job1/frames/manifest.jsonl", "job1/results/predictions.csv",
            "job1/results/timeline.png", "job1/results/predictions.jsonl"} <= keys
    assert len(read_rows(out)) == 30


def test_every_s3_call_of_run_goes_to_the_s3_endpoint_it_is_given(mms, s3_server, tmp_path,
                                                                   capsys, monkeypatch):
    """``run --bucket ... --s3-endpoint-url URL`` with no other S3 configuration: the
    upload, the frames read back and the report's copy all go to URL. Every HTTP request
    botocore sends is recorded; a call resolved to AWS's own hosts would show up here
    (and fail: there is no network)."""
    from botocore.httpsession import URLLib3Session

    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket="override-jobs")
    hosts = []
    send = URLLib3Session.send

    def recording(self, request):
        hosts.append(urlsplit(request.url).netloc)
        return send(self, request)
    monkeypatch.setattr(URLLib3Session, "send", recording)
    video = make_sample_video(tmp_path / "clip.mp4", seconds=1, fps=10, size=(160, 120))
    code = main(["run", str(video), "--endpoint", model_url(mms), "--out", str(tmp_path / "o"),
                 "--fps", "10", "--bucket", "s3://override-jobs/job", "--s3-endpoint-url",
                 s3_server, "--no-progress", "--json"])
    document = json.loads(capsys.readouterr().out)
    assert code == ExitCode.OK, document
    assert hosts and set(hosts) == {urlsplit(s3_server).netloc}
    assert "s3://override-jobs/job/results/timeline.png" in document["report"]["s3_uris"]


def test_frames_are_predicted_while_the_video_is_cut(mms, tmp_path, capsys):
    """Without --bucket, extract and predict overlap. A truncated video gives the frames
    it holds, not silently: a warning naming both durations, exit 4 and the --json
    object's video.ended_early (issue 21, defect 3); a file that is no video ends the run
    with the decoder's clear error."""
    video = make_sample_video(tmp_path / "clip.mkv", seconds=2, fps=30, size=(320, 240))
    data = video.read_bytes()
    truncated = tmp_path / "truncated.mkv"
    truncated.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    assert main(["run", str(truncated), "--endpoint", model_url(mms), "--out", str(out),
                 "--no-progress", "--json"]) == ExitCode.IMAGE_ERRORS
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert "extract + predict" in document["seconds"]
    assert document["video"]["ended_early"] is True and document["exit_code"] == 4
    assert document["video"]["declared_duration"] == pytest.approx(2.0, abs=0.05)
    assert document["video"]["duration"] < 1.5 and document["summary"]["complete"]
    assert "warning: the video ended early" in captured.err and "says it lasts 2.00 s" \
        in captured.err
    result = read_rows(out)
    assert 0 < len(result) < 60 and all("label" in r for r in result)
    assert [r["index"] for r in result] == list(range(len(result)))
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("not a video")
    code = main(["run", str(not_video), "--endpoint", model_url(mms), "--out",
                 str(tmp_path / "out2"), "--no-progress"])
    assert code == ExitCode.USAGE and "notes.mp4 is not a readable video" in \
        capsys.readouterr().err
