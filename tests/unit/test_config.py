"""load_config: defaults from the ONNX file, model-config.json, FRAME_INFER_* environment."""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from frame_infer.models import testgen
from model_handler.config import FERPLUS_LABELS, ConfigError, load_config
from model_handler.service import ImageClassifierService

from ..helpers.fakes import FakeContext


@pytest.fixture(scope="module")
def onnx_files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("config-models")
    return {kind: testgen.write_test_model(kind, root / f"{kind}.onnx")
            for kind in ("ferplus", "rgb")}


@pytest.fixture(autouse=True)
def no_frame_infer_environment(monkeypatch):
    """The developer's own FRAME_INFER_* variables must not leak into these tests."""
    import os

    for name in list(os.environ):
        if name.startswith("FRAME_INFER_"):
            monkeypatch.delenv(name)


def model_dir(tmp_path: Path, onnx_files, kind: str, config: dict | str | None = None,
              name: str | None = None) -> Path:
    folder = tmp_path / f"model-{kind}"
    folder.mkdir(exist_ok=True)
    (folder / (name or f"{kind}.onnx")).symlink_to(onnx_files[kind])
    if config is not None:
        text = config if isinstance(config, str) else json.dumps(config)
        (folder / "model-config.json").write_text(text)
    return folder


# -- defaults derived from the ONNX file ------------------------------------------------------
def test_ferplus_defaults_come_from_the_onnx_graph(tmp_path, onnx_files):
    cfg = load_config(model_dir(tmp_path, onnx_files, "ferplus"), environ={})
    assert cfg.model_file == "ferplus.onnx"
    assert cfg.input_name == "Input3"  # the weights, also listed as inputs, are skipped
    assert (cfg.channels, cfg.height, cfg.width) == (1, 64, 64) == cfg.input_shape
    assert cfg.color_mode == "L"
    assert cfg.labels == FERPLUS_LABELS
    assert cfg.labels[:3] == ("neutral", "happiness", "surprise") and len(cfg.labels) == 8
    # Documented defaults.
    assert (cfg.engine, cfg.context, cfg.softmax) == ("mxnet", "auto", True)
    assert (cfg.scale, cfg.mean, cfg.std) == (1.0, (0.0,), (1.0,))
    assert cfg.max_batch_size == 32 and cfg.allowed_s3_buckets == ()


def test_rgb_defaults_come_from_the_onnx_graph(tmp_path, onnx_files):
    cfg = load_config(model_dir(tmp_path, onnx_files, "rgb", name="any-name.onnx"), environ={})
    assert cfg.model_file == "any-name.onnx"
    assert cfg.input_name == "image"
    assert cfg.input_shape == (3, 48, 40)
    assert cfg.color_mode == "RGB"
    assert cfg.labels == ("class_0", "class_1", "class_2", "class_3", "class_4")


