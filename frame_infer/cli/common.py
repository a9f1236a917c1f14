"""What several commands share: validating argument types, the request options of
``predict`` and ``run``, and how their results are printed.

Flags become a :class:`~frame_infer.client.options.PredictOptions`; library code never
sees the parser's namespace. Option names follow README.md's "Options at a glance": one
name per idea (old spellings are hidden aliases, :mod:`.aliases`).
"""
from __future__ import annotations

import argparse

from .aliases import RetiredSwitch, add_renamed

ENDPOINT_HELP = ("http://127.0.0.1:8080/predictions/NAME (local MMS), sagemaker:ENDPOINT "
                 "or sagemaker-async:ENDPOINT (with --async-s3)")


def at_least(low: int):
    """An argparse type: an integer of at least ``low``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} is below the minimum {low}")
        return value
    parse.__name__ = f"integer >= {low}"
    return parse


def non_negative(text: str) -> float:
    """An argparse type: a finite number of at least 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be a number of at least 0")
    return value


def positive(text: str) -> float:
    """An argparse type: a number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be a number above 0")
    return value


def s3_uri(text: str) -> str:
    """An argparse type: an ``s3://bucket/prefix`` URI (checked here, before any work)."""
    from ..errors import InputError
    from ..s3 import parse_s3_uri

    try:
        parse_s3_uri(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def frames_source(text: str) -> str:
    """An argparse type: a frames folder, or an ``s3://bucket/prefix`` URI (checked)."""
    return s3_uri(text) if text.lower().startswith("s3:") else text


def add_progress_argument(parser: argparse.ArgumentParser) -> None:
    """``--no-progress``: every command that draws progress bars has it."""
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        help="no progress bars (they are drawn only on a terminal anyway)")


def add_s3_endpoint_argument(parser: argparse.ArgumentParser) -> None:
    """``--s3-endpoint-url`` (old: ``--endpoint-url``): where S3 calls go."""
    add_renamed(parser, "--s3-endpoint-url", "--endpoint-url", metavar="URL",
                help="S3 endpoint override, e.g. an S3-compatible server (default: boto3's "
                     "configuration, AWS_ENDPOINT_URL_S3)")


def add_request_arguments(parser: argparse.ArgumentParser) -> None:
    """The request flags of ``predict`` and ``run``; defaults come from
    :class:`PredictOptions` (written once, there)."""
    from ..client.options import PredictOptions

    d = PredictOptions()
    add_renamed(parser, "--frames-per-request", "--batch-size", type=at_least(1),
                default=d.batch_size, metavar="N",
                help=f"frames in one multi-image request ({d.batch_size}); a 413 answer "
                     "halves a request")
    parser.add_argument("--concurrency", type=at_least(1), default=d.concurrency,
                        help=f"requests in flight ({d.concurrency})")
    parser.add_argument("--max-payload", type=at_least(1024),
                        help="bytes per request (default: 6 MB SageMaker, 6,553,500 MMS, "
                             "100 MiB SageMaker async: the async container's limit)")
    parser.add_argument("--full-frames", action="store_true",
                        help="send frames as stored; by default the client shrinks them to "
                             "the model's input once the first answer names it (the same "
                             "pixels the service would make, sent as lossless PNG)")
    parser.add_argument("--model-input", metavar="WIDTHxHEIGHT[:L|RGB]",
                        help="shrink to this input from the first frame on, e.g. 64x64:L "
                             "(default: learn it from the first answer)")
    # Shrinking is the default now; the old switch stays accepted, as a no-op.
    parser.add_argument("--resize-to-model", dest="full_frames", action=RetiredSwitch,
                        new="nothing: frames are shrunk to the model's input by default "
                            "(--model-input gives the size, --full-frames turns it off)")
    parser.add_argument("--by-reference", action="store_true",
                        help="send s3:// references; the service fetches the frames")
    parser.add_argument("--retries", type=at_least(1), default=d.retry.max_attempts,
                        metavar="ATTEMPTS",
                        help=f"attempts per request, the first one included "
                             f"({d.retry.max_attempts}), until the endpoint has answered "
                             "once (then --retry-budget applies); a request that fails "
                             "them all leaves its frames for a rerun")
    parser.add_argument("--retry-budget", type=non_negative, default=d.retry.outage_budget,
                        metavar="SECONDS",
                        help=f"once the endpoint has answered, ride out an outage (a server "
                             f"restart) for this long ({d.retry.outage_budget:g}; 0: count "
                             "--retries only)")
    parser.add_argument("--retry-errors", action="store_true",
                        help="also resend frames the service answered with an error "
                             "(e.g. invalid_image) in an earlier run")
    parser.add_argument("--timeout", type=positive, default=d.timeout,
                        help="seconds to wait for one response (HTTP endpoints)")
    add_progress_argument(parser)
    parser.add_argument("--fps", type=positive, default=d.fps,
                        help="timestamps for frames without a manifest")
    add_s3_endpoint_argument(parser)
    parser.add_argument("--sagemaker-endpoint-url", metavar="URL",
                        help="SageMaker runtime endpoint override")
    parser.add_argument("--async-s3", metavar="S3_URI", type=s3_uri,
                        help="sagemaker-async: s3://bucket/prefix the request bodies are "
                             "uploaded to (the endpoint must be able to read it)")
    parser.add_argument("--async-timeout", type=positive, default=d.async_timeout,
                        help="sagemaker-async: seconds to wait for one result before the "
                             "request is retried")


