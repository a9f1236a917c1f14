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
import math
import re
import sys
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
from tqdm import tqdm

from ..errors import InputError, VideoError
from . import source_record
from .manifest import FACES_DIR, Frame, frame_id, manifest_path, write_face_crops, \
    write_manifest
from .samples import (frame_rate, make_sample_video, make_vfr_video, read_frame_number,
                      synthetic_frames)

__all__ = ["VideoError", "extract_frames", "extract_video", "make_sample_video",
           "make_vfr_video", "read_frame_number", "synthetic_frames"]

# Matroska stores times rounded to the millisecond (frame 2 of 30 fps lands at 0.067 s,
# after t_2 = 0.0667 s), so times are compared with this much slack.
SLACK = Fraction(1, 1000)
FRAME_FILE = re.compile(r"^frame_(\d{6,})\.jpg$")


def check_video_path(video: Path) -> None:
    """``VideoError`` unless ``video`` is a file (a folder of images is for ``predict``)."""
    if video.is_dir():
        raise VideoError(f"{video} is a folder, not a video: to predict a folder of images "
                         f"use `frame-infer predict {video} --endpoint URL --out FOLDER`")
    if not video.is_file():
        raise VideoError(f"{video} not found (or not a file): check the path to the video")


def open_video(video: Path, unreadable: str = "give a complete, undamaged video file "
               "such as .mp4, .mkv, .mov or .avi", no_stream: str = "give a file that "
               "contains video"):
    """The PyAV container of ``video``, a file (the caller checks that); ``VideoError``
    naming the problem, then ``unreadable`` or ``no_stream`` as the fix, when PyAV
    cannot open it or it has no video stream."""
    try:
        container = av.open(str(video))
    except (av.error.FFmpegError, OSError) as exc:
        raise VideoError(f"{video} is not a readable video ({exc}); {unreadable}") from None
    if not container.streams.video:
        container.close()
        raise VideoError(f"{video} has no video stream (audio or data only); {no_stream}")
    return container


class _Pixels:
    """Decoded frames -> BGR arrays and JPEG bytes, for the whole video.

    ``VideoFrame.to_image()`` builds a new swscale context and a Pillow image for every
    frame: measured 4.6 ms per 640×480 frame, most of the cost of cutting a video. One
    :class:`VideoReformatter` keeps its context from frame to frame (the same pixels as
    ``to_ndarray(format="bgr24")``), and OpenCV encodes the array as it is: 1.3 ms together.
    """

    def __init__(self, quality: int):
        from av.video.reformatter import VideoReformatter

        from .faces import encode_jpeg

        self.quality, self._encode = quality, encode_jpeg
        self._reformatter = VideoReformatter()

    def bgr(self, frame: av.VideoFrame):
        return self._reformatter.reformat(frame, format="bgr24").to_ndarray()

    def jpeg(self, bgr) -> bytes:
        return self._encode(bgr, self.quality)


def _samples(container, stream, video: Path, rate: Fraction, state: dict
             ) -> Iterator[tuple[int, Fraction, "av.VideoFrame"]]:
    """``(k, source time, decoded frame)`` for every ``t_k = k / rate`` before the end.

    A source frame shown at several ``t_k`` is yielded as the same object each time (so
    its encoding can be reused). ``state["end"]`` holds the video's end once exhausted.
    """
    nominal = stream.average_rate or stream.guessed_rate
    origin = (stream.start_time * stream.time_base
              if stream.start_time is not None else None)
    current = None  # (time, av frame): the frame on screen now
    last_gap = Fraction(1) / (nominal or rate)
    count = 0

    def until(limit: Fraction):
        # Every t_k before `limit` shows the current frame.
        nonlocal count
        while Fraction(count) / rate + SLACK < limit:
            yield count, current[0], current[1]
            count += 1

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
            yield from until(time)
        current = (time, decoded)
    if current is None:
        raise VideoError(f"{video}: the video stream has no decodable frames; "
                         "re-export the video")
    end = current[0] + last_gap  # the last frame stays on screen for its duration
    if count == 0 and end <= SLACK:
        end = 2 * SLACK  # a single still: still one output frame
    yield from until(end)
    state["end"] = end


