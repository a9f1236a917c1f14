"""``annotate``: the source video with what was predicted drawn on it (``report --video``).

Every decoded frame of the source is written once, at its own time and size, so the
output has the source's frame count, frame rate and duration. Each frame carries the
annotations of the sampled frame it belongs to: ``extract`` took sample ``k`` (a row's
``timestamp`` is its sampling instant ``k / fps``) from the source frame on screen then,
so a source frame shows the latest sample taken at or before the moment it leaves the
screen, and a sample's boxes (in the source frame's pixels) stay until the next sample.

What is drawn for the rows of one sample:

- a face: its box in its label's colour (the timeline's palette), and above it
  ``person N`` (the row's track id) or, untracked, ``face N``, the label and the score;
- a whole frame: the label and score in the top-left corner, no box;
- an error row: its box (if any) in grey, with its person or face and the error code;
- a frame without a face: nothing.

Streamed: one decoded frame at a time is drawn (OpenCV) and handed to the encoder
(PyAV), with one frame of look-ahead to know when the current one leaves the screen;
memory does not grow with the video's length. Audio is not copied. The video is
written to ``NAME.partial.SUFFIX`` and renamed when complete, so an interrupted run
leaves no half video under the asked name.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator

from ..errors import InputError, NotFoundError, VideoError
from .records import Prediction, Report, read_report
from .source_record import fingerprint, read_source
from .timeline import label_colour as timeline_colour

# Matroska keeps times in milliseconds; extract compares times with the same slack.
SLACK = Fraction(1, 1000)

ERROR_COLOUR = "#606060"
"""The box of an error row (it has no label)."""


def label_colour(label: str | None) -> str:
    """The hex colour of ``label``, the timeline's (:data:`.timeline.EMOTION_COLOURS`, so an
    emotion has one colour in every picture of a report); grey for an error row."""
    return ERROR_COLOUR if label is None else timeline_colour(label)


def _bgr(hex_colour: str) -> tuple[int, int, int]:
    value = int(hex_colour.lstrip("#"), 16)
    return value & 0xFF, value >> 8 & 0xFF, value >> 16


@dataclass(frozen=True)
class AnnotatedVideo:
    """What :func:`annotate_video` wrote."""
    path: Path
    frames: int
    """Frames written: every decoded frame of the source."""
    seconds: float
    """Duration: the last frame's time plus its duration."""
    width: int
    height: int
    fps: float
    """The source stream's frame rate, given to the output stream."""
    samples: int
    """Sampled frames (distinct row indices) whose annotations were drawn on some frame
    (a sample of a frame that other samples of it follow is not: the latest one is)."""


def recorded_source(frames_dir: Path) -> Path | None:
    """The video a frames folder records it was cut from (``frames/source.json``,
    :mod:`.source_record`), when the file at that path is still that video (same size
    and edges); else None."""
    record = read_source(frames_dir)
    name = record.get("video") if record else None
    if not isinstance(name, str) or not name:
        return None
    video = Path(name) if Path(name).is_absolute() else Path(frames_dir) / name
    if not video.is_file():
        return None
    same = all(record.get(key) == value for key, value in fingerprint(video).items())
    return video if same else None


def _samples(predictions: Iterable[Prediction]) -> list[tuple[Fraction, list[Prediction]]]:
    """(sampling instant, its rows) per sampled frame, in time order."""
    by_index: dict[int, list[Prediction]] = {}
    for p in predictions:
        by_index.setdefault(p.index, []).append(p)
    return sorted(((Fraction(rows[0].timestamp).limit_denominator(1_000_000), rows)
                   for rows in by_index.values()), key=lambda s: s[0])


def sample_picker(sample_times: list[Fraction]):
    """A function of a source frame's end (the time it leaves the screen, calls in time
    order) giving the position in ``sample_times`` of the sample it shows: the latest one
    taken before it left (``extract`` takes sample ``k`` from the frame on screen at its
    time), held until the next; None before the first sample."""
    state = {"next": 0, "shown": None}

    def pick(leaves: Fraction) -> int | None:
        while state["next"] < len(sample_times) and sample_times[state["next"]] + SLACK < leaves:
            state["shown"], state["next"] = state["next"], state["next"] + 1
        return state["shown"]

    return pick


def caption(p: Prediction) -> str:
    """The text drawn for a row: ``person 3: happy 0.93`` (``face 0: ...`` untracked,
    ``happy 0.93`` for a whole frame, ``person 3: error CODE`` for an error row)."""
    who = (f"person {p.item.person}" if p.item.person is not None
           else f"face {p.face}" if p.face is not None else "")
    what = f"{p.label} {p.score:.2f}" if p.ok else f"error {p.error_code}"
    return f"{who}: {what}" if who else what


