"""The whole video job: extract, (upload), predict, report; a rerun resumes."""
from __future__ import annotations

import argparse
from pathlib import Path

from .common import ENDPOINT_HELP, add_face_arguments, add_request_arguments, face_options, \
    job_exit_code, predict_options, print_job


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", type=Path, help="video file (anything FFmpeg reads)")
    parser.add_argument("--endpoint", required=True, help=ENDPOINT_HELP)
    parser.add_argument("--out", required=True, type=Path,
                        help="folder for frames, predictions and the report")
    parser.add_argument("--bucket", help="s3://bucket/prefix: upload frames and results there")
    parser.add_argument("--re-extract", action="store_true",
                        help="cut the frames again even when the folder has them")
    add_face_arguments(parser)
    add_request_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from ..client.job import run_job
    from ..client.options import JobOptions

    options = JobOptions(predict=predict_options(args), bucket=args.bucket,
                         re_extract=args.re_extract, faces=face_options(args))
    result = run_job(args.video, args.out, args.endpoint, options)
    print_job(result)
    return job_exit_code(result)
