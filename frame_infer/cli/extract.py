"""Cut a video into JPEG frames at a fixed rate, by the stream's timestamps."""
from __future__ import annotations

import argparse
from pathlib import Path

from .common import positive


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", type=Path, help="video file (anything FFmpeg reads)")
    parser.add_argument("--out", type=Path, required=True, help="folder for frames + manifest")
    parser.add_argument("--fps", type=positive, default=30.0, help="frames per second (30)")
    parser.add_argument("--quality", type=int, default=90, help="JPEG quality 1-100 (90)")


def run(args: argparse.Namespace) -> int:
    from ..client.extract import extract_video
    from ..client.manifest import manifest_path

    frames, duration = extract_video(args.video, args.out, args.fps, args.quality)
    print(f"extracted {len(frames)} frames at {args.fps:g} fps from {duration:.2f} s of "
          f"{args.video} into {args.out} (manifest {manifest_path(args.out)})")
    return 0