def add_face_arguments(parser: argparse.ArgumentParser) -> None:
    """The face flags of ``extract``, ``run`` and ``predict``; defaults from
    :class:`FaceOptions` (written once, there)."""
    from ..client.faces import DETECTORS, FaceOptions

    d = FaceOptions()
    parser.add_argument("--faces", action="store_true",
                        help="find faces in every frame (or photo) and predict each face "
                             "crop: one result row per face, one 'no face' row per frame "
                             "without any")
    parser.add_argument("--detector", choices=DETECTORS, default=d.detector,
                        help=f"--faces: {d.detector} (MediaPipe's CNN, the default) or haar "
                             "(OpenCV's cascade, for comparison)")
    parser.add_argument("--score-threshold", type=fraction, default=d.score_threshold,
                        metavar="SCORE",
                        help=f"--faces, blazeface: the least detection score a face needs "
                             f"({d.score_threshold})")
    parser.add_argument("--min-face", type=at_least(8), default=d.min_face, metavar="PIXELS",
                        help="--faces, blazeface: the smallest face searched for; frames "
                             "that can hold smaller faces are also searched in tiles "
                             "(default: 20 px in frames of 1000 px or more, else one pass)")
    parser.add_argument("--max-tiles", type=at_least(0), default=d.max_tiles, metavar="N",
                        help=f"--faces, blazeface: at most N tiles per frame, the bound on "
                             f"work per frame ({d.max_tiles}; 0: no tiles)")
    parser.add_argument("--face-margin", type=float, default=d.margin, metavar="FRACTION",
                        help="--faces: margin around the square face box, as a fraction of "
                             f"its side, on every side ({d.margin})")
    parser.add_argument("--detect-width", type=at_least(48), default=d.detect_width,
                        metavar="PIXELS",
                        help=f"--faces, haar: width of the copy faces are searched in "
                             f"({d.detect_width})")


