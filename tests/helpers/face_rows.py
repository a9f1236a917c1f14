"""Hand-written face rows whose boxes are known: for the annotated video and the DataFrame.

3 s at 10 samples a second: person 1 happy (0–0.9 s), person 2 sad (1–1.9 s, with one
error row at 1.2 s), then frames without a face. Sample ``k``'s box is :func:`box_of`.
"""
from __future__ import annotations

import json
from pathlib import Path

from frame_infer.client.journal import PREDICTIONS_NAME

SAMPLES_PER_SECOND = 10
SIDE, TOP = 80, 70
ERROR_SAMPLE = 12


def box_of(k: int) -> tuple[int, int, int, int]:
    """(x, y, w, h) of sample ``k``'s face: moving 6 px right per sample."""
    return 100 + 6 * k, TOP, SIDE, SIDE


def face_row(k: int, label: str, person: int | None, error: str | None = None) -> dict:
    row = {"index": k, "id": f"frame_{k:06d}_face0", "timestamp": k / SAMPLES_PER_SECOND,
           "face": 0, "box": list(box_of(k))}
    if person is not None:
        row["person"] = person
    if error:
        return {**row, "error": {"code": error, "message": "could not be read"}}
    probabilities = {"happy": 0.1, "sad": 0.1, label: 0.8}
    return {**row, "label": label, "score": 0.8, "probabilities": probabilities}


def face_rows() -> list[dict]:
    """The 30 rows of the module docstring, in frame order."""
    out = [face_row(k, "happy", 1) for k in range(10)]
    out += [face_row(k, "sad", 2, "invalid_image" if k == ERROR_SAMPLE else None)
            for k in range(10, 20)]
    out += [{"index": k, "id": f"frame_{k:06d}", "timestamp": k / SAMPLES_PER_SECOND,
             "face": None, "box": None} for k in range(20, 30)]
    return out


def write_rows(folder: Path, rows: list[dict]) -> Path:
    """``folder/predictions.jsonl`` holding ``rows``; returns ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / PREDICTIONS_NAME).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder
