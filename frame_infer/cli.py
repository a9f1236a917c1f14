"""``frame-infer``: one command, a subcommand per job."""
from __future__ import annotations

import argparse
import logging
import sys

from . import (demo, deploy, fetch_model, modelgen, packager, predict, report, run_job,
               server, upload, video)

COMMANDS = {
    "make-test-model": (modelgen, "build a deterministic ONNX test model (no download)"),
    "fetch-ferplus": (fetch_model, "download the real FER+ model, checksum-verified"),
    "package": (packager, "build the .mar archive for Multi Model Server"),
    "serve": (server, "run local MMS with the model registered (batching, workers)"),
    "extract": (video, "cut a video into JPEG frames at a fixed rate, by timestamps"),
    "upload": (upload, "upload a frames folder to S3 (idempotent)"),
    "predict": (predict, "send frames to an endpoint in multi-image requests, resumably"),
    "run": (run_job, "the whole job: extract, (upload), predict, report"),
    "report": (report, "CSV, timeline plot and summary from predictions.jsonl (+ S3 copy)"),
    "deploy": (deploy, "package, upload and deploy a .mar to SageMaker; --delete tears down"),
    "demo": (demo, "package a model, serve it, send a multi-image request, stop"),
}

EXPECTED_ERRORS = (packager.PackagingError, server.ServerError, fetch_model.ChecksumError,
                   ValueError, OSError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="frame-infer", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_text) in COMMANDS.items():
        module.add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:  # their INFO lines (endpoint discovery, retries) are noise here
        for noisy in ("botocore", "boto3", "s3transfer", "urllib3"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return COMMANDS[args.command][0].run(args)
    except EXPECTED_ERRORS as exc:
        print(f"frame-infer {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except (BotoCoreError, ClientError, Boto3Error) as exc:
        print(f"frame-infer {args.command}: AWS error: {exc}; check your credentials, region "
              "and endpoint (AWS_PROFILE, AWS_DEFAULT_REGION, AWS_ENDPOINT_URL_S3, "
              "--endpoint-url)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
