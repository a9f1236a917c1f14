"""The frame manifest: one JSON line per extracted frame, shared by every client step.

``extract`` writes it, ``upload`` adds S3 keys, ``predict`` and ``report`` read it. It is
rewritten atomically (temp file + rename), so an interrupted step never leaves half a
manifest behind. A line has ``faces`` only when the frames were extracted with faces
(``extract --faces``); a whole-frame manifest is written exactly as before.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from ..errors import InputError, NotFoundError

MANIFEST_NAME = "manifest.jsonl"
FACES_DIR = "faces"
"""Subfolder of the frames folder holding the face crops."""
FACE_KEYS = ("face", "box", "crop", "file", "size", "sha256")
OPTIONAL_FACE_KEYS = ("s3_key", "score", "person")
"""``s3_key``: written by ``upload``, where the crop is in the bucket; ``score``: the
detector's confidence, when it gives one; ``person``: the face's track id (``tracks``:
the same for one person across frames, from 1)."""


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
    faces: list[dict] | None = None
    """Face mode only: one entry per face found, left to right (``face`` 0, 1, …; ``box``
    [x, y, w, h] in the frame's pixels; ``crop`` [x, y, side], the square cut; ``file``,
    ``size``, ``sha256`` of the crop); ``[]`` for a frame without a face. None: whole
    frames (the key is then absent from the file)."""

    @property
    def frame_id(self) -> str:
        return frame_id(self.index)


def frame_id(index: int) -> str:
    return f"frame_{index:06d}"


def face_file_id(index: int, face: int) -> str:
    """The id of a face crop, on disk and on the wire: ``frame_000012_face0``."""
    return f"{frame_id(index)}_face{face}"


def write_face_crops(out_dir: Path, index: int, crops: list,
                     persons: list[int] | None = None) -> list[dict]:
    """Write frame ``index``'s face crops (``faces.FaceCrop``) under ``out_dir/faces``;
    their manifest entries. ``persons``: each face's track id (``tracks``), or None
    where faces are not tracked (photos)."""
    entries = []
    for number, crop in enumerate(crops):
        name = f"{FACES_DIR}/{face_file_id(index, number)}.jpg"
        (out_dir / name).write_bytes(crop.data)
        entry = {"face": number, "box": list(crop.box), "crop": list(crop.crop),
                 "file": name, "size": len(crop.data),
                 "sha256": hashlib.sha256(crop.data).hexdigest()}
        if crop.score is not None:  # the detector's confidence (BlazeFace gives one)
            entry["score"] = crop.score
        if persons is not None:
            entry["person"] = persons[number]
        entries.append(entry)
    return entries


def manifest_path(folder: Path | str) -> Path:
    return Path(folder) / MANIFEST_NAME


def read_manifest(folder: Path | str) -> list[Frame]:
    path = manifest_path(folder)
    if not path.exists():
        raise NotFoundError(f"{path} not found: run `frame-infer extract VIDEO --out "
                            f"{folder}` first")
    frames = []
    root = Path(folder).resolve()  # once: every frame and face file is checked against it
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                frame = Frame(**json.loads(line))
            except (TypeError, ValueError) as exc:
                raise InputError(f"{path}:{number} is not a manifest line ({exc}); "
                                 "re-run extract") from exc
            problem = _check(frame, root)
            if problem:
                raise InputError(f"{path}:{number}: {problem}; re-run extract (a manifest "
                                 "only names frame files inside its own folder)")
            frames.append(frame)
    frames.sort(key=lambda fr: fr.index)
    return frames


def _check(frame: Frame, root: Path) -> str | None:
    """Why ``frame`` cannot be used, or None. Its files must lie inside ``root`` (the
    resolved frames folder): a manifest must not make predict send (or upload upload)
    any other file."""
    if not isinstance(frame.index, int) or isinstance(frame.index, bool) or frame.index < 0:
        return f"index {frame.index!r} is not a whole number >= 0"
    if not isinstance(frame.timestamp, (int, float)) or isinstance(frame.timestamp, bool):
        return f"timestamp {frame.timestamp!r} is not a number"
    if frame.faces is not None:
        if not isinstance(frame.faces, list):
            return f"faces {frame.faces!r} is not a list"
        for number, entry in enumerate(frame.faces):
            if not isinstance(entry, dict) or entry.get("face") != number or \
                    set(FACE_KEYS) - set(entry) or set(entry) - {*FACE_KEYS, *OPTIONAL_FACE_KEYS}:
                return f"faces[{number}] {entry!r} is not a face entry"
            if not (isinstance(entry["box"], list) and len(entry["box"]) == 4
                    and all(isinstance(v, int) for v in entry["box"])):
                return f"faces[{number}] box {entry['box']!r} is not [x, y, w, h]"
            score = entry.get("score")
            if score is not None and (isinstance(score, bool) or not isinstance(score, float)
                                      or not 0 <= score <= 1):
                return f"faces[{number}] score {score!r} is not a number in 0..1"
            person = entry.get("person")
            if person is not None and (isinstance(person, bool) or not isinstance(person, int)
                                       or person < 1):
                return f"faces[{number}] person {person!r} is not a whole number >= 1"
            problem = _check_file(entry["file"], root)
            if problem:
                return problem
    return _check_file(frame.file, root)


def _check_file(name, root: Path) -> str | None:
    if not isinstance(name, str) or not name or "\0" in name:
        return f"file {name!r} is not a file name"
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts or "\\" in name:
        return f"file {name!r} points outside the frames folder"
    if root not in (root / relative).resolve().parents:
        return f"file {name!r} resolves outside the frames folder"
    return None


def manifest_line(frame: Frame) -> str:
    """One JSON line; ``faces`` only in face mode."""
    entry = asdict(frame)
    if entry["faces"] is None:
        del entry["faces"]
    return json.dumps(entry, sort_keys=True)


def write_manifest(folder: Path | str, frames: list[Frame]) -> Path:
    path = manifest_path(folder)
    tmp = path.with_suffix(".jsonl.tmp")
    with open(tmp, "w") as f:
        for frame in sorted(frames, key=lambda fr: fr.index):
            f.write(manifest_line(frame) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path