def _frame(out_dir: Path, k: int, rate: Fraction, source_time: Fraction, data: bytes,
           faces: list[dict] | None = None) -> Frame:
    name = f"{frame_id(k)}.jpg"
    (out_dir / name).write_bytes(data)
    return Frame(index=k, timestamp=float(Fraction(k) / rate), file=name, size=len(data),
                 sha256=hashlib.sha256(data).hexdigest(),
                 extra={"source_time": float(source_time)}, faces=faces)


def _encode_and_detect(bgr, pixels: _Pixels, detector) -> tuple[bytes, list]:
    return pixels.jpeg(bgr), detector.faces(bgr, bgr=True)


LOADING_LOOKAHEAD = 300
"""At most this many frames (10 s at 30 FPS) may wait, done, while the tracker is still
being built: importing norfair (with filterpy and SciPy) takes 0.4-0.8 s, and detection
goes on meanwhile instead of waiting (``benchmarks/NOTES.md``, 2026-12-03 evening). What
waits is each frame's JPEG and face crops, also bounded to about
:data:`LOADING_LOOKAHEAD_BYTES` (JPEG at quality 90 is well under half a byte a pixel:
640x480 frames ~40 KB, so 300 of them; 4K, 16). Decoded frames not yet worked on stay
bounded by ``2 * threads`` as always."""
LOADING_LOOKAHEAD_BYTES = 64 * 2 ** 20


