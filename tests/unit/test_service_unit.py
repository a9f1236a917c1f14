"""The service's batch split and merge, with a FakeContext and a real small engine.

Every test runs on both engines (onnxruntime and MXNet, the ONNX file bound once) with
the generated RGB model, ``max_batch_size`` 4 so that MMS batches are run in chunks.
"""
from __future__ import annotations

import base64
import logging
import re
import io
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from frame_infer.models import testgen
from model_handler.engine import Chunk, bucket_sizes, plan_chunks
from model_handler.imaging import decode_image, normalise
from model_handler.s3fetch import S3Fetcher
from model_handler.service import ImageClassifierService

from ..helpers.fakes import FakeContext
from ..helpers.images import encode

LABELS = ["cat", "dog", "bird", "fish", "frog"]
MAX_IMAGE_PIXELS = 100_000
SERVICE_CONFIG = {"labels": LABELS, "scale": 1 / 255, "mean": [0.485, 0.456, 0.406],
                  "std": [0.229, 0.224, 0.225], "context": "cpu", "threads": 1,
                  "max_batch_size": 4, "max_image_pixels": MAX_IMAGE_PIXELS}
ENGINES = ["onnxruntime", "mxnet"]
MULTIPART = "multipart/form-data; boundary=----frame-infer"


