"""Test images: one encoder, and deterministic pictures that give distinct predictions."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image


def encode(img: Image.Image | np.ndarray, fmt: str = "PNG", **kwargs) -> bytes:
    """``img`` (a PIL image or uint8 array) encoded as ``fmt`` (PNG, JPEG, ...)."""
    if isinstance(img, np.ndarray):
        img = Image.fromarray(img)
    buffer = io.BytesIO()
    img.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def jpeg(seed: int, size=(640, 480), mode="RGB") -> bytes:
    """A noisy gradient as JPEG; different seeds give different pictures."""
    rng = np.random.RandomState(seed)
    w, h = size
    base = np.linspace(0, 255, w)[None, :] * rng.uniform(0.2, 1.0) + rng.uniform(0, 80)
    pixels = np.clip(base + rng.normal(0, 20, (h, w)), 0, 255).astype(np.uint8)
    return encode(Image.fromarray(pixels, "L").convert(mode), "JPEG", quality=90)


def png(seed: int, size=(100, 90)) -> bytes:
    """Random RGB pixels as PNG."""
    rng = np.random.RandomState(seed)
    return encode(rng.randint(0, 256, (size[1], size[0], 3), dtype=np.uint8), "PNG")
