"""A model that describes itself: ``metadata_props`` as config defaults, below
model-config.json and the environment; the label count checked when packaging."""
from __future__ import annotations

import json

import onnx
import pytest
from onnx import helper

from frame_infer.errors import PackagingError
from frame_infer.models import testgen
from frame_infer.models.packager import stage_model_dir
from model_handler.config import CONFIG_FILE, ConfigError, load_config, metadata_props

LABELS = ["cat", "dog", "bird", "fish", "frog"]  # the rgb test model has 5 outputs
SETTINGS = {"labels": LABELS, "color_mode": "RGB", "scale": 1 / 255,
            "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "softmax": False}


def rgb_model(path, props: dict[str, str]):
    model = testgen.build_rgb()
    helper.set_model_props(model, props)
    onnx.save(model, str(path))
    return path


def test_metadata_props_are_the_defaults(tmp_path):
    rgb_model(tmp_path / "m.onnx", {**metadata_props(SETTINGS), "author": "someone"})
    cfg = load_config(tmp_path, environ={})
    assert cfg.labels == tuple(LABELS) and cfg.color_mode == "RGB"
    assert cfg.scale == pytest.approx(1 / 255) and cfg.softmax is False
    assert cfg.mean == (0.485, 0.456, 0.406) and cfg.std == (0.229, 0.224, 0.225)


def test_model_config_and_environment_win_over_metadata(tmp_path):
    rgb_model(tmp_path / "m.onnx", metadata_props(SETTINGS))
    (tmp_path / CONFIG_FILE).write_text(json.dumps({"softmax": True, "scale": 1.0}))
    cfg = load_config(tmp_path, environ={"FRAME_INFER_LABELS": "a,b,c,d,e"})
    assert cfg.softmax is True and cfg.scale == 1.0  # the archive's config
    assert cfg.labels == ("a", "b", "c", "d", "e")  # the environment
    assert cfg.mean == (0.485, 0.456, 0.406)  # still the metadata's


def test_bare_strings_work_and_bad_values_name_the_metadata(tmp_path):
    rgb_model(tmp_path / "m.onnx", {"labels": "a, b,c,d,e", "color_mode": "RGB"})
    assert load_config(tmp_path, environ={}).labels == ("a", "b", "c", "d", "e")
    rgb_model(tmp_path / "m.onnx", {"softmax": "maybe"})
    with pytest.raises(ConfigError, match="m.onnx metadata_props: softmax='maybe'"):
        load_config(tmp_path, environ={})


def test_only_model_settings_can_be_metadata():
    with pytest.raises(ConfigError, match=r"not model metadata: \['engine'\]"):
        metadata_props({"engine": "onnxruntime"})
    assert metadata_props({"labels": ("a", "b"), "softmax": False}) == {
        "labels": '["a", "b"]', "softmax": "false"}


def test_packaging_needs_no_labels_when_the_model_has_them(tmp_path):
    model = rgb_model(tmp_path / "m.onnx", metadata_props(SETTINGS))
    staged = stage_model_dir(model, tmp_path / "stage", {})
    assert load_config(staged, environ={}).labels == tuple(LABELS)


@pytest.mark.parametrize("given", [True, False])
def test_packaging_refuses_a_label_count_that_is_not_the_output_count(tmp_path, given):
    labels = {"labels": ["a", "b", "c"]}
    model = rgb_model(tmp_path / "m.onnx", {} if given else metadata_props(labels))
    source = "--labels / the config's labels" if given else "m.onnx's metadata_props"
    with pytest.raises(PackagingError) as caught:
        stage_model_dir(model, tmp_path / "stage", labels if given else {})
    assert str(caught.value).startswith(f"m.onnx has 5 outputs but 3 labels come from {source}"
                                        ": give exactly 5 labels, one per output")

