"""The real MMS server (Java) serving the real .mar archives on loopback ports."""
from __future__ import annotations

import base64
import io
import re
import threading

import numpy as np
import pytest
import requests
from PIL import Image

from frame_infer.serving.mms import ModelSettings, ServerError
from frame_infer.models import packager

from ..helpers.images import jpeg, png
from ..helpers.mms import model_url, running_mms
from ..helpers.models import RGB_CONFIG

pytestmark = pytest.mark.integration


def assert_prediction(entry: dict, labels=None):
    assert "error" not in entry, entry
    probs = entry["probabilities"]
    if labels:
        assert list(probs) == list(labels)
    assert abs(sum(probs.values()) - 1.0) < 1e-6
    assert entry["label"] == max(probs, key=probs.get)
    assert entry["score"] == pytest.approx(probs[entry["label"]])


def test_multipart_with_one_corrupt_image_keeps_order(mms):
    names = [f"frame_{i:06d}" for i in range(5)]
    files = [(n, (f"{n}.jpg", jpeg(i), "image/jpeg")) for i, n in enumerate(names)]
    files[2] = (names[2], ("broken.jpg", jpeg(2)[:200], "image/jpeg"))  # truncated JPEG
    response = requests.post(model_url(mms), files=files, timeout=60)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert [p["id"] for p in body["predictions"]] == names
    assert body["predictions"][2]["error"]["code"] == "invalid_image"
    for i in (0, 1, 3, 4):
        assert_prediction(body["predictions"][i], ["neutral", "happiness", "surprise",
                                                    "sadness", "anger", "disgust", "fear",
                                                    "contempt"])
    assert body["model"] == {"name": "ferplus", "engine": "mxnet", "context": "cpu(0)",
                             "input": {"width": 64, "height": 64, "color_mode": "L",
                                       "faces": False}}


def test_json_base64_and_default_ids(mms):
    instances = [{"id": "a", "b64": base64.b64encode(jpeg(10)).decode()},
                 {"b64": base64.b64encode(jpeg(11)).decode()},
                 {"id": "bad", "b64": "***not base64***"}]
    response = requests.post(model_url(mms), json={"instances": instances}, timeout=60)
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert [p["id"] for p in predictions] == ["a", "1", "bad"]
    assert_prediction(predictions[0])
    assert_prediction(predictions[1])
    assert predictions[2]["error"]["code"] == "invalid_instance"


