"""``extract``: cut a video into JPEG frames at a fixed rate, by the stream's timestamps.

Output frame ``k`` is the decoded frame on screen at ``t_k = k / fps`` (the latest frame
whose presentation time is ``<= t_k``), for every ``t_k`` before the end of the video.
A source slower than ``fps`` repeats frames, a faster one skips some, and variable
frame rate input keeps its real timing, because frames are never counted, only timed.
Frame ``k``'s manifest timestamp is ``t_k`` itself (the sampling instant), not the
source frame's own time: the output is a regular series, which is what per-second
reports need. The chosen source time is kept in ``Frame.extra["source_time"]``.

The synthetic sample videos of tests and demos are in ``samples`` (re-exported here).
"""
from __future__ import annotations

import hashlib
import io
import math
import re
import sys
from fractions import Fraction
from pathlib import Path

import av
from tqdm import tqdm

from ..errors import InputError, VideoError
from .manifest import Frame, frame_id, manifest_path, write_manifest
from .samples import make_sample_video, make_vfr_video, read_frame_number, synthetic_frames

__all__ = ["VideoError", "extract_frames", "extract_video", "make_sample_video",
           "make_vfr_video", "read_frame_number", "synthetic_frames"]

# Matroska stores times rounded to the millisecond (frame 2 of 30 fps lands at 0.067 s,
# after t_2 = 0.0667 s), so times are compared with this much slack.
SLACK = Fraction(1, 1000)
FRAME_FILE = re.compile(r"^frame_(\d{6,})\.jpg$")


def _rate(fps) -> Fraction:
    if not (math.isfinite(float(fps)) and float(fps) > 0):
        raise InputError(f"fps must be a positive number, got {fps!r}")
    # 29.97 as a float would become a huge binary fraction; this gives 2997/100 back.
    rate = Fraction(fps).limit_denominator(1_000_000)
    if rate == 0:
        raise InputError(f"fps {fps!r} is too small: at most one frame per 10^6 s")
    return rate


def _open_video(video: Path):
    if not video.is_file():
        raise VideoError(f"{video} not found (or not a file): check the path to the video")
    try:
        container = av.open(str(video))
    except (av.error.FFmpegError, OSError) as exc:
        raise VideoError(f"{video} is not a readable video ({exc}); give a complete, "
                         "undamaged video file such as .mp4, .mkv, .mov or .avi") from None
    if not container.streams.video:
        container.close()
        raise VideoError(f"{video} has no video stream (audio or data only); give a file "
                         "that contains video")
    return container


def _encode_jpeg(frame: av.VideoFrame, quality: int) -> bytes:
    buf = io.BytesIO()
    frame.to_image().save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def extract_video(video, out_dir, fps=30.0, quality=90, progress=True,
                  on_frame=None) -> tuple[list[Frame], float]:
    """:func:`extract_frames`, also returning the video's duration in seconds."""
    video, out_dir, rate = Path(video), Path(out_dir), _rate(fps)
    if not 1 <= int(quality) <= 100:
        raise InputError(f"quality must be 1..100, got {quality}")
    container = _open_video(video)
    # Validated before anything in out_dir is touched: a typo must not cost a good folder.
    out_dir.mkdir(parents=True, exist_ok=True)
    # The old manifest would describe files about to be overwritten; an interrupted run
    # must leave no manifest rather than a wrong one.
    manifest_path(out_dir).unlink(missing_ok=True)
    frames: list[Frame] = []
    with container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        nominal = stream.average_rate or stream.guessed_rate
        estimate = (stream.duration * stream.time_base if stream.duration
                    else Fraction(container.duration or 0, av.time_base))
        bar = tqdm(total=math.ceil(estimate * rate) or None, unit="frame",
                   desc=f"extract {video.name}", leave=False,
                   disable=not (progress and sys.stderr.isatty()))
        origin = (stream.start_time * stream.time_base
                  if stream.start_time is not None else None)
        current = None  # [time, av frame, jpeg bytes or None]: the frame on screen now
        last_gap = Fraction(1) / (nominal or rate)

        def emit_until(limit: Fraction) -> None:
            # Every t_k before `limit` shows the current frame; encode it once, on demand.
            while Fraction(len(frames)) / rate + SLACK < limit:
                if current[2] is None:
                    current[2] = _encode_jpeg(current[1], quality)
                k, data = len(frames), current[2]
                name = f"{frame_id(k)}.jpg"
                (out_dir / name).write_bytes(data)
                frames.append(Frame(index=k, timestamp=float(Fraction(k) / rate), file=name,
                                    size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                                    extra={"source_time": float(current[0])}))
                bar.update(1)
                if on_frame is not None:
                    on_frame(frames[-1])

        try:
            for decoded in container.decode(stream):
                if decoded.pts is None:  # rare (raw elementary streams): assume even spacing
                    time = current[0] + last_gap if current else Fraction(0)
                else:
                    time = decoded.pts * (decoded.time_base or stream.time_base)
                    if origin is None:
                        origin = time
                    time -= origin
                if decoded.duration:
                    last_gap = decoded.duration * (decoded.time_base or stream.time_base)
                if current is not None:
                    if time <= current[0]:
                        continue  # a timestamp going backwards is a broken packet; keep order
                    emit_until(time)
                current = [time, decoded, None]
            if current is None:
                raise VideoError(f"{video}: the video stream has no decodable frames; "
                                 "re-export the video")
            end = current[0] + last_gap  # the last frame stays on screen for its duration
            if len(frames) == 0 and end <= SLACK:
                end = 2 * SLACK  # a single still: still one output frame
            emit_until(end)
        except av.error.FFmpegError as exc:
            raise VideoError(f"{video}: decoding failed after {len(frames)} frames ({exc}); "
                             "the file may be truncated or damaged: re-export it") from None
        finally:
            bar.close()
    # Frames of an earlier, longer run would otherwise look like part of this one.
    for stale in out_dir.glob("frame_*.jpg"):
        match = FRAME_FILE.match(stale.name)
        if match and int(match.group(1)) >= len(frames):
            stale.unlink()
    write_manifest(out_dir, frames)
    return frames, float(end)


def extract_frames(video, out_dir, fps: float = 30.0, quality: int = 90,
                   progress: bool = True, on_frame=None) -> list[Frame]:
    """Write ``frame_{k:06d}.jpg`` for each ``t_k = k / fps`` before the end, plus the manifest.

    Frame ``k`` is the decoded frame displayed at ``t_k`` by the stream's timestamps and
    its manifest timestamp is ``t_k``. Earlier ``frame_*.jpg`` beyond the new count are
    removed. Raises :class:`VideoError` (a ``ValueError``) for a missing file, a file
    that is not a video, or one without a video stream. ``on_frame(frame)`` is called as
    soon as each frame's file is written (``run`` predicts while extraction goes on).
    """
    return extract_video(video, out_dir, fps, quality, progress, on_frame)[0]
