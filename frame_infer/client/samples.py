"""Synthetic sample videos and frames, for tests, demos and the deployment smoke test.

Each frame shows a moving face-like disc on a gradient and its frame number drawn as a
bit strip that :func:`read_frame_number` reads back, so a test can tell exactly which
source frame an extracted frame came from. Frames need only numpy and Pillow; writing
a video needs PyAV (imported when called).

:func:`make_face_video` builds a video of real faces instead (two public-domain
photographs, :func:`real_face_photos`, slowly panned and zoomed, then a stretch without
a face), whose right answer per second is known: for face detection and emotion models.
:func:`make_two_person_video` puts the same two people side by side, swapping places and
one briefly hidden: for tracking people (``tracks``) and per-person reports.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import InputError, NotFoundError, VideoError

BITS = 12  # frame numbers up to 4095 in the sample videos' strip


def frame_rate(fps) -> Fraction:
    """``fps`` as an exact fraction (29.97 -> 2997/100); InputError unless above 0."""
    if not (math.isfinite(float(fps)) and float(fps) > 0):
        raise InputError(f"fps must be a positive number, got {fps!r}")
    # 29.97 as a float would become a huge binary fraction; this gives 2997/100 back.
    rate = Fraction(fps).limit_denominator(1_000_000)
    if rate == 0:
        raise InputError(f"fps {fps!r} is too small: at most one frame per 10^6 s")
    return rate


def _pick_codec(codec: str | None) -> str:
    import av

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
                 size: tuple[int, int], codec: str | None, draw=None) -> Path:
    """``draw(number)`` gives frame ``number`` as an RGB array; by default the synthetic
    frame with its number drawn."""
    path, codec = Path(path), _pick_codec(codec)
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    if draw is None:
        background = _background(size)
        sprite = _face_sprite(max(16, min(width, height) // 3))

        def draw(number: int) -> np.ndarray:
            return _draw(number, size, background, sprite)
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = time_base
        # Near-lossless, so the bit strip survives encoding; fast, so tests stay quick.
        stream.options = {"crf": "16", "preset": "veryfast"} if "264" in codec else {}
        if codec == "mpeg4":
            stream.bit_rate = 8 * width * height * int(rate)
        for number, time in enumerate(times):
            frame = av.VideoFrame.from_ndarray(draw(number), format="rgb24")
            frame.pts, frame.time_base = int(time / time_base), time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def make_sample_video(path, seconds: float = 20.0, fps=30, size: tuple[int, int] = (640, 480),
                      codec: str | None = None) -> Path:
    """A synthetic constant-rate video: ``round(seconds * fps)`` frames, frame number drawn.

    ``codec`` defaults to libx264, else mpeg4 (whichever this PyAV can encode).
    """
    rate = frame_rate(fps)
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
    return _write_video(path, times, Fraction(1, 1000), frame_rate(nominal_fps), size, codec)


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


ASTRONAUT = "astronaut-face.png"
"""The packaged astronaut crop (``frame_infer/client/data``, public domain, README there)."""


def real_face_photos() -> tuple[Image.Image, Image.Image]:
    """(astronaut, Grace Hopper) as RGB images: two public-domain photographs, the
    packaged astronaut crop (192×192, smiling) and matplotlib's ``grace_hopper.jpg``
    (512×600, neutral)."""
    from importlib.resources import files

    from matplotlib import cbook

    with (files(__package__) / "data" / ASTRONAUT).open("rb") as f:
        astronaut = Image.open(f).convert("RGB")
    try:
        hopper_path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    except (OSError, ValueError) as exc:
        raise NotFoundError(f"matplotlib's sample photo grace_hopper.jpg is missing ({exc}); "
                            "reinstall matplotlib") from None
    with Image.open(hopper_path) as img:
        hopper = img.convert("RGB")
    return astronaut, hopper


def _ken_burns(photo: Image.Image, progress: float, background: Image.Image) -> np.ndarray:
    """``photo`` (RGBA) on ``background`` (RGBA), zoomed from 70% to 90% of the frame's
    height and panned from left of centre to right of centre as ``progress`` goes 0 -> 1."""
    width, height = background.size
    target_h = height * (0.7 + 0.2 * progress)
    scale = photo.height / target_h  # photo pixels per frame pixel
    x0 = width * (0.42 + 0.16 * progress) - photo.width / scale / 2
    y0 = height * (0.5 - 0.03 * progress) - target_h / 2
    # An affine transform places the photo at sub-pixel positions, so the motion is
    # smooth; outside the photo it is transparent and the background shows.
    placed = photo.transform(background.size, Image.AFFINE,
                             (scale, 0, -x0 * scale, 0, scale, -y0 * scale),
                             resample=Image.BILINEAR)
    return np.asarray(Image.alpha_composite(background, placed).convert("RGB"))


def make_face_video(path, photos=None, seconds_each: float = 4.0,
                    no_face_seconds: float = 3.0, fps=30, size: tuple[int, int] = (640, 480),
                    codec: str | None = None) -> Path:
    """A video of real faces: each photo for ``seconds_each`` seconds, slowly zoomed and
    panned, then ``no_face_seconds`` of a plain gradient without a face.

    ``photos`` are PIL images (default :func:`real_face_photos`: the smiling astronaut,
    then Grace Hopper, neutral). With whole-second durations every second shows one
    segment only, so a per-second report can be checked against the schedule.
    """
    photos = list(real_face_photos() if photos is None else photos)
    if not photos or seconds_each <= 0 or no_face_seconds < 0:
        raise InputError("give at least one photo, seconds_each > 0 and no_face_seconds >= 0")
    rate = frame_rate(fps)
    per_photo = round(Fraction(seconds_each).limit_denominator(1000) * rate)
    blank = round(Fraction(no_face_seconds).limit_denominator(1000) * rate)
    # Dark and smooth: nothing a face detector could mistake for a face.
    background = (_background(size).astype(np.float32) * 0.6).astype(np.uint8)
    backdrop = Image.fromarray(background).convert("RGBA")
    rgba = [photo.convert("RGBA") for photo in photos]

    def draw(number: int) -> np.ndarray:
        segment, step = divmod(number, per_photo)
        if segment >= len(rgba):
            return background
        return _ken_burns(rgba[segment], step / max(1, per_photo - 1), backdrop)

    count = per_photo * len(rgba) + blank
    return _write_video(path, [Fraction(i) / rate for i in range(count)], 1 / rate, rate,
                        size, codec, draw)


HOPPER_FACE = (98, 58, 330)
"""(x, y, side) of the square around Grace Hopper's face in matplotlib's 512×600 photo:
the face (BlazeFace box ``(158, 118, 210, 210)``) fills about 64 % of it, as the
astronaut's face fills the packaged 192×192 crop."""