def _loading_lookahead(frame, threads: int) -> int:
    """Frames that may wait for the tracker, for frames of ``frame``'s size."""
    per_frame = max(1, frame.width * frame.height // 2)
    return max(2 * threads, min(LOADING_LOOKAHEAD, LOADING_LOOKAHEAD_BYTES // per_frame))


def _with_faces(samples, out_dir: Path, rate: Fraction, pixels: _Pixels, detector,
                emit) -> None:
    """Encode and detect on a pool of threads (OpenCV and LiteRT release the GIL, so
    every core works), emitting frames in order as their work completes; the faces get
    their person ids as they are emitted (tracking needs frame order). The tracker is
    built on a thread of its own meanwhile (:data:`LOADING_LOOKAHEAD`)."""
    from .tracks import FaceTracker

    (out_dir / FACES_DIR).mkdir(exist_ok=True)
    threads = detector.options.threads
    pending: deque = deque()  # (k, source time, future), in frame order

    def emit_oldest() -> None:
        k0, time0, future = pending.popleft()
        data, crops = future.result()
        persons = tracker.result().update([c.box for c in crops], [c.data for c in crops])
        emit(_frame(out_dir, k0, rate, time0, data,
                    write_face_crops(out_dir, k0, crops, persons)))

    with ThreadPoolExecutor(threads, thread_name_prefix="faces") as pool, \
            ThreadPoolExecutor(1, thread_name_prefix="tracker") as loader:
        tracker = loader.submit(FaceTracker, float(rate))
        last = None  # (decoded frame, future): a repeated frame is worked on once
        try:
            for k, source_time, decoded in samples:
                if last is None or last[0] is not decoded:
                    last = (decoded, pool.submit(_encode_and_detect, pixels.bgr(decoded),
                                                 pixels, detector))
                pending.append((k, source_time, last[1]))
                # Bounded look-ahead: emit what is done, wait when too much is queued.
                ahead = 2 * threads if tracker.done() else _loading_lookahead(decoded,
                                                                              threads)
                while pending and ((pending[0][2].done() and tracker.done())
                                   or len(pending) > ahead):
                    emit_oldest()
                unfinished = [f for _, _, f in pending if not f.done()]
                if len(unfinished) > 2 * threads:  # decoded frames waiting for a thread
                    unfinished[0].result()
            while pending:
                emit_oldest()
        finally:
            for _, _, future in pending:
                future.cancel()


def extract_video(video, out_dir, fps=30.0, quality=90, progress=True,
                  on_frame=None, faces=None) -> tuple[list[Frame], float]:
    """:func:`extract_frames`, also returning the video's duration in seconds."""
    video, out_dir, rate = Path(video), Path(out_dir), frame_rate(fps)
    if not 1 <= int(quality) <= 100:
        raise InputError(f"quality must be 1..100, got {quality}")
    detector = None
    if faces is not None:
        from .faces import FaceDetector

        detector = FaceDetector(faces)  # fails before any file is touched
    check_video_path(video)
    container = open_video(video)
    # Validated before anything in out_dir is touched: a typo must not cost a good folder.
    out_dir.mkdir(parents=True, exist_ok=True)
    # The old manifest would describe files about to be overwritten; an interrupted run
    # must leave no manifest rather than a wrong one.
    manifest_path(out_dir).unlink(missing_ok=True)
    # Which video and options the folder holds (source_record.py): run compares them.
    record = source_record.wanted(video, fps, quality, faces)
    source_record.write_source(out_dir, {**record, "complete": False})
    frames: list[Frame] = []
    state: dict = {}
    with container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        estimate = (stream.duration * stream.time_base if stream.duration
                    else Fraction(container.duration or 0, av.time_base))
        bar = tqdm(total=math.ceil(estimate * rate) or None, unit="frame",
                   desc=f"extract {video.name}", leave=False,
                   disable=not (progress and sys.stderr.isatty()))

        def emit(frame: Frame) -> None:
            frames.append(frame)
            bar.update(1)
            if on_frame is not None:
                on_frame(frame)

        samples = _samples(container, stream, video, rate, state)
        try:
            pixels = _Pixels(quality)
            if detector is not None:
                _with_faces(samples, out_dir, rate, pixels, detector, emit)
            else:
                encoded = (None, b"")  # (decoded frame, its JPEG): encode once, on demand
                for k, source_time, decoded in samples:
                    if encoded[0] is not decoded:
                        encoded = (decoded, pixels.jpeg(pixels.bgr(decoded)))
                    emit(_frame(out_dir, k, rate, source_time, encoded[1]))
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
    if detector is not None:
        kept = {entry["file"] for frame in frames for entry in frame.faces}
        for stale in (out_dir / FACES_DIR).glob("frame_*.jpg"):
            if f"{FACES_DIR}/{stale.name}" not in kept:
                stale.unlink()
    write_manifest(out_dir, frames)
    end, declared = float(state["end"]), float(estimate) or None
    source_record.write_source(out_dir, {
        **record, "complete": True, "frames": len(frames), "duration": end,
        "declared_duration": declared,
        "ended_early": source_record.ended_early(declared, end)})
    return frames, end


def extract_frames(video, out_dir, fps: float = 30.0, quality: int = 90,
                   progress: bool = True, on_frame=None, faces=None) -> list[Frame]:
    """Write ``frame_{k:06d}.jpg`` for each ``t_k = k / fps`` before the end, plus the manifest.

    Frame ``k`` is the decoded frame displayed at ``t_k`` by the stream's timestamps and
    its manifest timestamp is ``t_k``. Earlier ``frame_*.jpg`` beyond the new count are
    removed. Raises :class:`VideoError` (a ``ValueError``) for a missing file, a file
    that is not a video, or one without a video stream. ``on_frame(frame)`` is called as
    soon as each frame's file is written (``run`` predicts while extraction goes on).

    With ``faces`` (a :class:`~frame_infer.client.faces.FaceOptions`) every frame is also
    searched for faces: each face's crop is written to ``faces/frame_{k:06d}_face{n}.jpg``
    and the frame's manifest line lists them (``faces``: face number, box, crop square,
    file, size, sha256; an empty list when the frame has none).
    """
    return extract_video(video, out_dir, fps, quality, progress, on_frame, faces)[0]
