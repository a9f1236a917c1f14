"""``run``: the whole job in one command: extract -> (upload) -> predict -> report.

Without ``--bucket`` the frames stay local and are predicted while the video is still
being cut (extract and predict overlap); with it they are uploaded (idempotently)
and predicted from S3 (as bytes, or as references with ``--by-reference``), and the
report is copied next to them. Rerunning the same command resumes: frames are
re-extracted only when missing, uploads skip what is there, predict sends only frames
without a result.

With ``faces`` the frames are also searched for faces while they are cut (a pool of
threads, every core) and each face crop is predicted as it is written.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..s3 import parse_s3_uri
from . import predict as predict_step
from .extract import extract_frames
from .manifest import manifest_path, read_manifest
from .options import JobOptions
from .report import write_report
from .sources import frame_refs
from .upload import upload_frames


@dataclass
class JobResult:
    frames: int
    summary: predict_step.PredictSummary
    report_dir: Path
    timeline_png: Path
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall time of each step: extract, upload, predict, report."""


def run_job(video: Path | str, out: Path | str, endpoint: str,
            options: JobOptions = JobOptions()) -> JobResult:
    """Run every step for ``video`` into ``out`` against ``endpoint``; a rerun resumes."""
    video, out, request = Path(video), Path(out), options.predict
    timings: dict[str, float] = {}
    frames_dir = out / "frames"
    started = time.monotonic()
    have_frames = (manifest_path(frames_dir).exists() and not options.re_extract
                   and _same_mode(frames_dir, options.faces is not None))
    if not options.bucket and not have_frames:
        # Predict while extracting: the two overlap instead of adding up.
        stream, extractor, counted = _extract_streaming(video, frames_dir, request.fps,
                                                        options.faces)
        summary = predict_step.run_predict(str(frames_dir), out, endpoint, request,
                                           frames=stream)
        extractor.join()
        timings["extract + predict"] = time.monotonic() - started
        frame_count = counted["frames"]
    else:
        frames = (read_manifest(frames_dir) if have_frames else  # resume: already cut
                  extract_frames(video, frames_dir, fps=request.fps, progress=request.progress,
                                 faces=options.faces))
        timings["extract"] = time.monotonic() - started
        source = str(frames_dir)
        if options.bucket:
            location = parse_s3_uri(options.bucket)
            started = time.monotonic()
            uploaded = upload_frames(frames_dir, location.uri("frames"),
                                     endpoint_url=request.s3_endpoint_url,
                                     progress=request.progress)
            timings["upload"] = time.monotonic() - started
            source = uploaded.location.uri()
        started = time.monotonic()
        summary = predict_step.run_predict(source, out, endpoint, request)
        timings["predict"] = time.monotonic() - started
        frame_count = len(frames)
    started = time.monotonic()
    s3_results = parse_s3_uri(options.bucket).uri("results") if options.bucket else None
    paths = write_report(out, s3_uri=s3_results) if summary.output else None
    timings["report"] = time.monotonic() - started
    return JobResult(frames=frame_count, summary=summary, report_dir=out,
                     timeline_png=paths.timeline_png if paths else None, seconds=timings)


def _same_mode(frames_dir: Path, faces: bool) -> bool:
    """True when the frames folder was cut the way this job wants (with or without faces);
    otherwise it is cut again rather than predicted in the wrong mode."""
    frames = read_manifest(frames_dir)
    return all((frame.faces is not None) == faces for frame in frames)


def _extract_streaming(video: Path, frames_dir: Path, fps: float, faces=None):
    """Extract in a thread; yield what to predict of each frame (the frame, or its faces)
    as soon as its files are written; the third value counts the frames yielded.

    An extraction error is raised from the stream after the frames before it."""
    frames: queue.Queue = queue.Queue()
    done, errors = object(), []
    counted = {"frames": 0}

    def extract():
        try:
            extract_frames(video, frames_dir, fps=fps, progress=False, on_frame=frames.put,
                           faces=faces)
        except BaseException as exc:  # handed to the consumer below
            errors.append(exc)
        finally:
            frames.put(done)

    thread = threading.Thread(target=extract, name="extract", daemon=True)
    thread.start()

    def stream():
        while (frame := frames.get()) is not done:
            counted["frames"] += 1
            yield from frame_refs(frame, frames_dir)
        if errors:
            raise errors[0]

    return stream(), thread, counted
