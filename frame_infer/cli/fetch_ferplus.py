"""Download the real FER+ model from the ONNX model zoo, checksum-verified."""
from __future__ import annotations

import argparse
from pathlib import Path

EXAMPLES = """\
  frame-infer fetch-ferplus
  frame-infer fetch-ferplus --out models/emotion-ferplus-8.onnx \\
      --url https://mirror.example/emotion-ferplus-8.tar.gz
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..models.fetch import FERPLUS_URL

    parser.add_argument("--out", type=Path, default=Path("models/emotion-ferplus-8.onnx"),
                        help="where to write the .onnx file")
    parser.add_argument("--url", default=FERPLUS_URL, help="the zoo's archive (a mirror)")


def run(args: argparse.Namespace) -> int:
    from ..models.fetch import FERPLUS_SHA256, fetch_ferplus

    path = fetch_ferplus(args.out, args.url)
    print(f"verified (sha256 {FERPLUS_SHA256[:12]}...) and wrote {path}")
    return 0
