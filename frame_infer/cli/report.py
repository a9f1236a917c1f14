"""CSV files, a timeline plot and a summary from predictions.jsonl (optionally copied to S3)."""
from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", type=Path, help="folder holding predictions.jsonl")
    parser.add_argument("--s3", metavar="s3://bucket/prefix", help="also copy the report there")


def run(args: argparse.Namespace) -> int:
    from ..client.report import per_second_table, write_report

    paths = write_report(args.dir, args.s3)
    print(per_second_table(args.dir))  # re-reads the small jsonl; keeps write_report's API lean
    print("\nwrote " + ", ".join(str(p) for p in paths.files()))
    for uri in paths.s3_uris:
        print(f"copied {uri}")
    return 0
