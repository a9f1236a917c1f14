"""Send frames to an endpoint in multi-image requests, many in flight, resumably."""
from __future__ import annotations

import argparse
from pathlib import Path

from .common import ENDPOINT_HELP, add_request_arguments, predict_options, print_summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="frames folder or s3://bucket/prefix")
    parser.add_argument("--endpoint", required=True, help=ENDPOINT_HELP)
    parser.add_argument("--out", required=True, type=Path,
                        help="folder for predictions.jsonl (and its journal)")
    add_request_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from ..client.predict import run_predict

    summary = run_predict(args.source, args.out, args.endpoint, predict_options(args))
    print_summary(summary)
    return 0 if summary.complete else 1
