"""Build a deterministic ONNX test model (random weights, no download)."""
from __future__ import annotations

import argparse

KINDS = ("ferplus", "rgb")  # frame_infer.models.testgen.KINDS (a test keeps them equal)

EXAMPLES = """\
  frame-infer make-test-model --out build/ferplus-test.onnx
  frame-infer make-test-model --kind rgb --out build/rgb-test.onnx
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kind", choices=KINDS, default="ferplus",
                        help="ferplus: FER+ architecture, 1x64x64 gray, 8 labels; "
                             "rgb: a small 3x48x40 RGB model, 5 labels")
    parser.add_argument("--out", required=True, help="where to write the .onnx file")


def run(args: argparse.Namespace) -> int:
    from ..models.testgen import write_test_model

    path = write_test_model(args.kind, args.out)
    print(f"wrote {args.kind} test model to {path}")
    return 0
