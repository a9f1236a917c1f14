"""Upload a frames folder to S3, idempotently (unchanged frames are skipped)."""
from __future__ import annotations

import argparse
from pathlib import Path

from .common import at_least


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", type=Path, help="frames folder written by extract")
    parser.add_argument("destination", help="s3://bucket/prefix")
    parser.add_argument("--endpoint-url", help="S3-compatible endpoint (default: boto3's)")
    parser.add_argument("--concurrency", type=at_least(1), default=10, help="uploads in flight")


def run(args: argparse.Namespace) -> int:
    from ..client.upload import upload_frames

    result = upload_frames(args.folder, args.destination, endpoint_url=args.endpoint_url,
                           concurrency=args.concurrency)
    print(f"uploaded {result.uploaded} files, {result.skipped} already there, to "
          f"{result.location.uri()}")
    return 0
