"""``extract``: cut a video into JPEG frames at a fixed rate, by the stream's timestamps.

Output frame ``k`` is the decoded frame on screen at ``t_k = k / fps`` (the latest frame
whose presentation time is ``<= t_k``), for every ``t_k`` before the end of the video.
A source slower than ``fps`` repeats frames, a faster one skips some, and variable
frame rate input keeps its real timing, because frames are never counted, only timed.
Frame ``k``'s manifest timestamp is ``t_k`` itself (the sampling instant), not the
source frame's own time: the output is a regular series, which is what per-second
reports need. The chosen source time is kept in ``Frame.extra["source_time"]``.

Also here: small synthetic videos (constant and variable rate) for tests and demos,
with the frame number drawn as a bit strip that :func:`read_frame_number` reads back.
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
import numpy as np
from PIL import Image
from tqdm import tqdm

from .manifest import Frame, frame_id, manifest_path, write_manifest
from ..errors import InputError, VideoError  # noqa: F401 (VideoError re-exported)

# Matroska stores times rounded to the millisecond (frame 2 of 30 fps lands at 0.067 s,
# after t_2 = 0.0667 s), so times are compared with this much slack.
SLACK = Fraction(1, 1000)
FRAME_FILE = re.compile(r"^frame_(\d{6,})\.jpg$")
BITS = 12  # frame numbers up to 4095 in the sample videos' strip


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


def _pick_codec(codec: str | None) -> str:
    for name in ([codec] if codec else ["libx264", "mpeg4"]):
        try:
            av.codec.Codec(name, "w")
            return name
        except Exception:  # PyAV raises different errors for unknown/decoder-only codecs
            continue
    raise VideoError(f"this PyAV build cannot encode {codec or 'libx264 or mpeg4'}")


def _strip_cells(width: int, height: int) -> list[tuple[int, int, int, int]]:
    cell = width // (BITS + 2)
    strip = max(8, height // 10)
    return [(cell * (i + 1), 0, cell * (i + 2), strip) for i in range(BITS)]


def _draw(number: int, size: tuple[int, int], background: np.ndarray,
          sprite: np.ndarray) -> np.ndarray:
    """Gradient + a face-like blob moving left/right + the frame number as a bit strip."""
    width, height = size
    img = background.copy()
    sh, sw = sprite.shape
    phase = (number % 120) / 60.0  # 4 s round trip at 30 fps
    x = int((width - sw) * (phase if phase <= 1 else 2 - phase))
    y = (height - sh) // 2 + int(height * 0.1 * math.sin(number / 15))
    y = min(max(y, 0), height - sh)
    patch = img[y:y + sh, x:x + sw].astype(np.float32)
    img[y:y + sh, x:x + sw] = np.clip(patch + sprite[..., None], 0, 255).astype(np.uint8)
    for bit, (x0, y0, x1, y1) in enumerate(_strip_cells(width, height)):
        img[y0:y1, x0:x1] = 235 if number >> bit & 1 else 16
    return img


def _background(size: tuple[int, int]) -> np.ndarray:
    width, height = size
    xx = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    yy = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    return np.stack([50 + 90 * xx + 0 * yy, 40 + 60 * yy + 0 * xx,
                     90 + 40 * (1 - xx) + 0 * yy], axis=-1).astype(np.uint8)


def _face_sprite(diameter: int) -> np.ndarray:
    yy, xx = np.mgrid[0:diameter, 0:diameter].astype(np.float32) / diameter - 0.5
    face = 190 * np.exp(-(xx ** 2 + yy ** 2) / (2 * 0.15 ** 2))  # ~0 at the edges
    for ex in (-0.15, 0.15):  # eyes and a mouth: dark spots, so there is something face-like
        face -= 150 * np.exp(-((xx - ex) ** 2 + (yy + 0.1) ** 2) / (2 * 0.04 ** 2))
    face -= 120 * np.exp(-(xx ** 2 / (2 * 0.12 ** 2) + (yy - 0.17) ** 2 / (2 * 0.03 ** 2)))
    return face


def _write_video(path, times: list[Fraction], time_base: Fraction, rate: Fraction,
                 size: tuple[int, int], codec: str | None) -> Path:
    path, codec = Path(path), _pick_codec(codec)
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    background, sprite = _background(size), _face_sprite(max(16, min(width, height) // 3))
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = time_base
        # Near-lossless, so the bit strip survives encoding; fast, so tests stay quick.
        stream.options = {"crf": "16", "preset": "veryfast"} if "264" in codec else {}
        if codec == "mpeg4":
            stream.bit_rate = 8 * width * height * int(rate)
        for number, time in enumerate(times):
            frame = av.VideoFrame.from_ndarray(_draw(number, size, background, sprite),
                                               format="rgb24")
            frame.pts, frame.time_base = int(time / time_base), time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def make_sample_video(path, seconds: float = 20.0, fps=30, size: tuple[int, int] = (640, 480),
                      codec: str | None = None) -> Path:
    """A synthetic constant-rate video: ``round(seconds * fps)`` frames, frame number drawn.

    ``codec`` defaults to libx264, else mpeg4 (whichever this PyAV can encode).
    """
    rate = _rate(fps)
    count = round(Fraction(seconds).limit_denominator(1000) * rate)
    return _write_video(path, [Fraction(i) / rate for i in range(count)], 1 / rate, rate,
                        size, codec)


def make_vfr_video(path, timestamps: list[float], size: tuple[int, int] = (160, 120),
                   nominal_fps=30, codec: str | None = None) -> Path:
    """A variable-frame-rate video: frame ``i`` (number ``i`` drawn) shown at ``timestamps[i]``.

    Use ``.mkv`` (millisecond times) or ``.mp4``. ``nominal_fps`` is only metadata; it
    also sets how long the last frame lasts (one nominal frame).
    """
    times = [Fraction(t).limit_denominator(1000) for t in timestamps]
    if not times or any(b <= a for a, b in zip(times, times[1:])) or times[0] < 0:
        raise InputError("timestamps must be non-negative and strictly increasing")
    return _write_video(path, times, Fraction(1, 1000), _rate(nominal_fps), size, codec)


def synthetic_frames(count: int, size: tuple[int, int] = (640, 480), quality: int = 90
                     ) -> list[bytes]:
    """``count`` JPEG frames of the sample video's kind, without encoding a video."""
    background = _background(size)
    sprite = _face_sprite(max(16, min(size) // 3))
    frames = []
    for number in range(count):
        buf = io.BytesIO()
        Image.fromarray(_draw(number, size, background, sprite)).save(buf, "JPEG",
                                                                       quality=quality)
        frames.append(buf.getvalue())
    return frames


def read_frame_number(image) -> int:
    """The frame number drawn by the sample videos into ``image`` (PIL image or array)."""
    gray = np.asarray(image.convert("L") if isinstance(image, Image.Image) else image)
    if gray.ndim == 3:
        gray = gray.mean(axis=2)
    number = 0
    for bit, (x0, y0, x1, y1) in enumerate(_strip_cells(gray.shape[1], gray.shape[0])):
        # The cell's middle only: edges blur into the neighbours after lossy coding.
        mx, my = max(1, (x1 - x0) // 4), max(1, (y1 - y0) // 4)
        if gray[y0 + my:y1 - my, x0 + mx:x1 - mx].mean() > 128:
            number |= 1 << bit
    return number
