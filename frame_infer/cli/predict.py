"""Send frames to an endpoint in multi-image requests, many in flight, resumably.

A rerun with the same --out sends only the frames that have no result yet.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from .common import ENDPOINT_HELP, add_request_arguments, frames_source, predict_options, \
    print_summary
from .output import add_json_argument, emit_json, human_stream

EXAMPLES = """\
  frame-infer predict out/frames --endpoint http://127.0.0.1:8080/predictions/fer --out out
  frame-infer predict s3://my-bucket/job1/frames --endpoint sagemaker:fer-endpoint \\
      --out out --frames-per-request 32 --concurrency 8
  frame-infer predict out/frames --endpoint http://127.0.0.1:8080/predictions/fer --out out \\
      --json | jq .summary.error_codes
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", type=frames_source,
                        help="frames folder (from extract) or s3://bucket/prefix")
    parser.add_argument("--endpoint", required=True, help=ENDPOINT_HELP)
    parser.add_argument("--out", required=True, type=Path,
                        help="folder for predictions.jsonl (and its journal)")
    add_request_arguments(parser)
    add_json_argument(parser)


def run(args: argparse.Namespace) -> int:
    from ..client.predict import run_predict

    summary = run_predict(args.source, args.out, args.endpoint, predict_options(args))
    print_summary(summary, human_stream(args.json))
    if args.json:
        emit_json({"command": "predict", "exit_code": int(summary.exit_code),
                   "out": str(args.out), "summary": summary.to_json()})
    return int(summary.exit_code)
