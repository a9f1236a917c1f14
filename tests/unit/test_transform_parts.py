"""The pure parts of ``transform`` and the container's Batch Transform handshake."""
from __future__ import annotations

import re

import pytest

from frame_infer.client.payload import Request, multipart_body
from frame_infer.client.items import Item
from frame_infer.client.transform import TransformModel, TransformOptions
from frame_infer.client.transform.jobs import fingerprint, job_name
from frame_infer.client.transform.shards import ShardIndex, boundary_for
from frame_infer.errors import InputError
from frame_infer.serving.container import ContainerSettings
from frame_infer.serving.front import execution_parameters

from ..helpers.targets import parse_multipart

JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")  # CreateTransformJob's pattern
MODEL = TransformModel(artifact="s3://b/m/model.tar.gz", image_uri="img", role="arn:role")


@pytest.mark.parametrize("workers, request_bytes, expected", [
    (1, 6_553_500, {"MaxConcurrentTransforms": 2, "BatchStrategy": "SINGLE_RECORD",
                    "MaxPayloadInMB": 6}),
    (4, 104_857_600, {"MaxConcurrentTransforms": 8, "BatchStrategy": "SINGLE_RECORD",
                      "MaxPayloadInMB": 6}),
    (80, 3 * 1024 * 1024, {"MaxConcurrentTransforms": 100, "BatchStrategy": "SINGLE_RECORD",
                           "MaxPayloadInMB": 3}),
    (1, 100_000, {"MaxConcurrentTransforms": 2, "BatchStrategy": "SINGLE_RECORD",
                  "MaxPayloadInMB": 1}),
])
def test_execution_parameters_stay_in_aws_ranges_and_under_the_front_limit(
        workers, request_bytes, expected):
    settings = ContainerSettings(workers=workers, max_request_bytes=request_bytes)
    assert execution_parameters(settings) == expected


def test_shards_of_one_job_share_a_boundary_and_parse_back():
    boundary = boundary_for("abc")
    assert len(boundary) == 32 and boundary == boundary_for("abc") != boundary_for("abd")
    frames = [Item(i, i / 30) for i in range(3)]
    body, content_type = Request(frames, [b"a", b"bb", b"ccc"]).encode(boundary)
    assert content_type == f"multipart/form-data; boundary={boundary}"
    assert parse_multipart(body, content_type) == [
        ("frame_000000", b"a"), ("frame_000001", b"bb"), ("frame_000002", b"ccc")]
    with pytest.raises(ValueError, match="32 characters"):
        multipart_body([("x", b"1")], "short")


def test_index_round_trips():
    index = ShardIndex("multipart/form-data; boundary=x", {"shard-000000": ["frame_000000"]},
                       {"frame_000001": 7_000_000})
    assert ShardIndex.from_json(index.to_json()) == index


def test_model_needs_a_name_or_all_three_parts():
    with pytest.raises(InputError, match="--image-uri, --role"):
        TransformModel(artifact="s3://b/model.tar.gz")
    with pytest.raises(InputError, match="not both"):
        TransformModel(artifact="s3://b/model.tar.gz", name="m")
    with pytest.raises(InputError, match="s3:// URL"):
        TransformModel(artifact="/local/model.tar.gz", image_uri="i", role="r")
    assert TransformModel(name="mine").model_name() == "mine"
    assert MODEL.model_name() == MODEL.model_name()
    assert JOB_NAME.match(MODEL.model_name())


def test_batch_names_follow_the_frames_and_make_valid_job_names():
    frames = [Item(i, i / 30, s3_bucket="b", s3_key=f"p/frame_{i:06d}.jpg")
              for i in range(4)]
    etags = {f.s3_key: "e" for f in frames}
    settings = {"frames_per_shard": 256}
    batch = fingerprint(frames, etags, "m", settings)
    assert batch == fingerprint(list(frames), dict(etags), "m", dict(settings))
    assert batch != fingerprint(frames[:3], etags, "m", settings)
    assert batch != fingerprint(frames, {**etags, frames[0].s3_key: "changed"}, "m", settings)
    assert batch != fingerprint(frames, etags, "other-model", settings)
    assert JOB_NAME.match(job_name(batch, 50))


def test_options_refuse_what_the_job_cannot_take():
    with pytest.raises(InputError, match="over the job's 6 MB"):
        TransformOptions(model=MODEL, max_payload=7 * 1024 * 1024)
    with pytest.raises(InputError, match="max_concurrent must be 1-100"):
        TransformOptions(model=MODEL, max_concurrent=101)
