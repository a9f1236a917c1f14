"""``run``: the whole job in one command: extract -> (upload) -> predict -> report.

Without ``--bucket`` the frames stay local and are predicted while the video is still
being cut (extract and predict overlap); with it they are uploaded (idempotently)
and predicted from S3 (as bytes, or as references with ``--by-reference``), and the
report is copied next to them. Rerunning the same command resumes: frames are
re-extracted only when missing or cut from another video or with other options
(``frames/source.json``, see ``source_record``), uploads skip what is there, predict
sends only frames without a result. A video whose pictures stop before its header's
duration (truncated) is predicted as far as it goes, with a warning and exit code 4.

With ``faces`` the frames are also searched for faces while they are cut (a pool of
threads, every core) and each face crop is predicted as it is written.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ExitCode, InputError
from ..s3 import make_client
from . import predict as predict_step
from . import source_record
from .annotate import AnnotatedVideo, annotate_video, check_output
from .extract import check_video_path, extract_frames
from .journal import JOURNAL_NAME, PREDICTIONS_NAME
from .outlock import out_lock
from .items import Work
from .manifest import manifest_path, read_manifest
from .options import JobOptions
from .report import ReportPaths, write_report
from .source_record import ended_early_message, read_source
from .sources import frame_items
from .summary import PredictSummary
from .upload import upload_frames
from .warm import REPORT_MODULES, TRACKING_MODULES, import_soon

EXTRACT_QUALITY = 90
"""The JPEG quality ``run`` cuts frames with (``extract_frames``' default)."""


@dataclass
class JobResult:
    frames: int
    summary: PredictSummary
    report_dir: Path
    timeline_png: Path | None
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall time of each step: extract, upload, predict, report (, annotate)."""
    report: ReportPaths | None = None
    """The report's files and its value (per-second table), once every row has a result."""
    annotated: AnnotatedVideo | None = None
    """The annotated video (``annotate=``), once the report is written."""

    video: dict | None = None
    """The frames folder's source record (``source_record``): the video, its decoded
    ``duration``, its header's ``declared_duration`` and ``ended_early``."""

    @property
    def ended_early(self) -> bool:
        """True when the video's pictures stop before its header's duration."""
        return bool(self.video and self.video.get("ended_early"))

    @property
    def exit_code(self):
        """The job's exit status (README, "Exit codes"): the predict step's, except that a
        complete run over a video that ended early is 4, not 0 (every frame it has is
        answered, a rerun gives the same; the missing part is the video's fault)."""
        code = self.summary.exit_code
        return ExitCode.IMAGE_ERRORS if code == ExitCode.OK and self.ended_early else code

    def dataframe(self):
        """The results as a pandas DataFrame (``dataframe.load_results`` of the report
        folder: one row per face per frame, or per frame); needs the ``notebook`` extra."""
        from .dataframe import load_results

        return load_results(self.report_dir)


def run_job(video: Path | str, out: Path | str, endpoint: str,
            options: JobOptions = JobOptions(), s3_client=None,
            annotate: Path | str | None = None) -> JobResult:
    """Run every step for ``video`` into ``out`` against ``endpoint``; a rerun resumes.

    With ``options.bucket`` every S3 call of the job (upload, frames read back, the
    report's copy) goes through one client: ``s3_client``, or one made for
    ``options.predict.s3_endpoint_url``. With ``annotate`` (a video path), ``video``
    with the rows drawn on it is written there after the report (``annotate``).

    ``out`` is locked for the job (``outlock``: a second job on it stops at once), and
    must hold this video's frames cut with these options (``source_record``), or none:
    another video's results raise ``InputError`` unless ``options.re_extract``, which
    moves them aside (``OUT/replaced-TIME/``) and cuts this one."""
    video, out = Path(video), Path(out)
    check_video_path(video)
    with out_lock(out, "run"):
        return _run_job(video, out, endpoint, options, s3_client, annotate)


def _run_job(video: Path, out: Path, endpoint: str, options: JobOptions, s3_client,
             annotate: Path | str | None) -> JobResult:
    request = options.predict
    if annotate is not None:
        annotate = check_output(annotate, video)  # before any work, not after it
    location = options.bucket  # parsed once, in JobOptions
    if location is not None and s3_client is None:
        s3_client = make_client("s3", request.s3_endpoint_url)
    timings: dict[str, float] = {}
    frames_dir = out / "frames"
    started = time.monotonic()
    # One thread, one import at a time: the tracker's norfair first (extraction builds
    # the tracker on a thread of its own and waits on this import), then the report's
    # plotting, ready when the report starts.
    import_soon(*(TRACKING_MODULES if options.faces is not None else ()), *REPORT_MODULES)
    same_source = _check_source(video, out, frames_dir, options)
    have_frames = (same_source and manifest_path(frames_dir).exists()
                   and not options.re_extract
                   and _same_mode(frames_dir, options.faces is not None))
    if location is None and not have_frames:
        # Predict while extracting: the two overlap instead of adding up.
        work, extractor, counted = _extract_streaming(video, frames_dir, request.fps,
                                                      options.faces)
        summary = predict_step.run_predict(str(frames_dir), out, endpoint, request,
                                           work=work)
        extractor.join()
        timings["extract + predict"] = time.monotonic() - started
        frame_count = counted["frames"]
    else:
        frames = (read_manifest(frames_dir) if have_frames else  # resume: already cut
                  extract_frames(video, frames_dir, fps=request.fps, progress=request.progress,
                                 faces=options.faces))
        timings["extract"] = time.monotonic() - started
        source = str(frames_dir)
        if location is not None:
            started = time.monotonic()
            uploaded = upload_frames(frames_dir, location.child("frames"), client=s3_client,
                                     progress=request.progress)
            timings["upload"] = time.monotonic() - started
            source = uploaded.location.uri()
        started = time.monotonic()
        summary = predict_step.run_predict(source, out, endpoint, request,
                                           s3_client=s3_client)
        timings["predict"] = time.monotonic() - started
        frame_count = len(frames)
    record = read_source(frames_dir)
    if (warning := ended_early_message(record)) is not None:
        summary.notes.append(warning)
    started = time.monotonic()
    paths = None
    if summary.output:
        paths = write_report(out, location.child("results") if location else None,
                             s3_client=s3_client, smooth=options.smooth)
    timings["report"] = time.monotonic() - started
    annotated = None
    if paths is not None and annotate is not None:
        started = time.monotonic()
        annotated = annotate_video(paths.report, video, annotate, progress=request.progress)
        timings["annotate"] = time.monotonic() - started
    return JobResult(frames=frame_count, summary=summary, report_dir=out,
                     timeline_png=paths.timeline_png if paths else None, seconds=timings,
                     report=paths, annotated=annotated, video=record)


def _check_source(video: Path, out: Path, frames_dir: Path, options: JobOptions) -> bool:
    """True when ``frames_dir`` holds ``video`` cut with these options, completely. When
    ``out`` has results of something else: ``InputError``, or with ``re_extract`` those
    results are moved aside (never answered from, never deleted)."""
    want = source_record.wanted(video, options.predict.fps, EXTRACT_QUALITY, options.faces)
    record = read_source(frames_dir)
    differ = source_record.differences(record, want)
    if differ and (out / JOURNAL_NAME).exists():
        if not options.re_extract:
            raise InputError(
                f"--out {out} holds the results of other frames: {'; '.join(differ)}. "
                f"Give another --out for {video.name}, or add --re-extract to cut it "
                f"there (the old results are moved to {out}/replaced-TIME/)")
        aside = out / time.strftime("replaced-%Y%m%d-%H%M%S")
        aside.mkdir()
        for name in (JOURNAL_NAME, PREDICTIONS_NAME):
            if (out / name).exists():
                (out / name).rename(aside / name)
    return not differ and bool(record and record.get("complete"))


def _same_mode(frames_dir: Path, faces: bool) -> bool:
    """True when the frames folder was cut the way this job wants (with or without faces);
    otherwise it is cut again rather than predicted in the wrong mode."""
    frames = read_manifest(frames_dir)
    return all((frame.faces is not None) == faces for frame in frames)


def _extract_streaming(video: Path, frames_dir: Path, fps: float, faces=None):
    """Extract in a thread; a :class:`Work` whose items (the frame, or its faces) come as
    soon as each frame's files are written; the third value counts the frames yielded.

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
            yield from frame_items(frame, frames_dir)
        if errors:
            raise errors[0]

    return Work(stream(), faces=faces is not None, source=str(frames_dir)), thread, counted
