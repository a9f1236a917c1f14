"""Predict frames in S3 with a SageMaker Batch Transform job: no endpoint kept up.

Packs the frames into shards (many frames per S3 object, each one multipart request
under 6 MB), runs a transform job over them on --instance-count instances, waits with
progress and turns the .out objects into predictions.jsonl, the CSV files and the
report, as `run` writes them (one row per frame). Rerun the same command to continue:
frames with a result are not sent again and a finished job is never resubmitted.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from .aliases import OldSpelling, RetiredSwitch, add_renamed, deprecation_note
from .common import add_progress_argument, add_s3_endpoint_argument, at_least, positive, \
    s3_uri
from .output import add_json_argument, emit_json, human_stream

EXAMPLES = """\
  frame-infer transform s3://my-bucket/jobs/clip/frames --bucket s3://my-bucket/transform \\
      --model-artifact s3://my-bucket/models/fer/0123abcd/model.tar.gz \\
      --image-uri 123456789012.dkr.ecr.eu-west-1.amazonaws.com/frame-infer:latest \\
      --role arn:aws:iam::123456789012:role/frame-infer-model --out transform-results
  frame-infer transform s3://my-bucket/jobs/clip/frames --bucket s3://my-bucket/transform \\
      --model-name fer-endpoint-model --instance-count 2
"""


class _OutFolder(argparse.Action):
    """``--out DIR``; ``--out s3://...`` is this command's old spelling of ``--bucket``
    (before issue 13 ``--out`` named the S3 location and ``--results`` the folder)."""

    def __init__(self, option_strings, dest, bucket=None, **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        self.bucket = bucket

    def __call__(self, parser, namespace, values, option_string=None):
        if not values.lower().startswith("s3:"):
            setattr(namespace, self.dest, Path(values))
            return
        try:
            namespace.bucket = s3_uri(values)
        except argparse.ArgumentTypeError as exc:
            raise argparse.ArgumentError(self, str(exc)) from None
        deprecation_note(parser.prog, "--out s3://... (the S3 location)",
                         "--bucket s3://bucket/prefix; --out is the local results folder")
        self.bucket.required = False  # as aliases.OldSpelling does for a required option


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", type=s3_uri, help="s3://bucket/prefix/frames (from `upload` "
                                                    "or `run --bucket`)")
    bucket = parser.add_argument(
        "--bucket", required=True, type=s3_uri, metavar="S3_URI",
        help="s3://bucket/prefix for shards, job outputs and the report copy")
    parser.add_argument("--out", action=_OutFolder, bucket=bucket, metavar="DIR",
                        default=Path("transform-results"),
                        help="local folder for predictions.jsonl, CSV and report "
                             "(default: transform-results); one per --bucket")
    parser.add_argument("--results", dest="out", type=Path, action=OldSpelling, new="--out",
                        default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    parser.add_argument("--model-artifact", metavar="S3_URI", type=s3_uri,
                        help="s3://.../model.tar.gz holding the .mar (what deploy uploads)")
    parser.add_argument("--image-uri", help="serving image in ECR (packaging/Dockerfile)")
    parser.add_argument("--role", metavar="ARN",
                        help="execution role of the created model (see infra/README.md)")
    parser.add_argument("--model-name", help="an existing SageMaker model (e.g. the endpoint "
                                             "stack's ModelName output) instead of the three "
                                             "above")
    parser.add_argument("--instance-count", type=at_least(1), default=1,
                        help="instances the shards are spread over (1)")
    parser.add_argument("--instance-type", default="ml.m5.large",
                        help="SageMaker instance type of the job (ml.m5.large)")
    add_renamed(parser, "--concurrency", "--max-concurrent", type=at_least(1), metavar="N",
                help="requests in flight per instance (default: what the container "
                     "answers on /execution-parameters)")
    add_renamed(parser, "--frames-per-request", "--shard-frames", type=at_least(1),
                default=256, metavar="N",
                help="at most this many frames per shard, the one request Batch Transform "
                     "sends for it (256; always under 6 MB)")
    parser.add_argument("--model-input", metavar="WIDTHxHEIGHT[:L|RGB]",
                        help="shrink frames to this input before packing, e.g. 64x64:L, as "
                             "the service would (default: frames as stored)")
    # The old pair: --resize-to-model (with --model-input's old default, 64x64:L).
    parser.add_argument("--resize-to-model", dest="model_input", action=RetiredSwitch,
                        new="--model-input 64x64:L", implies="64x64:L")
    parser.add_argument("--retry-errors", action="store_true",
                        help="also resend frames the service answered with an error")
    parser.add_argument("--fps", type=positive, default=30.0,
                        help="timestamps for frames without a manifest")
    parser.add_argument("--poll-seconds", type=positive, default=30.0,
                        help="seconds between job status checks (30)")
    add_progress_argument(parser)
    add_s3_endpoint_argument(parser)
    parser.add_argument("--sagemaker-endpoint-url", metavar="URL",
                        help="SageMaker API endpoint override")
    add_json_argument(parser)


def run(args: argparse.Namespace) -> int:
    from ..client.sources import parse_model_input
    from ..client.transform import TransformModel, TransformOptions, run_transform
    from .common import print_report, print_summary, report_json

    model = TransformModel(artifact=args.model_artifact, image_uri=args.image_uri,
                           role=args.role, name=args.model_name)
    options = TransformOptions(
        model=model, instance_type=args.instance_type, instance_count=args.instance_count,
        max_concurrent=args.concurrency, frames_per_shard=args.frames_per_request,
        resize_to=parse_model_input(args.model_input) if args.model_input else None,
        fps=args.fps, poll_seconds=args.poll_seconds, progress=args.progress,
        retry_errors=args.retry_errors, s3_endpoint_url=args.s3_endpoint_url,
        sagemaker_endpoint_url=args.sagemaker_endpoint_url)
    result = run_transform(args.source, args.bucket, args.out, options)
    human = human_stream(args.json)
    print_summary(result.summary, human)
    print(f"jobs: {', '.join(result.jobs) or 'none needed'}; "
          + ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items()), file=human)
    print_report(result.report, result.report_dir, human)
    if args.json:
        emit_json({"command": "transform", "exit_code": int(result.summary.exit_code),
                   "out": str(args.out), "jobs": list(result.jobs),
                   "seconds": {k: round(v, 3) for k, v in result.seconds.items()},
                   "summary": result.summary.to_json(), "report": report_json(result.report)})
    return int(result.summary.exit_code)
