"""``frame-infer transform`` end to end with real boto3 over HTTP: S3 and the SageMaker job
API on moto's loopback server, SageMaker Batch Transform itself as a loopback stand-in
(``tests/helpers/batch_transform.py``) posting the shards to the real container front in
front of the real MMS serving the real ``.mar``."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import boto3
import pytest

from frame_infer.errors import ExitCode
from frame_infer import cli
from frame_infer.client.extract import make_sample_video
from frame_infer.client.journal import Journal
from model_handler.wire import SAGEMAKER_MAX_REQUEST_BYTES

from ..helpers.aws import s3_client_with_bucket
from ..helpers.batch_transform import BatchTransformStandIn
from ..helpers.container import running_front
from ..helpers.rows import read_rows

pytestmark = pytest.mark.integration
BUCKET = "transform-bucket"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/frame-infer:test"
ROLE = "arn:aws:iam::123456789012:role/frame-infer-transform"
HANDSHAKE = {"MaxConcurrentTransforms": 2, "BatchStrategy": "SINGLE_RECORD",
             "MaxPayloadInMB": 6}


@pytest.fixture(scope="module")
def front(model_store, tmp_path_factory):
    """The container's front + MMS serving ferplus.mar from a dir like /opt/ml/model."""
    model_dir = tmp_path_factory.mktemp("opt-ml-model")
    shutil.copy(model_store / "ferplus.mar", model_dir)
    with running_front(model_dir, workers=1, batch_size=4, max_batch_delay_ms=20) as url:
        yield url


@pytest.fixture()
def aws(aws_env):
    """(s3, sagemaker) boto3 clients on moto's server; BUCKET exists."""
    sagemaker = boto3.client("sagemaker", endpoint_url=aws_env)
    return s3_client_with_bucket(BUCKET), sagemaker


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return make_sample_video(tmp_path_factory.mktemp("video") / "clip.mp4", seconds=2,
                             fps=30, size=(320, 240))


def uploaded_by_run(video, front, tmp_path, prefix: str) -> str:
    """``run --bucket``: frames uploaded and predicted through the front; the frames URI."""
    code = cli.main(["run", str(video), "--endpoint", f"{front}/invocations", "--out",
                     str(tmp_path / "run"), "--bucket", f"s3://{BUCKET}/{prefix}", "--fps", "10",
                     "--no-progress"])
    assert code == 0
    return f"s3://{BUCKET}/{prefix}/frames"


def transform_args(frames: str, out: str, results, stand_in, *more: str) -> list[str]:
    return ["transform", frames, "--bucket", out, "--out", str(results), "--model-artifact",
            f"s3://{BUCKET}/models/model.tar.gz", "--image-uri", IMAGE, "--role", ROLE,
            "--poll-seconds", "0.1", "--no-progress", "--sagemaker-endpoint-url",
            stand_in.url, *more]


def test_transform_on_two_instances_equals_run(aws, front, video, tmp_path, capsys):
    s3, sagemaker = aws
    frames = uploaded_by_run(video, front, tmp_path, "two")
    out = f"s3://{BUCKET}/two/transform"
    with BatchTransformStandIn(aws[1].meta.endpoint_url, [front], s3, sagemaker) as stand_in:
        args = transform_args(frames, out, tmp_path / "tr", stand_in, "--instance-count", "2",
                              "--frames-per-request", "3")
        assert cli.main(args) == 0, stand_in.failures()
        by_run, by_transform = read_rows(tmp_path / "run"), read_rows(tmp_path / "tr")
        assert len(by_run) == 20
        assert [(r["index"], r["id"], r["timestamp"], r["label"]) for r in by_transform] == \
            [(r["index"], r["id"], r["timestamp"], r["label"]) for r in by_run]
        for a, b in zip(by_run, by_transform):
            assert b["probabilities"] == pytest.approx(a["probabilities"], abs=1e-5)
        # One job: 7 shards of at most 3 frames, split over both instances, each of which
        # asked the container's handshake once and kept to its concurrency.
        (name, job), = stand_in.jobs.items()
        request = job.request
        assert (request["BatchStrategy"], request["MaxPayloadInMB"]) == ("SingleRecord", 6)
        assert request["TransformInput"]["SplitType"] == "None"
        assert "MaxConcurrentTransforms" not in request
        assert job.handshakes == {0: HANDSHAKE, 1: HANDSHAKE}
        shares = [set(keys) for keys in job.shares.values()]
        assert len(shares) == 2 and all(shares) and not shares[0] & shares[1]
        assert len(shares[0] | shares[1]) == 7 == len(job.records)
        assert {r["instance"] for r in job.records} == {0, 1}
        assert all(r["status"] == 200 and r["size"] <= SAGEMAKER_MAX_REQUEST_BYTES
                   for r in job.records)
        assert {r["content_type"] for r in job.records} == {
            request["TransformInput"]["ContentType"]}
        assert max(job.max_in_flight.values()) <= 2
        outputs = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"two/transform/jobs/{name}/")
        assert sorted(o["Key"].rsplit("/", 1)[1] for o in outputs["Contents"]) == \
            [f"shard-{i:06d}.out" for i in range(7)]
        assert (tmp_path / "tr" / "predictions.csv").exists()
        copied = s3.list_objects_v2(Bucket=BUCKET, Prefix="two/transform/results/")
        assert "two/transform/results/predictions.csv" in [o["Key"] for o in copied["Contents"]]
        # A rerun sends nothing and submits no job.
        capsys.readouterr()
        assert cli.main(args) == 0
        assert "20 already done" in capsys.readouterr().out
        assert stand_in.operations.count("CreateTransformJob") == 1
        assert read_rows(tmp_path / "tr") == by_transform


def test_transform_of_frames_cut_with_faces_equals_run_faces(aws, front, tmp_path, capsys):
    """A prefix uploaded by `run --faces --bucket`: the crops are sent, a frame without a
    face gets its no-face row without being sent, rows equal `run --faces`'s."""
    from frame_infer.client.samples import make_face_video

    s3, sagemaker = aws
    video = make_face_video(tmp_path / "faces.mp4", seconds_each=1, no_face_seconds=1,
                            size=(320, 240))
    assert cli.main(["run", str(video), "--endpoint", f"{front}/invocations", "--out",
                     str(tmp_path / "run"), "--bucket", f"s3://{BUCKET}/faces", "--fps", "2",
                     "--faces", "--no-progress"]) == 0
    by_run = read_rows(tmp_path / "run")
    assert [r["face"] for r in by_run] == [0, 0, 0, 0, None, None]
    with BatchTransformStandIn(aws[1].meta.endpoint_url, [front], s3, sagemaker) as stand_in:
        args = transform_args(f"s3://{BUCKET}/faces/frames", f"s3://{BUCKET}/faces/tr",
                              tmp_path / "tr", stand_in, "--frames-per-request", "3")
        capsys.readouterr()
        assert cli.main(args) == 0, stand_in.failures()
        (name, job), = stand_in.jobs.items()
        assert len(job.records) == 2  # 4 crops in shards of 3; the no-face frames unsent
    printed = capsys.readouterr().out
    assert "2 frames without a face" in printed, printed
    by_transform = read_rows(tmp_path / "tr")
    keep = ("index", "id", "face", "box", "label")
    assert [{k: r.get(k) for k in keep} for r in by_transform] == \
        [{k: r.get(k) for k in keep} for r in by_run]


def test_interrupted_transform_resumes_without_a_second_job(aws, front, video, tmp_path):
    s3, sagemaker = aws
    frames = uploaded_by_run(video, front, tmp_path, "resume")
    out, results = f"s3://{BUCKET}/resume/transform", tmp_path / "tr"
    hold = threading.Event()
    with BatchTransformStandIn(aws[1].meta.endpoint_url, [front], s3, sagemaker, hold=hold,
                               hold_after=1) as stand_in:
        args = transform_args(frames, out, results, stand_in, "--frames-per-request", "4")
        proc = subprocess.Popen([sys.executable, "-m", "frame_infer.cli", *args],
                                env=os.environ.copy(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 120
            # Wait until the first shard's rows are journaled while the job still runs.
            while not (results / "predictions.journal.jsonl").exists() or \
                    len(Journal(results).rows) < 4:
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "no rows journaled"
                time.sleep(0.1)
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 130, err
        assert "4 results are saved" in err
        (name, job), = stand_in.jobs.items()
        assert job.status == "InProgress"
        hold.set()
        assert cli.main(args) == 0
        assert stand_in.operations.count("CreateTransformJob") == 1
        assert len(stand_in.jobs) == 1 and job.status == "Completed"
        rows = read_rows(results)
        assert [r["index"] for r in rows] == list(range(20)) and all("label" in r for r in rows)
        state = json.loads((results / "transform.json").read_text())
        assert state["jobs"] == {name: {"batch": name.split("-")[2], "collected": True}}


def test_failed_shard_is_reported_and_a_rerun_sends_only_its_frames(aws, front, video,
                                                                    tmp_path, capsys):
    s3, sagemaker = aws
    frames = uploaded_by_run(video, front, tmp_path, "fail")
    out, results = f"s3://{BUCKET}/fail/transform", tmp_path / "tr"
    with BatchTransformStandIn(aws[1].meta.endpoint_url, [front], s3, sagemaker,
                               fail_keys=("shard-000001",)) as stand_in:
        args = transform_args(frames, out, results, stand_in, "--frames-per-request", "5")
        capsys.readouterr()
        assert cli.main(args) == ExitCode.INCOMPLETE  # a rerun sends the failed shard
        err = capsys.readouterr().err
        assert "5 frames transform_failed" in err and "CloudWatch" in err
        rows = Journal(results).rows
        failed = sorted(k[0] for k, r in rows.items() if "error" in r)
        assert failed == [5, 6, 7, 8, 9]
        assert all(rows[(i, None)]["error"]["code"] == "transform_failed" for i in failed)
        stand_in.fail_keys.clear()
        assert cli.main(args) == 0
        assert stand_in.operations.count("CreateTransformJob") == 2
        second = list(stand_in.jobs.values())[1]
        assert len(second.records) == 1 and second.records[0]["status"] == 200
        assert all("label" in r for r in read_rows(results))


def test_unknown_model_name_is_a_clear_error(aws, front, tmp_path, capsys):
    s3, sagemaker = aws
    from ..helpers.frames import write_frames
    from frame_infer.client.upload import upload_frames

    write_frames(tmp_path / "frames", 3)
    upload_frames(tmp_path / "frames", f"s3://{BUCKET}/unknown/frames", progress=False)
    with BatchTransformStandIn(aws[1].meta.endpoint_url, [front], s3, sagemaker) as stand_in:
        code = cli.main(["transform", f"s3://{BUCKET}/unknown/frames", "--bucket",
                         f"s3://{BUCKET}/unknown/transform", "--out", str(tmp_path / "tr"),
                         "--model-name", "no-such-model", "--sagemaker-endpoint-url",
                         stand_in.url, "--no-progress"])
    assert code == ExitCode.USAGE
    assert "SageMaker has no model 'no-such-model'" in capsys.readouterr().err
    assert "CreateTransformJob" not in stand_in.operations
