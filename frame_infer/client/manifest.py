"""The frame manifest: one JSON line per extracted frame, shared by every client step.

``extract`` writes it, ``upload`` adds S3 keys, ``predict`` and ``report`` read it. It is
rewritten atomically (temp file + rename), so an interrupted step never leaves half a
manifest behind.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from ..errors import InputError, NotFoundError

MANIFEST_NAME = "manifest.jsonl"


@dataclass
class Frame:
    index: int
    """0-based position in the sampled sequence; the frame's id on the wire is frame_{index:06d}."""
    timestamp: float
    """Seconds from the start of the video (from the stream's timestamps)."""
    file: str
    """File name relative to the frames folder."""
    size: int
    """Bytes of the encoded frame."""
    sha256: str
    """Hex SHA-256 of the encoded frame."""
    s3_key: str | None = None
    """Key in the bucket after upload (bucket and prefix are in the manifest's folder URI)."""
    extra: dict = field(default_factory=dict)

    @property
    def frame_id(self) -> str:
        return frame_id(self.index)


def frame_id(index: int) -> str:
    return f"frame_{index:06d}"


def manifest_path(folder: Path | str) -> Path:
    return Path(folder) / MANIFEST_NAME


def read_manifest(folder: Path | str) -> list[Frame]:
    path = manifest_path(folder)
    if not path.exists():
        raise NotFoundError(f"{path} not found: run `frame-infer extract VIDEO --out "
                            f"{folder}` first")
    frames = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                frame = Frame(**json.loads(line))
            except (TypeError, ValueError) as exc:
                raise InputError(f"{path}:{number} is not a manifest line ({exc}); "
                                 "re-run extract") from exc
            problem = _check(frame, Path(folder))
            if problem:
                raise InputError(f"{path}:{number}: {problem}; re-run extract (a manifest "
                                 "only names frame files inside its own folder)")
            frames.append(frame)
    frames.sort(key=lambda fr: fr.index)
    return frames


def _check(frame: Frame, folder: Path) -> str | None:
    """Why ``frame`` cannot be used, or None. Its file must lie inside ``folder``: a
    manifest must not make predict send (or upload upload) any other file."""
    if not isinstance(frame.index, int) or isinstance(frame.index, bool) or frame.index < 0:
        return f"index {frame.index!r} is not a whole number >= 0"
    if not isinstance(frame.timestamp, (int, float)) or isinstance(frame.timestamp, bool):
        return f"timestamp {frame.timestamp!r} is not a number"
    name = frame.file
    if not isinstance(name, str) or not name or "\0" in name:
        return f"file {name!r} is not a file name"
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts or "\\" in name:
        return f"file {name!r} points outside the frames folder"
    root = folder.resolve()
    if root not in (root / relative).resolve().parents:
        return f"file {name!r} resolves outside the frames folder"
    return None


def write_manifest(folder: Path | str, frames: list[Frame]) -> Path:
    path = manifest_path(folder)
    tmp = path.with_suffix(".jsonl.tmp")
    with open(tmp, "w") as f:
        for frame in sorted(frames, key=lambda fr: fr.index):
            f.write(json.dumps(asdict(frame), sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path