# -- images -----------------------------------------------------------------------------------
def picture(seed: int, size: tuple[int, int] = (53, 71)) -> Image.Image:
    """A coloured gradient plus noise: different seeds give visibly different predictions."""
    rng = np.random.RandomState(seed)
    width, height = size
    base = rng.uniform(0, 255, 3)
    slope = rng.uniform(-3, 3, (1, 3))
    ramp = np.linspace(0, 1, width)[:, None] * slope * 60
    pixels = base + ramp[None, :, :] + rng.normal(0, 40, (height, width, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


GOOD = {f"g{i}": encode(picture(i), "PNG" if i % 2 else "JPEG") for i in range(10)}
NOT_AN_IMAGE = b"these bytes are not an image"
TRUNCATED_JPEG = encode(picture(99, (200, 150)), "JPEG")[:300]
ONLY_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# -- requests as MMS hands them over -----------------------------------------------------------
def raw(content_type: str | None, data: bytes) -> tuple[dict, dict]:
    headers = {"Content-Type": content_type} if content_type else {}
    # MMS also lists each parameter with its own content type among the headers.
    headers["body"] = {"content-type": content_type or ""}
    return headers, {"body": bytearray(data)}


def multipart(parts: dict[str, bytes]) -> tuple[dict, dict]:
    return {"content-type": MULTIPART}, {k: bytearray(v) for k, v in parts.items()}


def json_request(instances: list) -> tuple[dict, dict]:
    body = json.dumps({"instances": instances}).encode()
    return {"CONTENT-TYPE": "application/json"}, {"body": bytearray(body)}


def npy_request(array: np.ndarray) -> tuple[dict, dict]:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return {"Content-Type": "application/x-npy"}, {"body": bytearray(buffer.getvalue())}


def run(service, requests: list[tuple[dict, dict]]):
    """One MMS batch: returns the parsed bodies and the context that recorded the answers."""
    context = FakeContext([headers for headers, _ in requests], model_name="rgb",
                          batch_size=len(requests))
    data = [request for _, request in requests]
    responses = service.handle(data, context)
    assert isinstance(responses, list) and len(responses) == len(data)
    assert all(isinstance(r, str) for r in responses)
    for idx in range(len(data)):
        # A multi-request batch sets no response header at all (MMS 1.1.11 decoder bug).
        expected = "application/json" if len(data) == 1 else None
        assert context.content_types.get(idx) == expected
        assert context.get_response_content_type(idx) == expected
        assert context.get_response_headers(idx) == ({} if expected is None else
                                                     {"content-type": expected})
    return [json.loads(r) for r in responses], context


def probabilities(entry: dict) -> np.ndarray:
    return np.array([entry["probabilities"][label] for label in LABELS])


# -- the service ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rgb_onnx(tmp_path_factory):
    return testgen.write_test_model("rgb", tmp_path_factory.mktemp("rgb-onnx") / "rgb.onnx")


@pytest.fixture(scope="module", params=ENGINES)
def service(request, rgb_onnx, tmp_path_factory) -> ImageClassifierService:
    engine = request.param
    folder = tmp_path_factory.mktemp(f"model-{engine}")
    shutil.copy(rgb_onnx, folder / "rgb.onnx")
    (folder / "model-config.json").write_text(json.dumps(dict(SERVICE_CONFIG, engine=engine)))
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("FRAME_INFER_"):
                mp.delenv(name)
        svc = ImageClassifierService()
        svc.initialize(FakeContext([], model_dir=str(folder), gpu_id=None, batch_size=8,
                                   model_name="rgb"))
    assert svc.initialized and svc.engine.name == engine
    assert svc._fetcher.allowed == frozenset()  # no bucket allowed: nothing may be fetched
    yield svc
    svc._decode_pool.shutdown(wait=True)


@pytest.fixture(scope="module")
def solo(service) -> dict[str, np.ndarray]:
    """Each good image's probabilities when it is sent alone, as the only request."""
    result = {}
    for name, data in GOOD.items():
        bodies, _ = run(service, [raw("image/png", data)])
        (entry,) = bodies[0]["predictions"]
        assert entry["id"] == "0"
        result[name] = probabilities(entry)
    return result


def assert_prediction(entry: dict, image_id: str, expected: np.ndarray | None = None):
    assert entry["id"] == image_id
    assert "error" not in entry, entry
    assert list(entry["probabilities"]) == LABELS
    probs = probabilities(entry)
    assert probs.sum() == pytest.approx(1.0, abs=1e-6)
    assert entry["label"] == LABELS[int(probs.argmax())]
    assert entry["score"] == pytest.approx(probs.max())
    if expected is not None:
        np.testing.assert_allclose(probs, expected, atol=1e-5, rtol=0)


def assert_error(entry: dict, image_id: str, code: str):
    assert entry == {"id": image_id, "error": {"code": code,
                                               "message": entry["error"]["message"]}}
    assert entry["error"]["message"]


def test_images_give_distinct_predictions(solo):
    """Guard for the order tests below: a shifted answer would be noticed."""
    names = sorted(solo)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert np.abs(solo[a] - solo[b]).max() > 1e-3, (a, b)


def test_matches_the_onnx_model_run_directly(service, solo, rgb_onnx):
    import onnxruntime as ort

    session = ort.InferenceSession(str(rgb_onnx), providers=["CPUExecutionProvider"])
    names = sorted(GOOD)
    batch = np.stack([decode_image(GOOD[n], service.config) for n in names]).astype(np.float32)
    normalise(batch, np.arange(len(batch)), service.config)
    logits = session.run(None, {"image": batch})[0]
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    got = np.stack([solo[n] for n in names])
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


def test_bad_images_at_start_middle_and_end_keep_their_places(service, solo):
    requests = [
        multipart({"bad_first": NOT_AN_IMAGE, "a": GOOD["g0"], "b": GOOD["g1"]}),
        json_request([{"id": "c", "b64": b64(GOOD["g2"])},
                      {"id": "bad_middle", "b64": b64(TRUNCATED_JPEG)},
                      {"b64": b64(GOOD["g3"])}]),
        multipart({"d": GOOD["g4"], "e": GOOD["g5"], "bad_last": ONLY_PNG_MAGIC}),
    ]
    bodies, context = run(service, requests)
    assert [context.status(i) for i in range(3)] == [200, 200, 200]
    assert all(context.statuses[i][1] == "OK" for i in range(3))

    first, second, third = (body["predictions"] for body in bodies)
    assert len(first) == len(second) == len(third) == 3
    assert_error(first[0], "bad_first", "invalid_image")
    assert_prediction(first[1], "a", solo["g0"])
    assert_prediction(first[2], "b", solo["g1"])
    assert_prediction(second[0], "c", solo["g2"])
    assert_error(second[1], "bad_middle", "invalid_image")
    assert_prediction(second[2], "2", solo["g3"])  # no id: its index
    assert_prediction(third[0], "d", solo["g4"])
    assert_prediction(third[1], "e", solo["g5"])
    assert_error(third[2], "bad_last", "invalid_image")
    for body in bodies:
        assert body["model"] == {"name": "rgb", "engine": service.engine.name,
                                 "context": "cpu(0)",
                                 "input": {"width": 40, "height": 48, "color_mode": "RGB",
                                           "faces": False}}


def logged_batch(caplog) -> tuple[int, int]:
    """(requests, images) of the last batch the service logged."""
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("batch: ")]
    assert lines, "the service logged no batch line"
    requests, images = re.match(r"batch: requests=(\d+) images=(\d+)", lines[-1]).groups()
    return int(requests), int(images)


def test_batch_log_counts_requests_and_good_images(service, caplog):
    caplog.set_level(logging.INFO, logger="model_handler.service")
    requests = [multipart({"a": GOOD["g0"], "x": NOT_AN_IMAGE}),
                raw("image/jpeg", GOOD["g2"]),
                json_request([{"b64": b64(GOOD["g3"])}, {"b64": b64(GOOD["g4"])}])]
    _, context = run(service, requests)
    assert logged_batch(caplog) == (3, 4)
    for idx in range(3):
        assert "X-Batch-Requests" not in context.get_response_headers(idx)


def emf_records(capsys) -> list[dict]:
    """The EMF lines the service printed to stdout since the last call."""
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()
            if line.startswith('{"_aws"')]