def fraction(text: str) -> float:
    """An argparse type: a number above 0 and below 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be above 0 and below 1")
    return value


def face_options(args: argparse.Namespace):
    """The :class:`FaceOptions` of ``--faces``, or None without it."""
    from ..client.faces import FaceOptions

    if not args.faces:
        return None
    return FaceOptions(detector=args.detector, score_threshold=args.score_threshold,
                       min_face=args.min_face, max_tiles=args.max_tiles,
                       detect_width=args.detect_width, margin=args.face_margin)


def predict_options(args: argparse.Namespace):
    """The :class:`PredictOptions` the request flags describe."""
    from ..client.options import PredictOptions
    from ..client.sources import parse_model_input
    from ..client.targets import RetryPolicy

    return PredictOptions(
        batch_size=args.frames_per_request, concurrency=args.concurrency,
        retry=RetryPolicy(max_attempts=args.retries, outage_budget=args.retry_budget),
        by_reference=args.by_reference,
        progress=args.progress, max_payload=args.max_payload, timeout=args.timeout,
        resize_to=(None if args.full_frames else parse_model_input(args.model_input)
                   if args.model_input else "auto"),
        fps=args.fps, s3_endpoint_url=args.s3_endpoint_url,
        sagemaker_endpoint_url=args.sagemaker_endpoint_url, async_s3=args.async_s3,
        async_timeout=args.async_timeout, retry_errors=args.retry_errors)


def print_summary(summary, stream=None) -> None:
    """Counts, where the results are, and for each error code: how many rows, one sample
    message and what to do (to stderr, so a failed run says why on screen)."""
    import sys

    from ..client.advice import fix_for

    out = stream or sys.stdout
    sent = summary.rows - summary.skipped
    rate = sent / summary.seconds if summary.seconds else 0.0
    if summary.faces:
        print(f"{summary.rows} rows: {summary.predicted} faces predicted, {summary.errors} "
              f"errors, {summary.no_face} frames without a face, {summary.skipped} already "
              f"done; {summary.requests} requests in {summary.seconds:.1f}s "
              f"({rate:.1f} rows/s)", file=out)
    else:
        print(f"{summary.rows} frames: {summary.predicted} predicted, {summary.errors} "
              f"errors, {summary.skipped} already done; {summary.requests} requests in "
              f"{summary.seconds:.1f}s ({rate:.1f} frames/s sent)", file=out)
    if summary.output:
        print(f"results in frame order: {summary.output}", file=out)
    for code, (count, sample) in summary.error_codes.items():
        print(f"  {count} frame{'s' if count != 1 else ''} {code}: {sample}\n"
              f"    fix: {fix_for(code)}", file=sys.stderr)
    if summary.unfinished:
        print(f"{summary.unfinished} frames have no answer from the service: rerun the same "
              "command to send them again", file=sys.stderr)
    for warning in summary.warnings:
        print(f"warning: {warning}", file=sys.stderr)


def print_job(result, stream=None) -> None:
    """The predict summary, step timings, the per-second table (with people: one block per
    person) and the report's files."""
    import sys

    out = stream or sys.stdout
    print_summary(result.summary, out)
    parts = ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items())
    print(f"{result.frames} frames; {parts}; total {sum(result.seconds.values()):.1f}s",
          file=out)
    print_report(result.report, result.report_dir, out)


def print_report(paths, report_dir, stream) -> None:
    """A written report (``ReportPaths``, or None before every row has a result): its
    table (one block per person with people) and its files."""
    if paths is None:
        return
    print("\n" + paths.report.table(), file=stream)
    names = [p.name for name, p in paths.named_files().items() if name != "timeline_png"]
    print(f"\nreport: {report_dir} ({', '.join(names)}); timeline plot: "
          f"{paths.timeline_png}", file=stream)


def report_json(paths) -> dict | None:
    """The ``report`` part of a job's ``--json`` object: its files and S3 copies."""
    if paths is None:
        return None
    return {"files": {name: str(path) for name, path in paths.named_files().items()},
            "s3_uris": list(paths.s3_uris),
            "people": [p.as_dict() for p in paths.report.people]}


def job_json(command: str, result) -> dict:
    """The ``--json`` object of ``run`` and ``demo`` (docs/API.md)."""
    return {"command": command, "exit_code": int(result.exit_code), "frames": result.frames,
            "out": str(result.report_dir), "seconds": {k: round(v, 3) for k, v
                                                       in result.seconds.items()},
            "summary": result.summary.to_json(), "report": report_json(result.report),
            "video": video_json(result.video)}


def video_json(record: dict | None) -> dict | None:
    """The ``video`` part of a job's ``--json`` object: what its frames were cut from and
    whether it ``ended_early`` (its pictures stop before its header's duration)."""
    if record is None:
        return None
    return {key: record.get(key) for key in ("video", "duration", "declared_duration",
                                             "ended_early", "frames")}


def finish_job(command: str, result, json_mode: bool) -> int:
    """Print a job's result (for people, or as ``--json``); its exit code."""
    from .output import emit_json, human_stream

    print_job(result, human_stream(json_mode))
    if json_mode:
        emit_json(job_json(command, result))
    return int(result.exit_code)


def job_exit_code(result) -> int:
    """The job's exit code (README, "Exit codes"): 0 when every frame (with faces: every
    face) has a prediction."""
    return int(result.exit_code)
