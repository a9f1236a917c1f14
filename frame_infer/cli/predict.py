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
        source = photo_frames(source, args.out, faces, args.fps, args.s3_endpoint_url)
    summary = run_predict(source, args.out, args.endpoint, predict_options(args))
    human = human_stream(args.json)
    print_summary(summary, human)
    if args.json:
        emit_json({"command": "predict", "exit_code": int(summary.exit_code),
                   "out": str(args.out), "summary": summary.to_json()})
    return int(summary.exit_code)


def s3_photos(source: str, out: Path, s3_endpoint_url: str | None) -> str | None:
    """The local folder (``out/photos``) of the images under the ``s3://`` prefix
    ``source``; None when the prefix holds frames cut with faces (a manifest)."""
    from ..client.manifest import MANIFEST_NAME
    from ..client.photos import download_photos
    from ..client.sources import s3_frames
    from ..errors import InputError
    from ..s3 import make_client, parse_s3_uri

    location, client = parse_s3_uri(source), make_client("s3", s3_endpoint_url)
    listed = client.list_objects_v2(Bucket=location.bucket, Prefix=location.key(MANIFEST_NAME),
                                    MaxKeys=1).get("Contents", [])
    if listed:
        if not s3_frames(location, client).faces:
            raise InputError(f"{source} holds frames cut without faces; cut them with "
                             "`frame-infer extract VIDEO --faces` and upload them, or "
                             "predict without --faces")
        return None
    folder = out / "photos"
    download_photos(location, client, folder)
    return str(folder)


def photo_frames(source: str, out: Path, faces, fps: float,
                 s3_endpoint_url: str | None = None) -> str:
    """``predict --faces``: the frames folder of the photos in ``source`` (a folder or an
    ``s3://`` prefix of images; their face crops under ``out/frames``); frames already
    cut with faces are used as they are."""
    original = source
    from ..client.journal import JOURNAL_NAME, PREDICTIONS_NAME
    from ..client.manifest import manifest_path, read_manifest
    from ..client.photos import cut_photo_faces
    from ..errors import InputError

    if source.startswith("s3://"):
        source = s3_photos(source, Path(out), s3_endpoint_url)
        if source is None:
            return original  # frames cut with faces, uploaded: predicted as they are
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
        print(f"the photos in {original} changed since the last run into {out}: every photo "
              "is predicted again", file=sys.stderr)
        journal.unlink()
        (Path(out) / PREDICTIONS_NAME).unlink(missing_ok=True)
    return str(frames)