def test_each_batch_prints_one_emf_record_with_its_figures(service, capsys, monkeypatch):
    capsys.readouterr()
    requests = [multipart({"a": GOOD["g0"], "x": NOT_AN_IMAGE, "y": NOT_AN_IMAGE}),
                raw("text/plain", b"hello"),
                json_request([{"b64": b64(GOOD["g3"])}, {"id": "no-source"}])]
    run(service, requests)
    (record,) = emf_records(capsys)
    assert (record["Requests"], record["Images"], record["ImageErrors"]) == (3, 5, 3)
    assert record["RequestImages"] == [3, 0, 2]
    assert record["RequestStatuses"] == {"200": 2, "415": 1}
    assert record["ImageErrorCodes"] == {"invalid_image": 2, "invalid_instance": 1}
    assert record["InferenceLatency"] > 0 and record["EndpointName"] == "local"
    # A failed batch still reports itself: every request 500, no image answered.
    monkeypatch.setattr(service.engine, "forward", lambda batch: 1 / 0)
    run(service, [raw("image/png", GOOD["g1"])])
    (failed,) = emf_records(capsys)
    assert (failed["Requests"], failed["Images"], failed["RequestStatuses"]) == (
        1, 0, {"500": 1})


@pytest.mark.parametrize("middle, status, code", [
    (raw("text/plain", b"hello"), 415, "unsupported_content_type"),
    (raw(None, GOOD["g1"]), 415, "unsupported_content_type"),
    (({"Content-Type": "application/json"}, {"body": bytearray(b"{oops")}), 400,
     "invalid_json"),
    (({"Content-Type": "image/png"}, {}), 400, "no_images"),
    (npy_request(np.zeros((1, 3, 10, 10), np.float32)), 400, "invalid_shape"),
])
def test_a_failed_request_does_not_disturb_the_others(service, solo, middle, status, code,
                                                       caplog):
    caplog.set_level(logging.INFO, logger="model_handler.service")
    requests = [raw("image/png", GOOD["g7"]), middle,
                multipart({"p": GOOD["g8"], "q": GOOD["g9"]})]
    bodies, context = run(service, requests)
    assert [context.status(i) for i in range(3)] == [200, status, 200]
    assert bodies[1] == {"error": {"code": code, "message": bodies[1]["error"]["message"]}}
    assert bodies[1]["error"]["message"]
    assert_prediction(bodies[0]["predictions"][0], "0", solo["g7"])
    assert [e["id"] for e in bodies[2]["predictions"]] == ["p", "q"]
    assert_prediction(bodies[2]["predictions"][0], "p", solo["g8"])
    assert_prediction(bodies[2]["predictions"][1], "q", solo["g9"])
    assert logged_batch(caplog) == (3, 3)


def test_a_missing_request_dict_is_answered_too(service, solo):
    bodies, context = run(service, [raw("image/png", GOOD["g1"]), ({"Content-Type": "image/png"},
                                                                   None)])
    assert [context.status(0), context.status(1)] == [200, 400]
    assert bodies[1]["error"]["code"] == "no_images"
    assert_prediction(bodies[0]["predictions"][0], "0", solo["g1"])


