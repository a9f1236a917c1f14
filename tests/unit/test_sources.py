"""The client's frame reader: shrinking to the model's input keeps what the service sees."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

from frame_infer.client.sources import FrameReader


def test_shrink_applies_the_exif_orientation():
    """A portrait photo stored sideways with EXIF orientation 6 (rotate 90° clockwise to
    view): the PNG sent must be upright, like the service decodes the JPEG itself."""
    pixels = np.zeros((40, 80), dtype=np.uint8)
    pixels[:, :40] = 255  # stored: left half white
    stored = Image.fromarray(pixels, "L")
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    stored.save(buffer, "JPEG", quality=95, exif=exif.tobytes())
    small = Image.open(io.BytesIO(FrameReader(resize_to=(16, 16, "L")).shrink(
        buffer.getvalue())))
    array = np.asarray(small, dtype=float)
    # Rotated 90° clockwise, the stored left half becomes the top half.
    assert array[:8].mean() > 200 and array[8:].mean() < 50
