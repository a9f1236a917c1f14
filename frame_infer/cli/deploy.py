"""Deploy a .mar to a SageMaker endpoint through CloudFormation; --delete tears it down.

Packs model.tar.gz, uploads it, creates or updates the stack of the packaged endpoint
template, waits for InService, checks autoscaling and sends one multi-image request.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from .common import at_least


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, help="the NAME.mar to deploy")
    parser.add_argument("--bucket", help="artifacts and frames (the storage stack's bucket)")
    parser.add_argument("--stack", required=True, help="stack name; also the endpoint name")
    parser.add_argument("--image-uri", help="serving image in ECR (packaging/Dockerfile)")
    parser.add_argument("--instance-type", default="ml.m5.large", help="SageMaker instance")
    parser.add_argument("--instance-count", type=at_least(1), default=1, help="initial instances")
    parser.add_argument("--max-instance-count", type=at_least(1), default=4,
                        help="autoscaling maximum")
    parser.add_argument("--accelerator-type", default="", help="Elastic Inference (retired by "
                        "AWS: only where an account still has it); empty (default) = none")
    parser.add_argument("--no-autoscaling", action="store_true",
                        help="no scaling policy (fixed instance count)")
    parser.add_argument("--async-output", default="", metavar="S3_URI",
                        help="make an asynchronous endpoint writing results here (with "
                             "autoscaling it scales down to 0 instances when idle)")
    parser.add_argument("--async-notifications", action="store_true",
                        help="with --async-output: SNS topics for successes and errors")
    parser.add_argument("--parameter", action="append", default=[], metavar="KEY=VALUE",
                        help="another endpoint template parameter, e.g. BatchSize=16")
    parser.add_argument("--template", type=Path,
                        help="a CloudFormation template file (default: the packaged "
                             "endpoint.yaml, same as infra/endpoint.yaml)")
    parser.add_argument("--region", help="default: boto3's (AWS_DEFAULT_REGION, profile)")
    parser.add_argument("--endpoint-url", help="send every AWS call here (an emulator)")
    parser.add_argument("--smoke-test", choices=["auto", "always", "never"], default="auto",
                        help="auto: unless --endpoint-url is given (emulators run no container)")
    parser.add_argument("--poll-seconds", type=at_least(1), default=30,
                        help="seconds between status checks")
    parser.add_argument("--delete", action="store_true", help="delete the stack and exit")


def run(args: argparse.Namespace) -> int:
    from ..deploy import AwsClients, DeploySettings, delete_stack, deploy
    from ..errors import DeployError

    clients = AwsClients.create(endpoint_url=args.endpoint_url, region=args.region)
    if args.delete:
        delete_stack(clients.cloudformation, args.stack, args.poll_seconds)
        print(f"deleted stack {args.stack} (the model artifacts stay in S3)")
        return 0
    missing = [f"--{n.replace('_', '-')}" for n in ("model", "bucket", "image_uri")
               if not getattr(args, n)]
    if missing:
        raise DeployError(f"deploy needs {', '.join(missing)} (or --delete)")
    if any("=" not in p for p in args.parameter):
        raise DeployError(f"--parameter takes KEY=VALUE, not {args.parameter}")
    extra = dict(p.split("=", 1) for p in args.parameter)
    skip = ("--smoke-test never" if args.smoke_test == "never" else
            "--endpoint-url points at an override; an emulator cannot run the serving "
            "container (--smoke-test always runs it)"
            if args.smoke_test == "auto" and args.endpoint_url else "")
    settings = DeploySettings(
        model=args.model, bucket=args.bucket, stack=args.stack, image_uri=args.image_uri,
        instance_type=args.instance_type, instance_count=args.instance_count,
        max_instance_count=args.max_instance_count, accelerator_type=args.accelerator_type,
        autoscaling=not args.no_autoscaling, async_output_s3_uri=args.async_output,
        async_notifications=args.async_notifications,
        template=args.template, extra_parameters=extra)
    summary = deploy(settings, clients, skip_smoke_test=skip, poll_seconds=args.poll_seconds)
    print(json.dumps(summary, indent=2))
    return 0
