"""Upload a frames folder to S3, idempotently (unchanged frames are skipped).

Uploads every frame the folder's manifest lists (and the manifest, and face crops) under
the destination; a rerun uploads only what changed.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_progress_argument, add_s3_endpoint_argument, at_least, s3_uri

EXAMPLES = """\
  frame-infer upload out/frames s3://my-bucket/jobs/clip/frames
  frame-infer upload out/frames s3://frames/clip --s3-endpoint-url http://127.0.0.1:9000
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", type=Path, help="frames folder written by extract")
    parser.add_argument("destination", type=s3_uri, help="s3://bucket/prefix")
    add_s3_endpoint_argument(parser)
    parser.add_argument("--concurrency", type=at_least(1), default=10,
                        help="uploads in flight (10)")
    add_progress_argument(parser)


def run(args: argparse.Namespace) -> int:
    from ..client.upload import upload_frames

    result = upload_frames(args.folder, args.destination, endpoint_url=args.s3_endpoint_url,
                           concurrency=args.concurrency, progress=args.progress)
    print(f"uploaded {result.uploaded} files, {result.skipped} already there, to "
          f"{result.location.uri()}")
    return 0
