"""The client's AWS paths with real boto3 over HTTP: S3 on a loopback moto server, and
SageMaker's InvokeEndpoint through a loopback proxy in front of the real MMS."""
from __future__ import annotations


import pytest
import requests

from frame_infer.client.manifest import read_manifest
from frame_infer.client.predict import PredictOptions, predict
from frame_infer.serving.mms import ModelSettings
from frame_infer.client.sources import FrameReader, s3_frames
from frame_infer.client.targets import HttpTarget, SageMakerTarget
from frame_infer.client.upload import upload_frames

from ..helpers.aws import s3_client_with_bucket, sagemaker_client
from ..helpers.frames import write_frames
from ..helpers.mms import model_url, running_mms
from ..helpers.rows import read_rows
from ..helpers.sagemaker_runtime import SageMakerProxy

pytestmark = pytest.mark.integration
BUCKET = "frames-bucket"


@pytest.fixture()
def s3(aws_env):
    return s3_client_with_bucket(BUCKET)


def test_upload_is_idempotent_and_detects_changed_frames(s3, tmp_path):
    folder = tmp_path / "frames"
    write_frames(folder, 12)
    first = upload_frames(folder, f"s3://{BUCKET}/run1", progress=False)
    assert (first.uploaded, first.skipped) == (12, 0)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="run1/")["Contents"]}
    assert keys == {f"run1/frame_{i:06d}.jpg" for i in range(12)} | {"run1/manifest.jsonl"}
    assert [f.s3_key for f in read_manifest(folder)] == [f"run1/frame_{i:06d}.jpg"
                                                         for i in range(12)]
    body = s3.get_object(Bucket=BUCKET, Key="run1/frame_000003.jpg")["Body"].read()
    assert body == (folder / "frame_000003.jpg").read_bytes()
    again = upload_frames(folder, f"s3://{BUCKET}/run1", progress=False)
    assert (again.uploaded, again.skipped) == (0, 12)
    (folder / "frame_000005.jpg").write_bytes(b"changed content")
    changed = upload_frames(folder, f"s3://{BUCKET}/run1", progress=False)
    assert (changed.uploaded, changed.skipped) == (1, 11)


def test_a_prefix_without_manifest_keeps_each_key_in_the_rows(s3):
    """Images put under a prefix by other means: name order, each ref's ``file`` is its key
    below the prefix (what the result row keeps)."""
    for key in ("photos/b.png", "photos/a.jpg", "photos/day 2/c.jpg", "photos/notes.txt",
                "photosx/d.jpg"):
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"image bytes")
    frames = s3_frames(f"s3://{BUCKET}/photos", s3, fps=2.0)
    assert [f.row() for f in frames] == [
        {"index": 0, "id": "frame_000000", "timestamp": 0.0, "file": "a.jpg"},
        {"index": 1, "id": "frame_000001", "timestamp": 0.5, "file": "b.png"},
        {"index": 2, "id": "frame_000002", "timestamp": 1.0, "file": "day 2/c.jpg"}]
    assert frames[2].s3_key == "photos/day 2/c.jpg"


def test_predict_from_s3_prefix_downloads_and_sends_bytes(s3, mms, tmp_path):
    write_frames(tmp_path / "frames", 10, corrupt=(4,))
    upload_frames(tmp_path / "frames", f"s3://{BUCKET}/run2", progress=False)
    frames = s3_frames(f"s3://{BUCKET}/run2", s3)
    assert [f.index for f in frames] == list(range(10))
    summary = predict(frames, HttpTarget(model_url(mms)),
                      tmp_path / "out", PredictOptions(batch_size=4, progress=False),
                      FrameReader(s3))
    rows = read_rows(tmp_path / "out")
    assert [r["index"] for r in rows] == list(range(10))
    assert rows[4]["error"]["code"] == "invalid_image"
    assert summary.predicted == 9


@pytest.fixture()
def s3_mms(model_store, aws_env, tmp_path):
    """MMS whose worker may fetch from BUCKET on the loopback S3 server (by reference)."""
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL_S3": aws_env,
           "FRAME_INFER_ALLOWED_S3_BUCKETS": BUCKET}
    with running_mms(model_store, ModelSettings("ferplus.mar", "ferplus", batch_size=1,
                                                workers=1),
                     run_dir=tmp_path / "mms", extra_env=env) as server:
        yield server


def test_by_reference_the_service_fetches_from_s3(s3, s3_mms, tmp_path):
    write_frames(tmp_path / "frames", 9)
    upload_frames(tmp_path / "frames", f"s3://{BUCKET}/run3", progress=False)
    frames = s3_frames(f"s3://{BUCKET}/run3", s3)
    url = model_url(s3_mms)
    predict(frames, HttpTarget(url), tmp_path / "ref",
            PredictOptions(batch_size=5, by_reference=True, progress=False))
    predict(frames, HttpTarget(url), tmp_path / "bytes",
            PredictOptions(batch_size=5, progress=False), FrameReader(s3))
    by_ref, by_bytes = read_rows(tmp_path / "ref"), read_rows(tmp_path / "bytes")
    assert all("label" in r for r in by_ref)
    assert [r["label"] for r in by_ref] == [r["label"] for r in by_bytes]
    # Other buckets and missing keys: per-image errors, never a fetch outside the list.
    s3.create_bucket(Bucket="someone-elses-bucket")
    s3.put_object(Bucket="someone-elses-bucket", Key="x.jpg",
                  Body=(tmp_path / "frames" / "frame_000000.jpg").read_bytes())
    response = requests.post(url, json={"instances": [
        {"id": "other", "s3": "s3://someone-elses-bucket/x.jpg"},
        {"id": "missing", "s3": f"s3://{BUCKET}/run3/nope.jpg"},
        {"id": "ok", "s3": f"s3://{BUCKET}/run3/frame_000001.jpg"}]}, timeout=60)
    codes = [p.get("error", {}).get("code") for p in response.json()["predictions"]]
    assert codes == ["s3_forbidden", "s3_not_found", None]


def test_sagemaker_path_with_boto3(mms, tmp_path):
    write_frames(tmp_path / "frames", 14, corrupt=(6,))
    from frame_infer.client.sources import local_frames

    frames = local_frames(tmp_path / "frames")
    with SageMakerProxy(mms.inference_url, "ferplus", throttle_first=2) as proxy:
        target = SageMakerTarget("ferplus-endpoint", client=sagemaker_client(proxy.url))
        summary = predict(frames, target, tmp_path / "out",
                          PredictOptions(batch_size=5, concurrency=2, progress=False))
        rows = read_rows(tmp_path / "out")
        assert [r["index"] for r in rows] == list(range(14))
        assert rows[6]["error"]["code"] == "invalid_image"
        assert summary.predicted == 13
        # One frame alone (its answer names the model's input), then 5 + 5 + 3; two calls
        # throttled and retried by botocore.
        assert proxy.calls == 4 + 2
        assert proxy.signed == proxy.calls
        # A container error (415 here) comes back through ModelError with its own code.
        status, body = target.send(b"hello", "text/plain")
        assert status == 415 and body["error"]["code"] == "unsupported_content_type"
