"""``from frame_infer import Client`` against the real MMS (the session's ``mms`` fixture)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from frame_infer import Client, FrameInferError, ImageResult
from frame_infer.client.extract import make_sample_video
from frame_infer.serving.ports import free_port
from model_handler.config import FERPLUS_LABELS

from ..helpers.images import encode, jpeg
from ..helpers.mms import model_url
from ..helpers.rows import read_rows


def gray(seed: int, size=(64, 64)) -> np.ndarray:
    return np.random.RandomState(seed).randint(0, 256, (size[1], size[0]), dtype=np.uint8)


def test_every_kind_of_input_gets_its_own_result_in_order(mms, tmp_path):
    path = tmp_path / "face.jpg"
    path.write_bytes(jpeg(1))
    images = [path, str(path), jpeg(2), Image.open(path), gray(3),
              np.stack([gray(4)] * 3, axis=2), b"not an image at all", gray(5)[:, :, None]]
    with Client(model_url(mms), batch_size=3, concurrency=2) as client:
        results = client.predict(images)
    assert [r.index for r in results] == list(range(len(images)))
    assert [r.id for r in results] == [f"frame_{i:06d}" for i in range(len(images))]
    assert all(isinstance(r, ImageResult) for r in results)
    bad = results[6]
    assert not bad.ok and bad.error["code"] == "invalid_image" and bad.label is None
    good = [r for i, r in enumerate(results) if i != 6]
    assert all(r.ok and r.label in FERPLUS_LABELS for r in good)
    assert all(set(r.probabilities) == set(FERPLUS_LABELS) for r in good)
    assert all(abs(sum(r.probabilities.values()) - 1) < 1e-4 for r in good)
    assert results[0].source == results[1].source == str(path) and results[2].source is None
    # Same file, same answer: the first went alone as stored, the second shrunk by the
    # client (the same pixels; float noise of another batch only).
    assert results[0].probabilities == pytest.approx(results[1].probabilities, abs=1e-6)


def test_predictions_equal_the_reference_engine(mms, ort_reference):
    """Lossless PNG at the model's size: the served answer is onnxruntime's softmax."""
    arrays = [gray(seed) for seed in range(5)]
    with Client(model_url(mms)) as client:
        results = client.predict(arrays)
    batch = np.stack(arrays)[:, None].astype(np.float32)  # FER+: raw 0-255 gray, (N,1,64,64)
    expected = ort_reference("ferplus", batch)
    got = np.array([[r.probabilities[lb] for lb in FERPLUS_LABELS] for r in results])
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_too_large_images_are_reported_not_sent(mms):
    """Images sent as they are (``resize_to=None``): one too large for any request gets
    ``frame_too_large``; by default ("auto") the first answer names the model's input and
    the same image goes shrunk, so it fits and is predicted."""
    big = encode(np.random.RandomState(0).randint(0, 256, (400, 400, 3), dtype=np.uint8))
    with Client(model_url(mms), max_payload=20_000, resize_to=None) as client:
        results = client.predict([gray(1), big, gray(2)])
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].error["code"] == "frame_too_large"
    assert "20000-byte request limit" in results[1].error["message"]
    with Client(model_url(mms), max_payload=20_000) as client:
        assert [r.ok for r in client.predict([gray(1), big, gray(2)])] == [True, True, True]


def test_resize_to_shrinks_before_sending_and_keeps_the_answer(mms):
    """The client's shrink is the service's own decoding: the same answer as sending the
    image as it is, from the first image (a given size) or the second ("auto")."""
    big = Image.fromarray(gray(7, size=(256, 256))).resize((640, 480))
    with Client(model_url(mms), resize_to=(64, 64, "L")) as client:
        shrunk = client.predict([big])[0]
    with Client(model_url(mms), resize_to=None) as client:
        direct = client.predict([big])[0]
    with Client(model_url(mms), batch_size=1) as client:  # "auto": learnt from answer 1
        auto = client.predict([big, big])[1]
    assert auto.label == direct.label
    assert shrunk.label == direct.label
    assert max(abs(shrunk.probabilities[k] - direct.probabilities[k])
               for k in FERPLUS_LABELS) < 1e-4
    assert max(abs(auto.probabilities[k] - direct.probabilities[k])
               for k in FERPLUS_LABELS) < 1e-4


def test_unreachable_endpoint_gives_request_failed_per_image():
    url = f"http://127.0.0.1:{free_port()}/predictions/ferplus"
    with Client(url, retries=2, timeout=5) as client:
        results = client.predict([gray(1), gray(2)])
    assert [r.error["code"] for r in results] == ["request_failed"] * 2
    assert "failed after 2 attempts" in results[0].error["message"]


def test_bad_arguments_are_clear_errors(mms):
    with pytest.raises(FrameInferError, match="unknown option.*batchsize"):
        Client(model_url(mms), batchsize=4)
    with pytest.raises(FrameInferError, match="endpoint"):
        Client("ftp://nowhere")
    with Client(model_url(mms)) as client:
        with pytest.raises(FrameInferError, match="uint8"):
            client.predict([np.zeros((8, 8), dtype=np.float32)])
        with pytest.raises(FrameInferError, match="does not exist"):
            client.predict(["/no/such/image.jpg"])


def test_predict_video_runs_the_whole_job_and_resumes(mms, tmp_path):
    video = make_sample_video(tmp_path / "clip.mp4", seconds=1, fps=30, size=(160, 120))
    with Client(model_url(mms), batch_size=8) as client:
        job = client.predict_video(video, out=tmp_path / "out")
        assert job.frames == 30 and job.summary.predicted == 30
        assert job.timeline_png.is_file()
        rows = read_rows(tmp_path / "out")
        assert [r["index"] for r in rows] == list(range(30)) and all("label" in r for r in rows)
        again = client.predict_frames(tmp_path / "out" / "frames", tmp_path / "out")
    assert again.skipped == 30 and again.requests == 0
