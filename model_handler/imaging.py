"""Encoded image bytes -> the model's input pixels, and batch normalisation."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, UnidentifiedImageError

from .config import ModelConfig
from .errors import ImageError

# What Pillow raises for bytes that are not a (complete) image.
_PIL_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError,
               IndexError, TypeError)


def _to_8bit(img: Image.Image) -> Image.Image:
    """16-bit grayscale ("I;16*", or "I" as Pillow opens some 16-bit files) scaled to "L".

    Pillow's own ``convert("L")`` clips such pixels at 255 instead of scaling them, which
    turns a 16-bit image almost entirely white.
    """
    if not (img.mode.startswith("I;16") or img.mode == "I"):
        return img
    wide = np.asarray(img).astype(np.float64)
    return Image.fromarray(np.rint(np.clip(wide, 0, 65535) / 257.0).astype(np.uint8), "L")


def decode_image(data: bytes, cfg: ModelConfig) -> np.ndarray:
    """Decode ``data`` to uint8 pixels (C, H, W) of the model's colour mode and size."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            if width * height > cfg.max_image_pixels:
                raise ImageError("image_too_large", f"image is {width}x{height} = "
                                 f"{width * height} pixels, over the limit of "
                                 f"{cfg.max_image_pixels}; resize it before sending")
            # JPEG: decode straight at a reduced scale and in the target mode (DCT scaling).
            img.draft(cfg.color_mode, (cfg.width, cfg.height))
            converted = _to_8bit(img).convert(cfg.color_mode)
            if converted.size != (cfg.width, cfg.height):
                converted = converted.resize((cfg.width, cfg.height), Image.BILINEAR)
            pixels = np.asarray(converted, dtype=np.uint8)
    except UnidentifiedImageError as exc:
        raise ImageError("invalid_image", "cannot identify image file: the bytes are not an "
                         "image format Pillow reads (JPEG, PNG, BMP, GIF, TIFF, WebP, ...)"
                         ) from exc
    except Image.DecompressionBombError as exc:
        raise ImageError("image_too_large", f"{exc}; resize it before sending") from exc
    except _PIL_ERRORS as exc:
        raise ImageError("invalid_image", f"cannot decode image: {exc}") from exc
    if pixels.ndim == 2:
        return pixels[None]
    return pixels.transpose(2, 0, 1)


def normalise(batch: np.ndarray, rows: np.ndarray, cfg: ModelConfig) -> None:
    """In place: ``(pixel * scale - mean) / std`` on the pixel ``rows`` of ``batch``."""
    if not len(rows):
        return
    mean = np.asarray(cfg.mean, dtype=np.float32).reshape(-1, 1, 1)
    std = np.asarray(cfg.std, dtype=np.float32).reshape(-1, 1, 1)
    if cfg.scale == 1.0 and not mean.any() and (std == 1.0).all():
        return
    selected = batch[rows]
    selected *= np.float32(cfg.scale)
    selected -= mean
    selected /= std
    batch[rows] = selected
