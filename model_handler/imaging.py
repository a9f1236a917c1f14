"""Encoded image bytes -> the model's input pixels, and batch normalisation.

Decoding has two steps, so that a request's decoding cost is known before any pixel is
decoded: :func:`open_image` reads only the header (size limit, JPEG draft scale) and says
how many pixels decoding will produce; :func:`finish_image` decodes, shrinks by an integer
factor to near the model size *before* any colour or bit-depth conversion, applies the
EXIF orientation and resizes. A request spends its decoded pixels from one
:class:`PixelBudget` (``max_request_pixels``).

Memory: one image being decoded holds its decoded pixels at full size once (Pillow keeps
RGB, RGBA, CMYK and 32-bit modes at 4 bytes a pixel, 16-bit at 2; a palette image converted
to RGB holds 1 + 4) plus small copies near the model size, so the decode pool
(``min(4, cores)`` threads, one image each) holds at most ``threads x max_image_pixels x 5``
bytes: 400 MB with the default limit on 2 cores.
"""
from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import ImageError

if TYPE_CHECKING:  # config imports onnx; a client shrinking frames has no need of it
    from .config import ModelConfig

# What Pillow raises for bytes that are not a (complete) image, or a decompression bomb.
_PIL_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError,
               IndexError, TypeError, Image.DecompressionBombError)
# What reading a malformed EXIF block raises; the orientation is then ignored.
_EXIF_ERRORS = (SyntaxError, ValueError, OSError, EOFError, IndexError, KeyError, TypeError,
                struct.error, UnicodeDecodeError)

ORIENTATION_TAG = 0x0112
# EXIF orientation -> the transposition that shows the picture upright (as ImageOps does).
_UPRIGHT = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
            4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
            6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
            8: Image.Transpose.ROTATE_90}
_SWAPS_SIDES = {5, 6, 7, 8}

REDUCING_GAP = 2
"""Integer box reduction stops while the image is still at least this many times the model
size; the bilinear resize does the rest (Pillow's ``reducing_gap``: indistinguishable from
resizing the full image, at a fraction of the time and memory)."""
# Modes whose pixel values are not intensities (palette indices, bilevel): converted to the
# model's mode before reducing, since averaging indices means nothing.
_CONVERT_FIRST = {"1", "P", "PA"}


@dataclass(frozen=True)
class ImageInput:
    """What decoding needs to know of a model: its input size and colour mode, and the
    largest image it decodes. A :class:`~model_handler.config.ModelConfig` has the same
    fields; a client that shrinks images exactly as the service would builds this one from
    an answer's ``model.input`` (docs/API.md)."""

    width: int
    height: int
    color_mode: str = "L"
    max_image_pixels: int = 40_000_000


Target = Union["ModelConfig", ImageInput]
"""Anything with ``width``, ``height``, ``color_mode`` and ``max_image_pixels``."""


@dataclass
class OpenedImage:
    """An image whose header is read and whose decoding cost is known; nothing decoded."""

    image: Image.Image
    pixels: int
    """Pixels decoding will produce: width x height, after the JPEG draft scale."""

    def close(self) -> None:
        self.image.close()


