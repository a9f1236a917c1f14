"""Reading videos back in tests: their stream's facts, their frames as BGR arrays, and
whether a pixel shows a given colour after lossy coding."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class VideoFacts:
    frames: int
    """Frames decoded (counted, not the container's claim)."""
    seconds: float
    """The container's duration."""
    width: int
    height: int
    fps: float
    """The stream's average frame rate."""


def video_facts(path: Path) -> VideoFacts:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return VideoFacts(frames, container.duration / av.time_base,
                          stream.codec_context.width, stream.codec_context.height,
                          float(stream.average_rate))


def frames_bgr(path: Path, wanted: set[int]) -> dict[int, np.ndarray]:
    """The decoded frames numbered ``wanted`` (0-based, in decode order) as BGR arrays."""
    import av

    found = {}
    with av.open(str(path)) as container:
        for number, frame in enumerate(container.decode(container.streams.video[0])):
            if number in wanted:
                found[number] = frame.to_ndarray(format="bgr24")
            if len(found) == len(wanted):
                break
    return found


def hex_bgr(colour: str) -> np.ndarray:
    value = int(colour.lstrip("#"), 16)
    return np.array([value & 0xFF, value >> 8 & 0xFF, value >> 16], dtype=float)


def distance(pixel, colour: str) -> float:
    """The largest channel difference between a BGR pixel and a hex colour."""
    return float(np.abs(np.asarray(pixel, dtype=float) - hex_bgr(colour)).max())