@dataclass(frozen=True)
class TwoPersonSchedule:
    """Where the two people of :func:`make_two_person_video` are, in seconds.

    Astronaut (smiling) starts on the left, Grace Hopper (neutral) on the right; from
    ``swap`` to ``swap + swap_seconds`` they trade places (the astronaut passing above,
    Hopper below, ``apart`` of the frame's free height from each other: 1 keeps both in
    full view, 0 walks them through each other, Hopper in front), then Hopper is hidden
    from ``hide`` to ``hide + hide_seconds`` (her place left empty)."""

    seconds: float = 8.0
    swap: float = 3.0
    swap_seconds: float = 1.0
    hide: float = 5.5
    hide_seconds: float = 0.5
    apart: float = 1.0

    def progress(self, t: float) -> float:
        """0 before the swap, 1 after it, in between during it."""
        return min(1.0, max(0.0, (t - self.swap) / self.swap_seconds))

    def hidden(self, t: float) -> bool:
        """Whether Hopper is hidden at ``t``."""
        return self.hide <= t < self.hide + self.hide_seconds

    def astronaut_left(self, t: float) -> bool:
        """Whether the astronaut is the left one of the two at ``t``."""
        return self.progress(t) < 0.5


def two_person_photos() -> tuple[Image.Image, Image.Image]:
    """(astronaut, Grace Hopper) as square portraits of the same framing."""
    astronaut, hopper = real_face_photos()
    x, y, side = HOPPER_FACE
    return astronaut, hopper.crop((x, y, x + side, y + side))


def make_two_person_video(path, schedule: TwoPersonSchedule = TwoPersonSchedule(), fps=30,
                          size: tuple[int, int] = (640, 480), codec: str | None = None
                          ) -> Path:
    """Two real people side by side (:func:`two_person_photos`) on a dark gradient, who
    swap places and of whom one is briefly hidden, as ``schedule`` says; each bobs a
    little so no two frames are alike. The right answer per person and second is known:
    the astronaut reads happy, Grace Hopper neutral, whichever side they are on."""
    rate = frame_rate(fps)
    width, height = size
    side = round(min(width, height) * 0.42)  # the face is ~60 % of it: ~120 px in 480p
    background = (_background(size).astype(np.float32) * 0.6).astype(np.uint8)
    portraits = [np.asarray(photo.resize((side, side), Image.BILINEAR))
                 for photo in two_person_photos()]
    left, right = width * 0.27, width * 0.73
    lift = ((height - side) / 2 - 4) * schedule.apart  # from the middle as they pass

    def draw(number: int) -> np.ndarray:
        t = float(Fraction(number) / rate)
        p = schedule.progress(t)
        frame = background.copy()
        for who, portrait in enumerate(portraits):  # 0: astronaut, 1: Hopper
            if who == 1 and schedule.hidden(t):
                continue
            start, end = (left, right) if who == 0 else (right, left)
            cx = start + (end - start) * p
            cy = height / 2 + (-1 if who == 0 else 1) * lift * math.sin(math.pi * p) \
                + 6 * math.sin(2 * math.pi * (t / 2.5 + who / 3))
            x0 = min(max(0, round(cx - side / 2)), width - side)
            y0 = min(max(0, round(cy - side / 2)), height - side)
            frame[y0:y0 + side, x0:x0 + side] = portrait
        return frame

    count = round(Fraction(schedule.seconds).limit_denominator(1000) * rate)
    return _write_video(path, [Fraction(i) / rate for i in range(count)], 1 / rate, rate,
                        size, codec, draw)