class PixelBudget:
    """The decoded pixels one request may still spend (``max_request_pixels``).

    Spent in the request's order: an image that does not fit is refused and later, smaller
    ones may still fit, so the same request always gets the same answer.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self.left = limit

    def spend(self, opened: OpenedImage) -> None:
        if opened.pixels > self.left:
            raise ImageError("image_too_large", f"decoding this image needs {opened.pixels} "
                             f"pixels but only {self.left} are left of the request's budget "
                             f"of {self.limit} decoded pixels (max_request_pixels); send fewer "
                             "or smaller images per request")
        self.left -= opened.pixels


def _invalid(exc: Exception) -> ImageError:
    if isinstance(exc, UnidentifiedImageError):
        return ImageError("invalid_image", "cannot identify image file: the bytes are not an "
                          "image format Pillow reads (JPEG, PNG, BMP, GIF, TIFF, WebP, ...)")
    if isinstance(exc, Image.DecompressionBombError):
        return ImageError("image_too_large", f"{exc}; resize it before sending")
    return ImageError("invalid_image", f"cannot decode image: {exc}")


def open_image(data: bytes, cfg: Target, budget: PixelBudget | None = None
               ) -> OpenedImage:
    """Read the header of ``data``: refuse it over ``max_image_pixels``, set the JPEG draft,
    and spend its decoded pixels from ``budget`` (the request's) when given.

    Raises ``ImageError``; the caller passes the result to :func:`finish_image`.
    """
    try:
        img = Image.open(io.BytesIO(data))
    except _PIL_ERRORS as exc:
        raise _invalid(exc) from exc
    width, height = img.size
    if width * height > cfg.max_image_pixels:
        img.close()
        raise ImageError("image_too_large", f"image is {width}x{height} = {width * height} "
                         f"pixels, over the limit of {cfg.max_image_pixels}; resize it before "
                         "sending")
    try:
        # JPEG: decode straight at a reduced scale (DCT scaling) and in the target mode. The
        # EXIF orientation is not known yet (reading it may decode a PNG), so the draft keeps
        # both sides at least the model's larger side.
        side = max(cfg.width, cfg.height)
        img.draft(cfg.color_mode, (side, side))
    except _PIL_ERRORS as exc:
        img.close()
        raise _invalid(exc) from exc
    opened = OpenedImage(img, img.size[0] * img.size[1])
    if budget is not None:
        try:
            budget.spend(opened)
        except ImageError:
            opened.close()
            raise
    return opened


def _orientation(img: Image.Image) -> int:
    try:
        value = img.getexif().get(ORIENTATION_TAG, 1)
        return value if value in _UPRIGHT else 1
    except _EXIF_ERRORS:
        return 1  # a broken EXIF block does not make the picture unreadable


def _reduce(img: Image.Image, width: int, height: int) -> Image.Image:
    """Box-average by the largest integer factor that keeps the image at least
    ``REDUCING_GAP`` times ``width`` x ``height``; unchanged when that factor is below 2."""
    factor = min(img.width // (width * REDUCING_GAP), img.height // (height * REDUCING_GAP))
    if factor < 2:
        return img
    # resize(BOX) rather than reduce(): it also takes 16-bit modes ("I;16") as they are.
    return img.resize((img.width // factor, img.height // factor), Image.BOX)


def _to_8bit(img: Image.Image) -> Image.Image:
    """16-bit grayscale ("I;16*", or "I" as Pillow opens some 16-bit files) scaled to "L".

    Pillow's own ``convert("L")`` clips such pixels at 255 instead of scaling them, which
    turns a 16-bit image almost entirely white. Called after reducing: the float copy is
    the size of the reduced image, not of the file's.
    """
    if not (img.mode.startswith("I;16") or img.mode == "I"):
        return img
    wide = np.asarray(img).astype(np.float64)
    return Image.fromarray(np.rint(np.clip(wide, 0, 65535) / 257.0).astype(np.uint8), "L")


def finish_image(opened: OpenedImage, cfg: Target) -> np.ndarray:
    """Decode an opened image to uint8 pixels (C, H, W) of the model's mode and size, upright.

    Raises ``ImageError``; the image is closed in any case.
    """
    img = opened.image
    try:
        img.load()
        orientation = _orientation(img)  # after load: a PNG's eXIf chunk may follow its pixels
        target = ((cfg.height, cfg.width) if orientation in _SWAPS_SIDES
                  else (cfg.width, cfg.height))
        work = img.convert(cfg.color_mode) if img.mode in _CONVERT_FIRST else img
        work = _to_8bit(_reduce(work, *target)).convert(cfg.color_mode)
        if orientation in _UPRIGHT:
            work = work.transpose(_UPRIGHT[orientation])
        if work.size != (cfg.width, cfg.height):
            work = work.resize((cfg.width, cfg.height), Image.BILINEAR)
        pixels = np.asarray(work, dtype=np.uint8)
    except _PIL_ERRORS as exc:
        raise _invalid(exc) from exc
    finally:
        opened.close()
    if pixels.ndim == 2:
        return pixels[None]
    return pixels.transpose(2, 0, 1)


def decode_image(data: bytes, cfg: Target) -> np.ndarray:
    """Decode ``data`` to uint8 pixels (C, H, W) of the model's colour mode and size."""
    return finish_image(open_image(data, cfg), cfg)


def normalise(batch: np.ndarray, rows: np.ndarray, cfg: "ModelConfig") -> None:
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