def test_request_with_only_bad_images_is_200_with_error_entries(service, caplog):
    caplog.set_level(logging.INFO, logger="model_handler.service")
    bodies, context = run(service, [multipart({"x": NOT_AN_IMAGE, "y": TRUNCATED_JPEG,
                                               "z": ONLY_PNG_MAGIC})])
    assert context.status(0) == 200
    predictions = bodies[0]["predictions"]
    for entry, image_id in zip(predictions, "xyz"):
        assert_error(entry, image_id, "invalid_image")
    assert len(predictions) == 3
    assert logged_batch(caplog) == (1, 0)


def test_all_bad_request_next_to_a_good_one(service, solo):
    bodies, context = run(service, [json_request([{"id": "k"}, {"b64": "%%%"}]),
                                    raw("application/x-image", GOOD["g5"])])
    assert [context.status(0), context.status(1)] == [200, 200]
    assert_error(bodies[0]["predictions"][0], "k", "invalid_instance")
    assert_error(bodies[0]["predictions"][1], "1", "invalid_instance")
    assert_prediction(bodies[1]["predictions"][0], "0", solo["g5"])


def test_same_image_alone_or_in_a_batch_gives_the_same_prediction(service, solo, caplog):
    """9 images over 4 requests: chunks of 4, 4 and 1 on MXNet's bucket executors."""
    caplog.set_level(logging.INFO, logger="model_handler.service")
    order = ["g3", "g0", "g9", "g1", "g8", "g2", "g7", "g4", "g6"]
    requests = [multipart({f"f_{n}": GOOD[n] for n in order[:3]}),
                raw("image/jpeg", GOOD[order[3]]),
                json_request([{"id": f"f_{n}", "b64": b64(GOOD[n])} for n in order[4:8]]),
                multipart({f"f_{order[8]}": GOOD[order[8]]})]
    bodies, context = run(service, requests)
    got = [entry for body in bodies for entry in body["predictions"]]
    expected_ids = [f"f_{n}" for n in order[:3]] + ["0"] + [f"f_{n}" for n in order[4:]]
    assert [entry["id"] for entry in got] == expected_ids
    for entry, name in zip(got, order):
        assert_prediction(entry, entry["id"], solo[name])
    assert logged_batch(caplog) == (4, 9)


def test_npy_inputs_match_the_encoded_image(service, solo):
    """uint8 .npy pixels are normalised like decoded images; float32 input is used as is."""
    img = picture(42, (40, 48))
    png = encode(img)
    pixels = decode_image(png, service.config)
    normalised = pixels[None].astype(np.float32)
    normalise(normalised, np.array([0]), service.config)
    bodies, context = run(service, [raw("image/png", png),
                                    npy_request(np.stack([pixels, pixels])),
                                    npy_request(normalised)])
    assert [context.status(i) for i in range(3)] == [200, 200, 200]
    reference = probabilities(bodies[0]["predictions"][0])
    assert [e["id"] for e in bodies[1]["predictions"]] == ["0", "1"]
    for entry in bodies[1]["predictions"] + bodies[2]["predictions"]:
        assert_prediction(entry, entry["id"], reference)


def test_image_over_the_pixel_limit_is_image_too_large(service, solo):
    big = encode(picture(5, (400, 300)))  # 120,000 pixels > 100,000
    bodies, context = run(service, [multipart({"small": GOOD["g0"], "big": big,
                                               "small2": GOOD["g1"]})])
    assert context.status(0) == 200
    small, too_large, small2 = bodies[0]["predictions"]
    assert_error(too_large, "big", "image_too_large")
    assert "400x300" in too_large["error"]["message"]
    assert_prediction(small, "small", solo["g0"])
    assert_prediction(small2, "small2", solo["g1"])


def test_s3_reference_to_a_bucket_not_allowed_is_never_fetched(service, solo, monkeypatch):
    calls = []

    def no_client(self):
        calls.append(self)
        raise AssertionError("the service tried to reach S3")

    monkeypatch.setattr(S3Fetcher, "_get_client", no_client)
    bodies, context = run(service, [json_request([
        {"id": "remote", "s3": "s3://someone-elses-bucket/frames/f1.jpg"},
        {"id": "local", "b64": b64(GOOD["g2"])},
        {"id": "remote2", "s3": "s3://another/f2.jpg"}])])
    assert calls == []
    assert context.status(0) == 200
    remote, local, remote2 = bodies[0]["predictions"]
    assert_error(remote, "remote", "s3_forbidden")
    assert "someone-elses-bucket" in remote["error"]["message"]
    assert_error(remote2, "remote2", "s3_forbidden")
    assert_prediction(local, "local", solo["g2"])