def _label(image, text: str, x: int, y: int, colour, scale: float, thickness: int) -> None:
    """``text`` on a filled box of ``colour`` whose bottom-left corner is (x, y), moved
    inside the frame when it would leave it."""
    import cv2

    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    pad = max(2, thickness)
    height, width = image.shape[:2]
    x = min(max(0, x), max(0, width - w - 2 * pad))
    y = min(max(h + base + 2 * pad, y), height)
    cv2.rectangle(image, (x, y - h - base - 2 * pad), (x + w + 2 * pad, y), colour, -1)
    # Dark text on light colours, white on dark ones (ITU-R BT.601 luma).
    luma = 0.114 * colour[0] + 0.587 * colour[1] + 0.299 * colour[2]
    ink = (0, 0, 0) if luma > 140 else (255, 255, 255)
    cv2.putText(image, text, (x + pad, y - base - pad), cv2.FONT_HERSHEY_SIMPLEX, scale, ink,
                thickness, cv2.LINE_AA)


def box_thickness(width: int, height: int) -> int:
    """The line width of boxes in a ``width`` × ``height`` frame (3 px at 480p, 7 at 1080p)."""
    return max(3, round(min(width, height) / 160))


def draw_rows(image, rows: list[Prediction]) -> None:
    """Draw one sample's rows onto ``image`` (a BGR array, in place)."""
    import cv2

    height, width = image.shape[:2]
    thickness = box_thickness(width, height)
    scale = max(0.5, min(width, height) / 720)
    text_thickness = max(1, thickness // 2)
    corner = 0  # whole-frame captions stack down from the top-left corner
    for p in rows:
        if p.no_face:
            continue
        colour = _bgr(label_colour(p.label if p.ok else None))
        if p.box is None:
            corner += 1
            _label(image, caption(p), 0, corner * round(36 * scale), colour, scale,
                   text_thickness)
            continue
        x, y, w, h = p.box
        cv2.rectangle(image, (x, y), (x + w - 1, y + h - 1), colour, thickness)
        _label(image, caption(p), x - thickness // 2, y - thickness // 2 - 1, colour, scale,
               text_thickness)


def _open_source(video: Path):
    from .extract import open_video

    if not video.is_file():
        raise NotFoundError(f"source video {video} not found (or not a file): give the "
                            "video the frames were cut from (--source VIDEO)")
    fix = "give the video the frames were cut from"
    return open_video(video, fix, fix)


def _timed_frames(container, stream) -> Iterator[tuple[Fraction, Fraction, object]]:
    """(time, next frame's time, decoded frame) of every frame, times from the stream's
    start as ``extract`` counts them; the last frame's "next" is the end of the video.
    A frame whose time does not increase is dropped, as ``extract`` does."""
    origin = stream.start_time * stream.time_base if stream.start_time is not None else None
    nominal = stream.average_rate or stream.guessed_rate or Fraction(30)
    gap = 1 / Fraction(nominal)
    current = None
    for decoded in container.decode(stream):
        base = decoded.time_base or stream.time_base
        if decoded.pts is None:
            time = current[0] + gap if current else Fraction(0)
        else:
            time = decoded.pts * base
            origin = time if origin is None else origin
            time -= origin
        if decoded.duration:
            gap = decoded.duration * base
        if current is not None:
            if time <= current[0]:
                continue
            yield current[0], time, current[1]
        current = (time, decoded)
    if current is None:
        raise VideoError("the source video has no decodable frames; re-export it")
    yield current[0], current[0] + gap, current[1]


def _pick_codec() -> str:
    import av

    for name in ("libx264", "mpeg4"):
        try:
            av.codec.Codec(name, "w")
            return name
        except Exception:  # PyAV raises different errors for unknown/decoder-only codecs
            continue
    raise VideoError("this PyAV build can encode neither libx264 nor mpeg4")


def _add_encoder(output, width: int, height: int, rate: Fraction, time_base: Fraction):
    """The output's video stream: the source's size, rate and time base; H.264 (CRF 18,
    nearly lossless to the eye) or, without libx264, MPEG-4 Part 2."""
    codec = _pick_codec()
    encoder = output.add_stream(codec, rate=rate)
    encoder.width, encoder.height = width, height
    # 4:2:0 needs even sides; an odd-sized source keeps its size in 4:4:4.
    encoder.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
    encoder.codec_context.time_base = time_base
    if "264" in codec:
        encoder.options = {"crf": "18", "preset": "veryfast"}
    else:
        encoder.bit_rate = 8 * width * height * max(1, int(rate))
    return encoder


def _progress(container, stream, rate: Fraction, name: str, progress: bool):
    import sys

    from tqdm import tqdm

    seconds = (stream.duration * stream.time_base if stream.duration
               else Fraction(container.duration or 0, 1_000_000))
    return tqdm(total=stream.frames or round(seconds * rate) or None, unit="frame",
                desc=f"annotate {name}", leave=False,
                disable=not (progress and sys.stderr.isatty()))


def annotate_video(report: Report | Iterable[Prediction], source, out,
                   progress: bool = False) -> AnnotatedVideo:
    """Write ``source`` with ``report``'s rows drawn on it to ``out`` (``.mp4``, ``.mkv``,
    ...), at the source's frame rate and size; returns what was written.

    ``report`` is a :class:`~.records.Report` (``read_report(out_dir)``) or its
    predictions; ``progress`` draws a progress bar on a terminal. Raises
    :class:`~frame_infer.errors.NotFoundError` / :class:`~frame_infer.errors.VideoError`
    for a missing or unreadable source and :class:`~frame_infer.errors.InputError` when
    ``out`` is the source itself.
    """
    import av
    from av.video.reformatter import VideoReformatter

    predictions = report.predictions if isinstance(report, Report) else tuple(report)
    source, out = Path(source), check_output(out, source)
    samples = _samples(predictions)
    partial = out.with_name(f"{out.stem}.partial{out.suffix}")
    out.parent.mkdir(parents=True, exist_ok=True)
    frames, end, drawn = 0, Fraction(0), set()
    pick = sample_picker([time for time, _ in samples])
    with _open_source(source) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        width, height = stream.codec_context.width, stream.codec_context.height
        rate = stream.average_rate or stream.guessed_rate or Fraction(30)
        reformatter, time_base = VideoReformatter(), stream.time_base
        bar = _progress(container, stream, rate, out.name, progress)
        try:
            with av.open(str(partial), "w") as output:
                encoder = _add_encoder(output, width, height, rate, time_base)
                for time, leaves, decoded in _timed_frames(container, stream):
                    image = reformatter.reformat(decoded, format="bgr24").to_ndarray()
                    shown = pick(leaves)
                    if shown is not None:
                        if not image.flags.writeable:
                            image = image.copy()
                        draw_rows(image, samples[shown][1])
                        drawn.add(shown)
                    frame = av.VideoFrame.from_ndarray(image, format="bgr24")
                    frame.pts, frame.time_base = round(time / time_base), time_base
                    output.mux(encoder.encode(frame))
                    frames, end = frames + 1, leaves
                    bar.update(1)
                output.mux(encoder.encode())
        except av.error.FFmpegError as exc:
            partial.unlink(missing_ok=True)
            raise VideoError(f"{source}: annotating failed after {frames} frames ({exc}); "
                             "the file may be truncated or damaged") from None
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        finally:
            bar.close()
    partial.replace(out)
    return AnnotatedVideo(out, frames, float(end), width, height, float(rate), len(drawn))


def source_video(out_dir, source=None) -> Path:
    """The source video for ``out_dir``'s annotated video: ``source``, or the one its
    frames folder records (:func:`recorded_source`); checked before any work is done."""
    out_dir = Path(out_dir)
    if source is None:
        source = recorded_source(out_dir / "frames")
        if source is None:
            raise InputError(f"which video? {out_dir / 'frames'} records none that is still "
                             "there unchanged (source.json): give it with --source VIDEO")
    source = Path(source)
    if not source.is_file():
        raise NotFoundError(f"source video {source} not found (or not a file): give the "
                            "video the frames were cut from (--source VIDEO)")
    return source


def check_output(out, source) -> Path:
    """``out`` as a Path; InputError when it is the source video itself."""
    out, source = Path(out), Path(source)
    if out.exists() and source.exists() and out.resolve() == source.resolve():
        raise InputError(f"{out} is the source video: write the annotated video elsewhere")
    return out


def annotate_report(out_dir, out, source=None) -> AnnotatedVideo:
    """:func:`annotate_video` of ``out_dir``'s ``predictions.jsonl``; ``source`` defaults
    to the video ``out_dir/frames`` records (:func:`source_video`)."""
    return annotate_video(read_report(out_dir), source_video(out_dir, source), out)