def test_config_is_frozen(tmp_path, onnx_files):
    cfg = load_config(model_dir(tmp_path, onnx_files, "rgb"), environ={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.engine = "onnxruntime"


# -- model-config.json ------------------------------------------------------------------------
def test_model_config_json_overrides_the_defaults(tmp_path, onnx_files):
    config = {"labels": ["cat", "dog", "bird", "fish", "frog"], "scale": 1 / 255,
              "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
              "engine": "onnxruntime", "context": "cpu", "max_batch_size": 8, "threads": 2,
              "softmax": False, "max_image_pixels": 1000, "max_images_per_request": 5,
              "allowed_s3_buckets": ["frames", "more-frames"]}
    cfg = load_config(model_dir(tmp_path, onnx_files, "rgb", config), environ={})
    assert cfg.labels == ("cat", "dog", "bird", "fish", "frog")
    assert cfg.scale == pytest.approx(1 / 255)
    assert cfg.mean == (0.485, 0.456, 0.406) and cfg.std == (0.229, 0.224, 0.225)
    assert (cfg.engine, cfg.context, cfg.max_batch_size, cfg.threads) == \
        ("onnxruntime", "cpu", 8, 2)
    assert cfg.softmax is False
    assert (cfg.max_image_pixels, cfg.max_images_per_request) == (1000, 5)
    assert cfg.allowed_s3_buckets == ("frames", "more-frames")
    # What the file does not set is still derived from the graph.
    assert cfg.input_name == "image" and cfg.input_shape == (3, 48, 40)


def test_model_config_json_accepts_comma_strings_and_single_numbers(tmp_path, onnx_files):
    config = {"labels": "a, b,c,d ,e", "mean": 127.5, "std": "127.5",
              "allowed_s3_buckets": "frames"}
    cfg = load_config(model_dir(tmp_path, onnx_files, "rgb", config), environ={})
    assert cfg.labels == ("a", "b", "c", "d", "e")
    assert cfg.mean == (127.5,) and cfg.std == (127.5,)
    assert cfg.allowed_s3_buckets == ("frames",)


def test_model_file_in_the_config_picks_one_of_several_onnx_files(tmp_path, onnx_files):
    folder = model_dir(tmp_path, onnx_files, "rgb", {"model_file": "rgb.onnx"})
    (folder / "ferplus.onnx").symlink_to(onnx_files["ferplus"])
    cfg = load_config(folder, environ={})
    assert cfg.model_file == "rgb.onnx" and cfg.input_name == "image"


# -- environment ------------------------------------------------------------------------------
def test_environment_overrides_the_file_and_the_defaults(tmp_path, onnx_files):
    folder = model_dir(tmp_path, onnx_files, "ferplus", {"engine": "mxnet", "context": "gpu"})
    environ = {"FRAME_INFER_ENGINE": "onnxruntime", "FRAME_INFER_CONTEXT": "cpu",
               "FRAME_INFER_ALLOWED_S3_BUCKETS": "frames, other", "FRAME_INFER_SOFTMAX": "false",
               "FRAME_INFER_MAX_BATCH_SIZE": "8", "FRAME_INFER_SCALE": "0.5",
               "FRAME_INFER_LABELS": "a,b,c,d,e,f,g,h", "FRAME_INFER_THREADS": ""}
    cfg = load_config(folder, environ=environ)
    assert (cfg.engine, cfg.context) == ("onnxruntime", "cpu")
    assert cfg.allowed_s3_buckets == ("frames", "other")
    assert cfg.softmax is False
    assert cfg.max_batch_size == 8 and cfg.scale == 0.5
    assert cfg.labels == tuple("abcdefgh")
    assert cfg.threads == 0  # an empty variable is ignored


@pytest.mark.parametrize("value, expected", [("true", True), ("1", True), ("TRUE", True),
                                             ("false", False), ("0", False)])
def test_environment_booleans(tmp_path, onnx_files, value, expected):
    folder = model_dir(tmp_path, onnx_files, "rgb")
    assert load_config(folder, environ={"FRAME_INFER_SOFTMAX": value}).softmax is expected


def test_os_environ_is_used_when_no_environ_is_given(tmp_path, onnx_files, monkeypatch):
    monkeypatch.setenv("FRAME_INFER_ENGINE", "onnxruntime")
    folder = model_dir(tmp_path, onnx_files, "rgb")
    assert load_config(folder).engine == "onnxruntime"
    assert load_config(folder, environ={}).engine == "mxnet"


def test_environment_model_file_also_chooses_the_derived_input(tmp_path, onnx_files):
    """FRAME_INFER_MODEL_FILE wins like every other key, also over the ONNX defaults."""
    folder = model_dir(tmp_path, onnx_files, "rgb", {"model_file": "rgb.onnx"})
    (folder / "ferplus.onnx").symlink_to(onnx_files["ferplus"])
    cfg = load_config(folder, environ={"FRAME_INFER_MODEL_FILE": "ferplus.onnx"})
    assert cfg.model_file == "ferplus.onnx"
    assert cfg.input_name == "Input3" and cfg.input_shape == (1, 64, 64)
    assert cfg.labels == FERPLUS_LABELS


# -- errors -----------------------------------------------------------------------------------
def test_unknown_key_names_the_key(tmp_path, onnx_files):
    folder = model_dir(tmp_path, onnx_files, "rgb", {"engine": "mxnet", "batch_szie": 4})
    with pytest.raises(ConfigError) as info:
        load_config(folder, environ={})
    assert "batch_szie" in str(info.value)
    assert "model-config.json" in str(info.value)
    assert "max_batch_size" in str(info.value)  # lists the known keys


@pytest.mark.parametrize("kind, config, fragment", [
    ("rgb", {"engine": "tensorflow"}, "engine"),
    ("rgb", {"std": [0.2, 0, 0.2]}, "std"),
    ("rgb", {"std": 0}, "std"),
    ("rgb", {"mean": [0.5, 0.5]}, "mean"),
    ("rgb", {"std": [1, 1, 1, 1]}, "std"),
    ("ferplus", {"mean": [0.5, 0.5, 0.5]}, "mean"),
    ("rgb", {"color_mode": "L"}, "color_mode"),
    ("ferplus", {"color_mode": "RGB"}, "color_mode"),
    ("rgb", {"color_mode": "CMYK"}, "color_mode"),
    ("rgb", {"max_batch_size": 0}, "max_batch_size"),
    ("rgb", {"max_image_pixels": -1}, "max_image_pixels"),
    ("rgb", {"max_images_per_request": 0}, "max_images_per_request"),
    ("rgb", {"labels": []}, "labels"),
    ("rgb", {"scale": "1/255"}, "scale"),
    ("rgb", {"max_batch_size": "lots"}, "max_batch_size"),
    ("rgb", {"softmax": "maybe"}, "softmax"),
])
def test_invalid_values_are_config_errors_naming_the_key(tmp_path, onnx_files, kind, config,
                                                        fragment):
    with pytest.raises(ConfigError) as info:
        load_config(model_dir(tmp_path, onnx_files, kind, config), environ={})
    assert fragment in str(info.value)


@pytest.mark.parametrize("name, value, fragment", [
    ("FRAME_INFER_ENGINE", "tensorflow", "engine"),
    ("FRAME_INFER_SOFTMAX", "yes please", "FRAME_INFER_SOFTMAX"),
    ("FRAME_INFER_MAX_BATCH_SIZE", "eight", "FRAME_INFER_MAX_BATCH_SIZE"),
    ("FRAME_INFER_STD", "0", "std"),
])
def test_invalid_environment_values_are_config_errors(tmp_path, onnx_files, name, value,
                                                      fragment):
    with pytest.raises(ConfigError) as info:
        load_config(model_dir(tmp_path, onnx_files, "rgb"), environ={name: value})
    assert fragment in str(info.value)


@pytest.mark.parametrize("text", ["{not json", '["engine"]', '"mxnet"'])
def test_unreadable_or_non_object_config_file_is_a_config_error(tmp_path, onnx_files, text):
    with pytest.raises(ConfigError) as info:
        load_config(model_dir(tmp_path, onnx_files, "rgb", text), environ={})
    assert "model-config.json" in str(info.value)


def test_no_onnx_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, environ={})
    assert "exactly one .onnx" in str(info.value)


def test_two_onnx_files_without_model_file_is_a_config_error(tmp_path, onnx_files):
    folder = model_dir(tmp_path, onnx_files, "rgb")
    (folder / "ferplus.onnx").symlink_to(onnx_files["ferplus"])
    with pytest.raises(ConfigError) as info:
        load_config(folder, environ={})
    assert "ferplus.onnx" in str(info.value) and "model_file" in str(info.value)


def test_missing_or_corrupt_model_file_is_a_config_error(tmp_path, onnx_files):
    folder = model_dir(tmp_path, onnx_files, "rgb", {"model_file": "missing.onnx"})
    with pytest.raises(ConfigError) as info:
        load_config(folder, environ={})
    assert "missing.onnx" in str(info.value)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.onnx").write_bytes(b"\x08\x07garbage that is not protobuf" * 3)
    with pytest.raises(ConfigError):
        load_config(broken, environ={})


# -- checked when the service starts ----------------------------------------------------------
def test_label_count_mismatch_fails_service_initialize(tmp_path, onnx_files):
    folder = tmp_path / "model"
    folder.mkdir()
    shutil.copy(onnx_files["rgb"], folder / "rgb.onnx")
    (folder / "model-config.json").write_text(json.dumps(
        {"labels": ["cat", "dog", "bird"], "engine": "onnxruntime"}))
    assert load_config(folder, environ={}).labels == ("cat", "dog", "bird")  # valid on its own
    service = ImageClassifierService()
    with pytest.raises(ValueError) as info:
        service.initialize(FakeContext([], model_dir=str(folder), model_name="rgb"))
    message = str(info.value)
    assert "labels" in message and "5 outputs" in message and "3 labels" in message
    assert not service.initialized


def test_invalid_config_fails_service_initialize_with_config_error(tmp_path, onnx_files):
    folder = model_dir(tmp_path, onnx_files, "rgb", {"engine": "tensorflow"})
    with pytest.raises(ConfigError):
        ImageClassifierService().initialize(FakeContext([], model_dir=str(folder)))


@pytest.mark.parametrize("value, expected", [("true", True), ("false", False), ("1", True)])
def test_faces_says_the_model_takes_face_crops(tmp_path, onnx_files, value, expected):
    """``faces`` (metadata, config or FRAME_INFER_FACES): default False."""
    folder = model_dir(tmp_path, onnx_files, "ferplus")
    assert load_config(folder, environ={}).faces is False
    assert load_config(folder, environ={"FRAME_INFER_FACES": value}).faces is expected
