"""The whole video job: extract, (upload), predict, report; a rerun resumes.

Without --bucket the frames stay local and are sent while the video is still being cut;
with it, frames and results are uploaded under s3://bucket/prefix as well.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from .common import ENDPOINT_HELP, add_face_arguments, add_request_arguments, face_options, \
    finish_job, predict_options, s3_uri
from .output import add_json_argument
from .report import add_smooth_argument

EXAMPLES = """\
  frame-infer run clip.mp4 --endpoint http://127.0.0.1:8080/predictions/fer --out out --faces
  frame-infer run clip.mp4 --endpoint http://127.0.0.1:8080/predictions/fer --out out \\
      --faces --annotate out/annotated.mp4
  frame-infer run clip.mp4 --endpoint sagemaker:fer-endpoint --out out \\
      --bucket s3://my-bucket/jobs/clip --frames-per-request 32
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", type=Path, help="video file (anything FFmpeg reads)")
    parser.add_argument("--endpoint", required=True, help=ENDPOINT_HELP)
    parser.add_argument("--out", required=True, type=Path,
                        help="folder for frames, predictions and the report")
    parser.add_argument("--bucket", type=s3_uri, metavar="S3_URI",
                        help="s3://bucket/prefix: upload frames and results there")
    parser.add_argument("--re-extract", action="store_true",
                        help="cut the frames again even when the folder has them")
    parser.add_argument("--annotate", type=Path, metavar="OUT.mp4",
                        help="after the report, write the video with each face's box, "
                             "person, label and score drawn on it (as report --video)")
    add_face_arguments(parser)
    add_request_arguments(parser)
    add_smooth_argument(parser)
    add_json_argument(parser)


def run(args: argparse.Namespace) -> int:
    from ..client.job import run_job
    from ..client.options import JobOptions

    options = JobOptions(predict=predict_options(args), bucket=args.bucket,
                         re_extract=args.re_extract, faces=face_options(args),
                         smooth=args.smooth)
    result = run_job(args.video, args.out, args.endpoint, options, annotate=args.annotate)
    if result.annotated is None:
        return finish_job("run", result, args.json)
    from .common import job_json, print_job
    from .output import emit_json, human_stream
    from .report import annotated_json

    video = result.annotated
    print_job(result, human_stream(args.json))
    print(f"annotated video: {video.path} ({video.frames} frames, {video.seconds:.2f} s)",
          file=human_stream(args.json))
    if args.json:
        emit_json({**job_json("run", result), "annotated": annotated_json(video)})
    return int(result.exit_code)
