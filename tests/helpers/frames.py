"""Frames for client tests: real JPEGs plus a manifest, without a video."""
from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
from PIL import Image

from frame_infer.client.manifest import Frame, write_manifest


def jpeg_frame(index: int, size=(320, 240)) -> bytes:
    width, height = size
    xx = np.linspace(0, 1, width)[None, :]
    yy = np.linspace(0, 1, height)[:, None]
    phase = index / 7.0
    gray = 127 + 100 * np.sin(2 * np.pi * (xx * np.cos(phase) + yy * np.sin(phase) + phase))
    buf = io.BytesIO()
    Image.fromarray(gray.astype(np.uint8), "L").convert("RGB").save(buf, "JPEG", quality=85)
    return buf.getvalue()


def write_frames(folder: Path, count: int, fps: float = 30.0, corrupt: tuple[int, ...] = (),
                 size=(320, 240)) -> list[Frame]:
    folder.mkdir(parents=True, exist_ok=True)
    frames = []
    for i in range(count):
        data = b"not a jpeg at all" if i in corrupt else jpeg_frame(i, size)
        name = f"frame_{i:06d}.jpg"
        (folder / name).write_bytes(data)
        frames.append(Frame(index=i, timestamp=i / fps, file=name, size=len(data),
                            sha256=hashlib.sha256(data).hexdigest()))
    write_manifest(folder, frames)
    return frames
