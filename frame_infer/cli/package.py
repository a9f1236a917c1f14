"""Build the .mar archive (ONNX model + config + the model_handler service) for MMS."""
from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, type=Path, help="the .onnx file")
    parser.add_argument("--name", required=True, help="model name (the archive's file name)")
    parser.add_argument("--out", required=True, type=Path, help="folder for NAME.mar")
    parser.add_argument("--labels", type=Path, help="labels file, one label per line")
    parser.add_argument("--config", type=Path, help="model-config.json settings (README)")


def run(args: argparse.Namespace) -> int:
    from ..models.packager import build_archive

    archive = build_archive(args.model, args.name, args.out, args.labels, args.config)
    print(f"wrote {archive}")
    return 0
