"""Send frames to an endpoint in multi-image requests, many in flight, resumably.

A rerun with the same --out sends only the frames that have no result yet.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import ENDPOINT_HELP, add_face_arguments, add_request_arguments, face_options, \
    frames_source, predict_options, print_summary
from .output import add_json_argument, emit_json, human_stream

EXAMPLES = """\
  frame-infer predict out/frames --endpoint http://127.0.0.1:8080/predictions/fer --out out
  frame-infer predict s3://my-bucket/job1/frames --endpoint sagemaker:fer-endpoint \\
      --out out --frames-per-request 32 --concurrency 8
  frame-infer predict out/frames --endpoint http://127.0.0.1:8080/predictions/fer --out out \\
      --json | jq .summary.error_codes
  frame-infer predict photos/ --faces --endpoint http://127.0.0.1:8080/predictions/fer \\
      --out photo-results
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", type=frames_source,
                        help="frames folder (from extract) or s3://bucket/prefix")
    parser.add_argument("--endpoint", required=True, help=ENDPOINT_HELP)
    parser.add_argument("--out", required=True, type=Path,
                        help="folder for predictions.jsonl (and its journal)")
    add_face_arguments(parser)
    add_request_arguments(parser)
    add_json_argument(parser)


def run(args: argparse.Namespace) -> int:
    from ..client.predict import run_predict

    source, faces = args.source, face_options(args)
    if faces is not None:  # a folder of photos: cut its faces first (client/photos.py)
        source = photo_frames(source, args.out, faces, args.fps)
    summary = run_predict(source, args.out, args.endpoint, predict_options(args))
    human = human_stream(args.json)
    print_summary(summary, human)
    if args.json:
        emit_json({"command": "predict", "exit_code": int(summary.exit_code),
                   "out": str(args.out), "summary": summary.to_json()})
    return int(summary.exit_code)


def photo_frames(source: str, out: Path, faces, fps: float) -> str:
    """``predict --faces``: the frames folder of the photos in ``source`` (their face
    crops, under ``out/frames``); a folder already cut with faces is used as it is."""
    from ..client.journal import JOURNAL_NAME, PREDICTIONS_NAME
    from ..client.manifest import manifest_path, read_manifest
    from ..client.photos import cut_photo_faces
    from ..errors import InputError

    if source.startswith("s3://"):
        raise InputError("predict --faces finds faces in a local folder of photos; for "
                         "frames in S3, cut them with faces first (`frame-infer extract "
                         "VIDEO --faces`, then `upload`) and predict without --faces")
    if manifest_path(source).exists():
        if all(frame.faces is not None for frame in read_manifest(source)):
            return source  # cut with faces already (extract --faces)
        raise InputError(f"{source} holds frames cut without faces; cut them again with "
                         "`frame-infer extract VIDEO --out FOLDER --faces`, or predict "
                         "without --faces")
    frames = Path(out) / "frames"
    journal = Path(out) / JOURNAL_NAME
    _, cut = cut_photo_faces(source, frames, faces, fps)
    if cut and journal.exists():  # rows of other photos must not answer for these
        print(f"the photos in {source} changed since the last run into {out}: every photo "
              "is predicted again", file=sys.stderr)
        journal.unlink()
        (Path(out) / PREDICTIONS_NAME).unlink(missing_ok=True)
    return str(frames)
