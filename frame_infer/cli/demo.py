"""Package a model, serve it on local MMS, run the whole video job on a sample clip, stop."""
from __future__ import annotations

import argparse
from pathlib import Path

from .common import positive


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, help="ONNX model (default: build the test model)")
    parser.add_argument("--video", type=Path, help="video (default: a generated 20 s clip)")
    parser.add_argument("--work-dir", type=Path, default=Path("build/demo"),
                        help="models, archive, MMS logs and results (build/demo)")
    parser.add_argument("--name", default="ferplus", help="model name in MMS")
    parser.add_argument("--seconds", type=positive, default=20.0, help="sample video length")


def run(args: argparse.Namespace) -> int:
    from ..demo import DemoOptions, run_demo
    from .common import job_exit_code, print_job

    result = run_demo(DemoOptions(model=args.model, video=args.video, work_dir=args.work_dir,
                                  name=args.name, seconds=args.seconds))
    print_job(result)
    return job_exit_code(result)
