"""``frames/source.json``: which video a frames folder was cut from, how, and whether the
video ended before its header said.

``extract`` writes it when it starts cutting (``complete`` false) and again at the end
(``complete`` true, with the decoded ``duration``); ``run`` compares it with the video
and options it is given, so an ``--out`` reused for another video (or another ``--fps``,
``--faces``, detector) is never answered from the old video's frames and results. The
record is its own file, not part of the manifest's lines.

A video is recognised by its size and the SHA-256 of its first and last MiB (reading
a whole multi-GB video to compare it would cost more than cutting it); the path is kept
for messages only, so a moved video still resumes.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

SOURCE_NAME = "source.json"
ENDED_EARLY_SLACK = 0.5
"""Seconds (or 2 % of the declared length, whichever is more) the decoded video may fall
short of its header's duration before it counts as ended early: headers round, and an
audio track may outlast the picture a little."""
_EDGE = 1 << 20
_IGNORED_FACE_OPTIONS = ("workers",)  # how fast, not what: not part of the identity


def fingerprint(video: Path) -> dict:
    """``{"size", "edges_sha256"}`` of ``video``: size and a hash of its first and last MiB."""
    size = video.stat().st_size
    digest = hashlib.sha256()
    with open(video, "rb") as f:
        digest.update(f.read(_EDGE))
        if size > _EDGE:
            f.seek(max(_EDGE, size - _EDGE))
            digest.update(f.read(_EDGE))
    return {"size": size, "edges_sha256": digest.hexdigest()}


def face_settings(faces) -> dict | None:
    """The options that decide which crops a frame gets (None: whole frames)."""
    if faces is None:
        return None
    settings = dataclasses.asdict(faces)
    for name in _IGNORED_FACE_OPTIONS:
        settings.pop(name, None)
    return json.loads(json.dumps(settings))  # as read back: tuples become lists


def wanted(video: Path, fps: float, quality: int, faces) -> dict:
    """The record a folder cut from ``video`` with these options has (without the
    results of cutting: ``duration``, ``complete``)."""
    return {"video": str(Path(video).resolve()), **fingerprint(Path(video)),
            "fps": float(fps), "quality": int(quality), "faces": face_settings(faces)}


def read_source(frames_dir: Path | str) -> dict | None:
    """The folder's record; None when there is none (or it is unreadable)."""
    try:
        value = json.loads((Path(frames_dir) / SOURCE_NAME).read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def write_source(frames_dir: Path | str, record: dict) -> Path:
    """Write ``record`` atomically (temp file + rename)."""
    path = Path(frames_dir) / SOURCE_NAME
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path


_IDENTITY = ("size", "edges_sha256", "fps", "quality", "faces")


def differences(record: dict | None, want: dict) -> list[str]:
    """What differs between a folder's ``record`` and the ``want`` ed one, in words;
    ``["no record ..."]`` for a folder without one."""
    if record is None:
        return [f"it has no {SOURCE_NAME} (cut by an older frame-infer), so which video it "
                "holds is unknown"]
    found = []
    if (record.get("size"), record.get("edges_sha256")) != (want["size"],
                                                           want["edges_sha256"]):
        found.append(f"it holds {record.get('video', 'another video')}, not {want['video']}")
    for key in ("fps", "quality"):
        if record.get(key) != want[key]:
            found.append(f"{key} {record.get(key)} there, {want[key]} now")
    if record.get("faces") != want["faces"]:
        before, now = record.get("faces"), want["faces"]
        found.append("faces: " + _faces_words(before) + " there, " + _faces_words(now)
                     + " now" if (before is None) != (now is None) else
                     "face options differ: " + ", ".join(
                         f"{k} {before.get(k)!r} there, {now.get(k)!r} now"
                         for k in sorted(set(before) | set(now))
                         if before.get(k) != now.get(k)))
    return found


def _faces_words(settings: dict | None) -> str:
    return "whole frames" if settings is None else f"faces ({settings.get('detector')})"


def ended_early(declared: float | None, duration: float) -> bool:
    """True when the decoded ``duration`` falls short of the header's ``declared`` one."""
    return bool(declared) and declared - duration > max(ENDED_EARLY_SLACK, 0.02 * declared)


def ended_early_message(record: dict | None) -> str | None:
    """The warning for a folder whose video ended early; None otherwise."""
    if not record or not record.get("ended_early"):
        return None
    return (f"the video ended early: {record.get('video')} says it lasts "
            f"{record['declared_duration']:.2f} s but its pictures stop at "
            f"{record['duration']:.2f} s (truncated or damaged?): the results cover only "
            "that part; re-export or re-copy the video for the rest")