class FakeS3Client:
    """Enough of boto3's S3 client for S3Fetcher: get_object from a dict."""

    def __init__(self, objects: dict[tuple[str, str], bytes]):
        self.objects = objects
        self.requested: list[tuple[str, str]] = []

    def get_object(self, Bucket, Key):  # noqa: N803 - boto3's spelling
        from botocore.exceptions import ClientError

        self.requested.append((Bucket, Key))
        if (Bucket, Key) not in self.objects:
            raise ClientError({"Error": {"Code": "NoSuchKey", "Message": "gone"}}, "GetObject")
        data = self.objects[(Bucket, Key)]
        return {"Body": io.BytesIO(data), "ContentLength": len(data)}


def test_s3_references_from_an_allowed_bucket_are_fetched_in_order(service, solo,
                                                                   monkeypatch):
    client = FakeS3Client({("frames", "a.jpg"): GOOD["g6"], ("frames", "b.png"): GOOD["g3"],
                           ("frames", "junk"): NOT_AN_IMAGE})
    monkeypatch.setattr(service, "_fetcher", S3Fetcher(["frames"], client=client))
    bodies, context = run(service, [json_request([
        {"id": "a", "s3": "s3://frames/a.jpg"}, {"id": "gone", "s3": "s3://frames/missing"},
        {"id": "b", "s3": "s3://frames/b.png"}, {"id": "junk", "s3": "s3://frames/junk"},
        {"id": "other", "s3": "s3://private/x.jpg"}])])
    assert context.status(0) == 200
    a, gone, b, junk, other = bodies[0]["predictions"]
    assert_prediction(a, "a", solo["g6"])
    assert_error(gone, "gone", "s3_not_found")
    assert_prediction(b, "b", solo["g3"])
    assert_error(junk, "junk", "invalid_image")
    assert_error(other, "other", "s3_forbidden")
    assert sorted(client.requested) == [("frames", "a.jpg"), ("frames", "b.png"),
                                        ("frames", "junk"), ("frames", "missing")]


def test_engine_failure_answers_every_request_with_500(service, monkeypatch):
    def broken_forward(batch):
        raise RuntimeError("accelerator went away")

    monkeypatch.setattr(service.engine, "forward", broken_forward)
    requests = [raw("image/png", GOOD["g0"]), raw("text/plain", b"x"),
                multipart({"a": GOOD["g1"], "b": GOOD["g2"]})]
    bodies, context = run(service, requests)  # must not raise
    assert [context.status(i) for i in range(3)] == [500, 500, 500]
    assert all(context.statuses[i][1] == "Internal Server Error" for i in range(3))
    for body in bodies:
        assert body["error"]["code"] == "internal_error"
        assert "accelerator went away" in body["error"]["message"]


def test_service_recovers_after_an_engine_failure(service, solo, monkeypatch):
    with monkeypatch.context() as mp:
        mp.setattr(service.engine, "forward", lambda batch: 1 / 0)
        bodies, context = run(service, [raw("image/png", GOOD["g4"])])
        assert context.status(0) == 500
    bodies, context = run(service, [raw("image/png", GOOD["g4"])])
    assert context.status(0) == 200
    assert_prediction(bodies[0]["predictions"][0], "0", solo["g4"])


# -- chunk planning ---------------------------------------------------------------------------
@pytest.mark.parametrize("max_batch", [1, 3, 4, 24, 32])
def test_plan_chunks_covers_every_image_exactly_once_within_the_buckets(max_batch):
    buckets = bucket_sizes(max_batch)
    assert buckets[-1] == max_batch and list(buckets) == sorted(set(buckets))
    for total in range(0, 4 * max_batch + 3):
        chunks = plan_chunks(total, buckets)
        covered = [i for c in chunks for i in range(c.start, c.start + c.count)]
        assert covered == list(range(total))
        for chunk in chunks:
            assert chunk.bucket in buckets
            assert 1 <= chunk.count <= chunk.bucket <= max_batch
            # Padding only when it wastes at most a quarter of the bucket.
            assert (chunk.bucket - chunk.count) / chunk.bucket <= 0.25


