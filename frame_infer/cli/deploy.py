"""Deploy a .mar to a SageMaker endpoint through CloudFormation; --delete tears it down.

Packs model.tar.gz, uploads it, creates or updates the stack of the packaged endpoint
template, waits for InService, checks autoscaling and sends one multi-image request.
infra/README.md walks through it (storage stack, image, IAM).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from .aliases import add_renamed
from .common import at_least, s3_uri

EXAMPLES = """\
  frame-infer deploy --archive build/ferplus.mar --bucket s3://my-frames-bucket \\
      --stack frame-infer --image-uri 123456789012.dkr.ecr.eu-west-1.amazonaws.com/frame-infer
  frame-infer deploy --archive build/ferplus.mar --bucket s3://my-frames-bucket \\
      --stack frame-infer-async --image-uri IMAGE --async-output s3://my-frames-bucket/async
  frame-infer deploy --stack frame-infer --delete
"""
# S3's rules for a bucket name (3-63 of lower-case letters, digits, dots, hyphens)
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def bucket_name(text: str) -> str:
    """An argparse type: ``s3://bucket`` -> ``bucket``. A bare name is the old spelling:
    accepted this release with a note on stderr."""
    if not text.lower().startswith("s3:"):
        if not BUCKET_NAME.fullmatch(text):
            raise argparse.ArgumentTypeError(
                f"{text!r} is not an S3 URI: write s3://bucket (the storage stack's bucket)")
        print(f"frame-infer deploy: --bucket {text} (a bare name) is deprecated and goes away "
              f"in the next release; write --bucket s3://{text}", file=sys.stderr)
        return text
    uri = s3_uri(text)
    bucket, _, prefix = uri[len("s3://"):].partition("/")
    if prefix.strip("/"):
        raise argparse.ArgumentTypeError(
            f"{text!r}: deploy takes the bucket alone, s3://bucket (artifacts go under "
            "models/ in it), not s3://bucket/prefix")
    return bucket


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_renamed(parser, "--archive", "--model", type=Path, metavar="NAME.mar",
                help="the .mar to deploy (from `frame-infer package`)")
    parser.add_argument("--bucket", type=bucket_name, metavar="S3_URI",
                        help="s3://bucket: artifacts and frames (the storage stack's bucket)")
    parser.add_argument("--stack", required=True, help="stack name; also the endpoint name")
    parser.add_argument("--image-uri", help="serving image in ECR (packaging/Dockerfile)")
    parser.add_argument("--instance-type", default="ml.m5.large",
                        help="SageMaker instance type (ml.m5.large)")
    parser.add_argument("--instance-count", type=at_least(1), default=1,
                        help="initial instances (1)")
    parser.add_argument("--max-instance-count", type=at_least(1), default=4,
                        help="autoscaling maximum (4)")
    parser.add_argument("--accelerator-type", default="", help="Elastic Inference (retired by "
                        "AWS: only where an account still has it); empty (default) = none")
    parser.add_argument("--no-autoscaling", action="store_true",
                        help="no scaling policy (fixed instance count)")
    parser.add_argument("--async-output", type=s3_uri, metavar="S3_URI",
                        help="make an asynchronous endpoint writing results here (with "
                             "autoscaling it scales down to 0 instances when idle)")
    parser.add_argument("--async-notifications", action="store_true",
                        help="with --async-output: SNS topics for successes and errors")
    parser.add_argument("--parameter", action="append", default=[], metavar="KEY=VALUE",
                        help="another endpoint template parameter, e.g. BatchSize=16")
    parser.add_argument("--template", type=Path,
                        help="a CloudFormation template file (default: the packaged "
                             "endpoint.yaml, same as infra/endpoint.yaml)")
    parser.add_argument("--region", help="AWS region (default: boto3's: AWS_DEFAULT_REGION, "
                                         "the profile)")
    add_renamed(parser, "--aws-endpoint-url", "--endpoint-url", metavar="URL",
                help="send every AWS call (S3, CloudFormation, SageMaker, ...) here, e.g. "
                     "an emulator")
    parser.add_argument("--smoke-test", choices=["auto", "always", "never"], default="auto",
                        help="send one request to the endpoint once it is in service; auto: "
                             "unless --aws-endpoint-url is given (emulators run no container)")
    parser.add_argument("--poll-seconds", type=at_least(1), default=30,
                        help="seconds between status checks (30)")
    parser.add_argument("--delete", action="store_true", help="delete the stack and exit")


def run(args: argparse.Namespace) -> int:
    from ..deploy import AwsClients, DeploySettings, delete_stack, deploy
    from ..errors import InputError

    clients = AwsClients.create(endpoint_url=args.aws_endpoint_url, region=args.region)
    if args.delete:
        delete_stack(clients.cloudformation, args.stack, args.poll_seconds)
        print(f"deleted stack {args.stack} (the model artifacts stay in S3)")
        return 0
    missing = [f"--{n.replace('_', '-')}" for n in ("archive", "bucket", "image_uri")
               if not getattr(args, n)]
    if missing:
        raise InputError(f"deploy needs {', '.join(missing)} (or --delete)")
    if any("=" not in p for p in args.parameter):
        raise InputError(f"--parameter takes KEY=VALUE, not {args.parameter}")
    extra = dict(p.split("=", 1) for p in args.parameter)
    skip = ("--smoke-test never" if args.smoke_test == "never" else
            "--aws-endpoint-url points at an override; an emulator cannot run the serving "
            "container (--smoke-test always runs it)"
            if args.smoke_test == "auto" and args.aws_endpoint_url else "")
    settings = DeploySettings(
        model=args.archive, bucket=args.bucket, stack=args.stack, image_uri=args.image_uri,
        instance_type=args.instance_type, instance_count=args.instance_count,
        max_instance_count=args.max_instance_count, accelerator_type=args.accelerator_type,
        autoscaling=not args.no_autoscaling, async_output_s3_uri=args.async_output or "",
        async_notifications=args.async_notifications,
        template=args.template, extra_parameters=extra)
    summary = deploy(settings, clients, skip_smoke_test=skip, poll_seconds=args.poll_seconds)
    print(json.dumps(summary, indent=2))
    return 0
