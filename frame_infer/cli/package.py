"""Build the .mar archive (ONNX model + config + the model_handler service) for MMS.

Writes OUT/NAME.mar; `frame-infer serve --archive OUT/NAME.mar` serves it and
`frame-infer deploy --archive OUT/NAME.mar` deploys it.
"""
from __future__ import annotations

import argparse
from pathlib import Path

EXAMPLES = """\
  frame-infer package --model models/fer.onnx --name fer --out store
  frame-infer package --model model.onnx --name mine --out store --labels labels.txt \\
      --config model-config.json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, type=Path, help="the .onnx model file")
    parser.add_argument("--name", required=True,
                        help="model name on the server; the archive is NAME.mar")
    parser.add_argument("--out", required=True, type=Path, help="folder for NAME.mar")
    parser.add_argument("--labels", type=Path, help="labels file, one label per line")
    parser.add_argument("--config", type=Path, help="model-config.json settings (README)")


def run(args: argparse.Namespace) -> int:
    from ..models.packager import build_archive

    archive = build_archive(args.model, args.name, args.out, args.labels, args.config)
    print(f"wrote {archive}")
    return 0