def test_npy_batch_matches_onnxruntime(mms, ort_reference):
    """Preprocessed uint8 pixels go in; the served probabilities equal onnxruntime's."""
    rng = np.random.RandomState(3)
    level = rng.randint(20, 230, (6, 1, 1, 1))
    batch = np.clip(level + rng.normal(0, 30, (6, 1, 64, 64)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    np.save(buf, batch[:, 0])  # (N, H, W) is accepted for one channel
    response = requests.post(model_url(mms), data=buf.getvalue(),
                             headers={"Content-Type": "application/x-npy"}, timeout=60)
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert [p["id"] for p in predictions] == [str(i) for i in range(6)]
    served = np.array([list(p["probabilities"].values()) for p in predictions])
    np.testing.assert_allclose(served, ort_reference("ferplus", batch.astype(np.float32)),
                               atol=1e-4)


def test_rgb_model_normalises_as_its_config_says(mms, ort_reference):
    """Another model (RGB, 48x40, BatchNorm, modern ONNX) behind the same service."""
    images = [png(i) for i in range(3)]
    files = [(f"img{i}", (f"{i}.png", data, "image/png")) for i, data in enumerate(images)]
    response = requests.post(model_url(mms, "rgb"), files=files, timeout=60)
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    expected_input = []
    for data in images:
        img = Image.open(io.BytesIO(data)).convert("RGB").resize((40, 48), Image.BILINEAR)
        x = np.asarray(img, dtype=np.float32).transpose(2, 0, 1) * RGB_CONFIG["scale"]
        mean = np.array(RGB_CONFIG["mean"], dtype=np.float32)[:, None, None]
        std = np.array(RGB_CONFIG["std"], dtype=np.float32)[:, None, None]
        expected_input.append((x - mean) / std)
    expected = ort_reference("rgb", np.stack(expected_input))
    served = np.array([[p["probabilities"][k] for k in RGB_CONFIG["labels"]]
                       for p in predictions])
    np.testing.assert_allclose(served, expected, atol=1e-4)


def test_single_raw_image_gets_id_zero(mms):
    response = requests.post(model_url(mms), data=jpeg(5, mode="L"),
                             headers={"content-type": "image/jpeg"}, timeout=60)
    assert response.status_code == 200, response.text
    (entry,) = response.json()["predictions"]
    assert entry["id"] == "0"
    assert_prediction(entry)


def test_unsupported_content_type_is_415(mms):
    response = requests.post(model_url(mms), data=b"hello",
                             headers={"Content-Type": "text/plain"}, timeout=60)
    assert response.status_code == 415
    error = response.json()["error"]
    assert error["code"] == "unsupported_content_type"
    assert "image/jpeg" in error["message"]


def _workers(mms):
    return [(w["id"], w["startTime"]) for w in mms.model_status("ferplus")["workers"]]


def test_malformed_json_is_400_and_worker_survives(mms):
    before = _workers(mms)
    response = requests.post(model_url(mms), data=b'{"instances": [',
                             headers={"Content-Type": "application/json"}, timeout=60)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"
    following = requests.post(model_url(mms), data=jpeg(1),
                              headers={"Content-Type": "image/jpeg"}, timeout=60)
    assert following.status_code == 200
    assert _workers(mms) == before  # same worker, not restarted


def test_wrong_npy_shape_is_400(mms):
    buf = io.BytesIO()
    np.save(buf, np.zeros((2, 3, 64, 64), dtype=np.uint8))
    response = requests.post(model_url(mms), data=buf.getvalue(),
                             headers={"Content-Type": "application/x-npy"}, timeout=60)
    assert response.status_code == 400
    assert "(N, 1, 64, 64)" in response.json()["error"]["message"]


def test_body_over_server_limit_is_413(mms):
    too_big = b"\xff" * (mms.settings.max_request_bytes + 1024)
    response = requests.post(model_url(mms), data=too_big,
                             headers={"Content-Type": "image/jpeg"}, timeout=60)
    assert response.status_code == 413


def test_concurrent_requests_are_batched_and_answered_correctly(mms, ort_reference):
    """8 clients release at once; MMS aggregates them (batch_size 8, 300 ms delay)."""
    clients = 8
    barrier = threading.Barrier(clients)
    inputs = {}
    results: dict[int, requests.Response] = {}

    def send(k: int):
        rng = np.random.RandomState(100 + k)
        batch = np.clip(rng.randint(30, 220) + rng.normal(0, 25, (k % 3 + 1, 1, 64, 64)),
                        0, 255).astype(np.uint8)
        inputs[k] = batch
        buf = io.BytesIO()
        np.save(buf, batch)
        barrier.wait(timeout=30)
        results[k] = requests.post(model_url(mms), data=buf.getvalue(),
                                   headers={"Content-Type": "application/x-npy"}, timeout=120)

    threads = [threading.Thread(target=send, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    assert sorted(results) == list(range(clients))
    for k, response in results.items():
        assert response.status_code == 200, response.text
        served = np.array([list(p["probabilities"].values())
                           for p in response.json()["predictions"]])
        np.testing.assert_allclose(served, ort_reference("ferplus", inputs[k].astype(np.float32)),
                                   atol=1e-4)
    # The handler logs every batch it runs (MMS copies worker stdout into its log).
    log = (mms.log_dir / "mms_log.log").read_text()
    batched = [int(n) for n in re.findall(r"batch: requests=(\d+)", log)]
    assert max(batched) > 1, f"MMS never aggregated requests: {batched}"
    # Multi-request answers must not trip MMS's response decoder (see service._respond).
    assert "CorruptedFrameException" not in log and "Worker died" not in log


def test_broken_model_fails_registration_loudly(tmp_path, model_files):
    """A config that does not fit the model: registration fails, naming the problem.
    (`package` refuses such labels itself now; the worker's environment still can.)"""
    store = tmp_path / "store"
    packager.build_archive(model_files["rgb"], "broken", store)
    with running_mms(store, run_dir=tmp_path / "run",
                     extra_env={"FRAME_INFER_LABELS": "only,three,labels"}) as server:
        with pytest.raises(ServerError) as excinfo:
            server.register(ModelSettings("broken.mar", "broken", workers=1), timeout=60)
    assert "5 outputs but the config lists 3 labels" in str(excinfo.value)


def test_invocations_with_model_name_query_keeps_only_the_images(mms):
    """SageMaker-style /invocations: the query parameter is not mistaken for an image."""
    files = [(f"frame_{i}", (f"{i}.jpg", jpeg(i), "image/jpeg")) for i in range(3)]
    response = requests.post(f"{mms.inference_url}/invocations?model_name=ferplus",
                             files=files, timeout=60)
    assert response.status_code == 200, response.text
    assert [p["id"] for p in response.json()["predictions"]] == ["frame_0", "frame_1",
                                                                 "frame_2"]
