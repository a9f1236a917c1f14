"""CSV files, a timeline plot and a summary from predictions.jsonl (optionally copied to S3).

Writes predictions.csv, summary_per_second.csv, timeline.png and summary.md beside
predictions.jsonl and prints the per-second table.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from .aliases import add_renamed
from .common import add_s3_endpoint_argument, s3_uri

EXAMPLES = """\
  frame-infer report out
  frame-infer report out --bucket s3://my-bucket/jobs/clip/results
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", type=Path, help="folder holding predictions.jsonl")
    add_renamed(parser, "--bucket", "--s3", type=s3_uri, metavar="S3_URI",
                help="s3://bucket/prefix: also copy the report (and predictions.jsonl) there")
    add_s3_endpoint_argument(parser)


def run(args: argparse.Namespace) -> int:
    from ..client.report import per_second_table, write_report
    from ..s3 import make_client

    client = make_client("s3", args.s3_endpoint_url) if args.bucket else None
    paths = write_report(args.dir, args.bucket, s3_client=client)
    print(per_second_table(args.dir))  # re-reads the small jsonl; keeps write_report's API lean
    print("\nwrote " + ", ".join(str(p) for p in paths.files()))
    for uri in paths.s3_uris:
        print(f"copied {uri}")
    return 0