def test_bucket_sizes():
    assert bucket_sizes(1) == (1,)
    assert bucket_sizes(4) == (1, 2, 4)
    assert bucket_sizes(24) == (1, 2, 4, 8, 16, 24)
    assert bucket_sizes(32) == (1, 2, 4, 8, 16, 32)


def test_plan_chunks_waste_rule():
    buckets = (1, 2, 4, 8)
    assert plan_chunks(0, buckets) == []
    assert plan_chunks(8, buckets) == [Chunk(0, 8, 8)]
    assert plan_chunks(7, buckets) == [Chunk(0, 7, 8)]  # 1/8 wasted: padded
    assert plan_chunks(6, buckets) == [Chunk(0, 6, 8)]  # 2/8 = the limit: padded
    assert plan_chunks(5, buckets) == [Chunk(0, 4, 4), Chunk(4, 1, 1)]  # 3/8: split
    assert plan_chunks(3, buckets) == [Chunk(0, 3, 4)]
    assert plan_chunks(19, buckets) == [Chunk(0, 8, 8), Chunk(8, 8, 8), Chunk(16, 3, 4)]
    assert plan_chunks(3, buckets, max_waste=0.0) == [Chunk(0, 2, 2), Chunk(2, 1, 1)]
    assert plan_chunks(5, buckets, max_waste=0.5) == [Chunk(0, 5, 8)]
    assert plan_chunks(70, bucket_sizes(32)) == [Chunk(0, 32, 32), Chunk(32, 32, 32),
                                                 Chunk(64, 6, 8)]


def test_each_request_spends_its_own_decoded_pixel_budget_in_order(service, solo,
                                                                  monkeypatch):
    """max_request_pixels: an image past what its request has left is image_too_large; later
    smaller ones and the other requests of the batch are still answered."""
    import dataclasses

    small = 53 * 71  # every GOOD image
    big = encode(picture(5, (300, 200)))  # 60,000 pixels: under max_image_pixels
    monkeypatch.setattr(service, "config",
                        dataclasses.replace(service.config, max_request_pixels=2 * small + 999))
    bodies, context = run(service, [multipart({"a": GOOD["g0"], "big": big, "b": GOOD["g1"],
                                               "c": GOOD["g2"]}),
                                    multipart({"d": GOOD["g3"], "e": GOOD["g4"]})])
    assert [context.status(0), context.status(1)] == [200, 200]
    a, too_large, b, c = bodies[0]["predictions"]
    assert_prediction(a, "a", solo["g0"])
    assert_error(too_large, "big", "image_too_large")
    assert "max_request_pixels" in too_large["error"]["message"]
    assert str(2 * small + 999) in too_large["error"]["message"]
    assert_prediction(b, "b", solo["g1"])
    assert_error(c, "c", "image_too_large")  # 999 pixels left: the third small one is refused
    d, e = bodies[1]["predictions"]
    assert_prediction(d, "d", solo["g3"])
    assert_prediction(e, "e", solo["g4"])


# -- issue 21: nothing silently wrong ----------------------------------------------------------
def test_a_model_output_with_nan_or_inf_is_a_per_image_error_and_the_answer_stays_json(
        service, solo, monkeypatch):
    """Before: ``"score": NaN`` in the answer, which is not JSON (the client's
    predictions.jsonl became invalid). Now the image gets ``invalid_output``, the others
    their predictions, and the body parses with a strict JSON parser."""
    real = service.engine.forward

    def poisoned(batch):
        out = np.array(real(batch), dtype=np.float32)
        out[0, 1] = np.nan
        out[2, 0] = np.inf
        return out

    monkeypatch.setattr(service.engine, "forward", poisoned)
    context = FakeContext([{"content-type": MULTIPART}], model_name="rgb")
    parts = {"a": GOOD["g0"], "b": GOOD["g1"], "c": GOOD["g2"]}
    (answer,) = service.handle([{k: bytearray(v) for k, v in parts.items()}], context)

    def refuse(constant):
        raise ValueError(f"{constant} in the answer")

    body = json.loads(answer, parse_constant=refuse)
    a, b, c = body["predictions"]
    assert_error(a, "a", "invalid_output")
    assert "NaN or Inf" in a["error"]["message"]
    assert_prediction(b, "b", solo["g1"])
    assert_error(c, "c", "invalid_output")
    assert context.status(0) == 200


