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

from .common import at_least, positive


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="s3://bucket/prefix/frames (from `upload` or "
                                       "`run --bucket`)")
    parser.add_argument("--out", required=True, metavar="S3_URI",
                        help="s3://bucket/prefix for shards, job outputs and the report copy")
    parser.add_argument("--results", type=Path, default=Path("transform-results"),
                        help="local folder for predictions.jsonl, CSV and report "
                             "(default: transform-results); one per --out")
    parser.add_argument("--model-artifact", metavar="S3_URI",
                        help="s3://.../model.tar.gz holding the .mar (what deploy uploads)")
    parser.add_argument("--image-uri", help="serving image in ECR (packaging/Dockerfile)")
    parser.add_argument("--role", metavar="ARN",
                        help="execution role of the created model (see infra/README.md)")
    parser.add_argument("--model-name", help="an existing SageMaker model instead of the three "
                                             "above")
    parser.add_argument("--instance-count", type=at_least(1), default=1,
                        help="instances the shards are spread over (1)")
    parser.add_argument("--instance-type", default="ml.m5.large", help="(ml.m5.large)")
    parser.add_argument("--max-concurrent", type=at_least(1), metavar="N",
                        help="requests in flight per instance (default: what the container "
                             "answers on /execution-parameters)")
    parser.add_argument("--shard-frames", type=at_least(1), default=256,
                        help="at most this many frames per shard (256; always under 6 MB)")
    parser.add_argument("--resize-to-model", action="store_true",
                        help="shrink frames to --model-input before packing")
    parser.add_argument("--model-input", default="64x64:L", help="WIDTHxHEIGHT[:L|RGB]")
    parser.add_argument("--retry-errors", action="store_true",
                        help="also resend frames the service answered with an error")
    parser.add_argument("--fps", type=positive, default=30.0,
                        help="timestamps for frames without a manifest")
    parser.add_argument("--poll-seconds", type=positive, default=30.0,
                        help="seconds between job status checks (30)")
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        help="no progress bar")
    parser.add_argument("--endpoint-url", help="S3 endpoint override")
    parser.add_argument("--sagemaker-endpoint-url", help="SageMaker API endpoint override")


def run(args: argparse.Namespace) -> int:
    from ..client.sources import parse_model_input
    from ..client.transform import TransformModel, TransformOptions, run_transform
    from .common import print_summary

    model = TransformModel(artifact=args.model_artifact, image_uri=args.image_uri,
                           role=args.role, name=args.model_name)
    options = TransformOptions(
        model=model, instance_type=args.instance_type, instance_count=args.instance_count,
        max_concurrent=args.max_concurrent, frames_per_shard=args.shard_frames,
        resize_to=parse_model_input(args.model_input) if args.resize_to_model else None,
        fps=args.fps, poll_seconds=args.poll_seconds, progress=args.progress,
        retry_errors=args.retry_errors, s3_endpoint_url=args.endpoint_url,
        sagemaker_endpoint_url=args.sagemaker_endpoint_url)
    result = run_transform(args.source, args.out, args.results, options)
    print_summary(result.summary)
    print(f"jobs: {', '.join(result.jobs) or 'none needed'}; "
          + ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items()))
    if result.timeline_png:
        from ..client.report import per_second_table

        print("\n" + per_second_table(result.report_dir))
        print(f"\nreport: {result.report_dir} (predictions.csv, summary_per_second.csv, "
              f"summary.md); timeline plot: {result.timeline_png}")
    return 0 if result.summary.complete else 1
