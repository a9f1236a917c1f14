"""Cut a video into JPEG frames at a fixed rate, by the stream's timestamps.

Writes frame_000000.jpg ... and manifest.jsonl (index, timestamp, file, size, sha256);
with --faces also the face crops under faces/.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_face_arguments, add_progress_argument, at_least, face_options, \
    positive

EXAMPLES = """\
  frame-infer extract clip.mp4 --out out/frames
  frame-infer extract clip.mp4 --out out/frames --fps 5 --faces
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", type=Path, help="video file (anything FFmpeg reads)")
    parser.add_argument("--out", type=Path, required=True, help="folder for frames + manifest")
    parser.add_argument("--fps", type=positive, default=30.0, help="frames per second (30)")
    parser.add_argument("--quality", type=at_least(1), default=90,
                        help="JPEG quality 1-100 (90)")
    add_face_arguments(parser)
    add_progress_argument(parser)


def run(args: argparse.Namespace) -> int:
    import sys

    from ..client.extract import extract_video
    from ..client.manifest import manifest_path
    from ..client.outlock import check_out_folder
    from ..client.source_record import ended_early_message, read_source
    from ..errors import ExitCode

    check_out_folder(args.out)
    faces = face_options(args)
    frames, duration = extract_video(args.video, args.out, args.fps, args.quality,
                                     progress=args.progress, faces=faces)
    print(f"extracted {len(frames)} frames at {args.fps:g} fps from {duration:.2f} s of "
          f"{args.video} into {args.out} (manifest {manifest_path(args.out)})")
    if faces is not None:
        found = sum(len(frame.faces) for frame in frames)
        empty = sum(not frame.faces for frame in frames)
        print(f"{found} faces cropped into {args.out / 'faces'}; {empty} frames without a face")
    warning = ended_early_message(read_source(args.out))
    if warning is not None:  # not a silent success: the frames stop short (exit 4)
        print(f"warning: {warning}", file=sys.stderr)
        return int(ExitCode.IMAGE_ERRORS)
    return 0