class SilentS3Client:
    """get_object that never answers for keys under ``silent/`` (until released)."""

    def __init__(self, objects: dict):
        self.objects, self.release = objects, __import__("threading").Event()

    def get_object(self, Bucket, Key):  # noqa: N803 - boto3's spelling
        if Key.startswith("silent/"):
            self.release.wait(60)
        data = self.objects[(Bucket, Key)]
        return {"Body": io.BytesIO(data), "ContentLength": len(data)}


def test_a_silent_s3_delays_the_other_requests_of_its_batch_by_the_shared_wait_only(
        service, solo, monkeypatch):
    """Before: a good image of another client in the same MMS batch waited the whole S3
    deadline (28 s of 30). Now the batch waits ``s3_shared_wait_s``; the request with the
    stuck reference is answered 503 ``s3_slow`` (retry), the other one its prediction."""
    import dataclasses
    import time

    client = SilentS3Client({("frames", "silent/a.jpg"): GOOD["g6"]})
    monkeypatch.setattr(service, "_fetcher", S3Fetcher(["frames"], client=client,
                                                       deadline_s=30))
    monkeypatch.setattr(service, "config",
                        dataclasses.replace(service.config, s3_shared_wait_s=0.5))
    started = time.monotonic()
    try:
        bodies, context = run(service, [json_request([{"id": "x", "s3":
                                                       "s3://frames/silent/a.jpg"}]),
                                        raw("image/png", GOOD["g0"])])
    finally:
        client.release.set()
    assert time.monotonic() - started < 5
    assert context.status(0) == 503 and bodies[0]["error"]["code"] == "s3_slow"
    assert "s3_shared_wait_s" in bodies[0]["error"]["message"]
    assert context.status(1) == 200
    assert_prediction(bodies[1]["predictions"][0], "0", solo["g0"])


def test_s3_references_spend_the_requests_byte_and_pixel_budgets(service, monkeypatch):
    """Before: 300 references to one 20 MB object made the worker fetch (and hold) 6 GB.
    Now a reference repeated in a request is fetched once, and the distinct objects' bytes
    and decoded pixels are spent from the request's budgets."""
    import dataclasses

    client = FakeS3Client({("frames", "a.png"): GOOD["g1"], ("frames", "b.png"): GOOD["g3"]})
    monkeypatch.setattr(service, "_fetcher", S3Fetcher(["frames"], client=client))
    bodies, _ = run(service, [json_request([{"id": str(i), "s3": "s3://frames/a.png"}
                                            for i in range(300)])])
    assert client.requested == [("frames", "a.png")]
    assert all("label" in p for p in bodies[0]["predictions"])
    size = len(GOOD["g1"])
    monkeypatch.setattr(service, "config", dataclasses.replace(
        service.config, s3_max_bytes_per_request=size + len(GOOD["g3"]) - 1))
    bodies, _ = run(service, [json_request([{"id": "a", "s3": "s3://frames/a.png"},
                                            {"id": "b", "s3": "s3://frames/b.png"}])])
    codes = [p.get("error", {}).get("code") for p in bodies[0]["predictions"]]
    assert sorted(codes, key=str) == ["image_too_large", None] or \
        sorted(codes, key=str) == [None, "image_too_large"]
    refused = [p for p in bodies[0]["predictions"] if "error" in p][0]
    assert "s3_max_bytes_per_request" in refused["error"]["message"]
    pixels = 53 * 71  # one picture's decoded pixels
    monkeypatch.setattr(service, "config", dataclasses.replace(
        service.config, max_request_pixels=pixels + 10))
    bodies, _ = run(service, [json_request([{"id": "a", "s3": "s3://frames/a.png"},
                                            {"id": "b", "s3": "s3://frames/b.png"}])])
    codes = sorted(str(p.get("error", {}).get("code")) for p in bodies[0]["predictions"])
    assert codes == ["None", "image_too_large"]
