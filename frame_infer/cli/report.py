"""CSV files, a timeline plot and a summary from predictions.jsonl (optionally copied to S3).

Writes predictions.csv, summary_per_second.csv, timeline.png and summary.md beside
predictions.jsonl and prints the per-second table; with --json, one JSON object on
stdout instead (the table goes to stderr). With --video, also the source video with each
face's box, person, label and score drawn on it.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from .aliases import add_renamed
from .common import add_s3_endpoint_argument, positive
from .output import add_json_argument, emit_json, human_stream

EXAMPLES = """\
  frame-infer report out
  frame-infer report out --bucket s3://my-bucket/jobs/clip/results
  frame-infer report out --json | jq '.per_second[] | [.second, .dominant]'
  frame-infer report out --video out/annotated.mp4 --source clip.mp4
  frame-infer report out --smooth 2
"""


def s3_location(text: str):
    """An argparse type: ``s3://bucket/prefix`` parsed into an S3Location, once."""
    from ..errors import InputError
    from ..s3 import parse_s3_uri

    try:
        return parse_s3_uri(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", type=Path, help="folder holding predictions.jsonl")
    add_renamed(parser, "--bucket", "--s3", type=s3_location, metavar="S3_URI",
                help="s3://bucket/prefix: also copy the report (and predictions.jsonl) there")
    add_s3_endpoint_argument(parser)
    parser.add_argument("--video", type=Path, metavar="OUT.mp4",
                        help="also write the source video with each face's box, person, "
                             "label and score drawn on it (PyAV, the source's rate and size)")
    parser.add_argument("--source", type=Path, metavar="VIDEO",
                        help="--video: the video the frames were cut from (default: the "
                             "one DIR/frames records, when it does)")
    add_smooth_argument(parser)
    add_json_argument(parser)


def add_smooth_argument(parser: argparse.ArgumentParser) -> None:
    """``--smooth SECONDS`` of ``report`` and ``run``."""
    parser.add_argument("--smooth", type=positive, metavar="SECONDS",
                        help="read each person's dominant emotions from a window mean of "
                             "their probabilities over SECONDS (raw means are kept in the "
                             "CSVs beside the smoothed ones)")


def document(directory: Path, paths, annotated=None) -> dict:
    """The ``--json`` object of a written report (docs/API.md lists its keys)."""
    report = paths.report
    return {"command": "report", "exit_code": 0, "dir": str(directory),
            "rows": len(report.predictions), "frames": report.frames,
            "files": {name: str(path) for name, path in paths.named_files().items()},
            "s3_uris": list(paths.s3_uris),
            "per_second": [s.as_dict() for s in report.seconds],
            "people": [p.as_dict() for p in report.people],
            **({"annotated": annotated_json(annotated)} if annotated else {})}


def annotated_json(video) -> dict:
    """The ``annotated`` part of ``report --video``'s and ``run --annotate``'s ``--json``."""
    return {"path": str(video.path), "frames": video.frames, "seconds": round(video.seconds, 3),
            "width": video.width, "height": video.height, "fps": round(video.fps, 3)}


def run(args: argparse.Namespace) -> int:
    from ..client.report import write_report
    from ..s3 import make_client

    source = annotated = None
    if args.video is not None:  # checked before the report is written
        from ..client.annotate import check_output, source_video

        source = source_video(args.dir, args.source)
        check_output(args.video, source)
    client = make_client("s3", args.s3_endpoint_url) if args.bucket else None
    paths = write_report(args.dir, args.bucket, s3_client=client, smooth=args.smooth)
    if args.video is not None:
        from ..client.annotate import annotate_video

        annotated = annotate_video(paths.report, source, args.video, progress=True)  # on a terminal
    human = human_stream(args.json)
    print(paths.report.table(), file=human)
    print("\nwrote " + ", ".join(str(p) for p in paths.files()), file=human)
    if annotated is not None:
        print(f"annotated video: {annotated.path} ({annotated.frames} frames, "
              f"{annotated.seconds:.2f} s, from {source})", file=human)
    for uri in paths.s3_uris:
        print(f"copied {uri}", file=human)
    if args.json:
        emit_json(document(args.dir, paths, annotated))
    return 0
