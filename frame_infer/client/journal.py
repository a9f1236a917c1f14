"""Results as they arrive, appended to a journal; the final file in frame order.

The journal (``predictions.journal.jsonl``) is appended and flushed after every
response, so an interrupt or a crash loses at most the requests in flight. A rerun
reads it and predicts only frames without a final result. Final means the service
answered for that image: a prediction, or a per-image error such as ``invalid_image``
(``model_handler.wire.IMAGE_ERROR_CODES``). Whatever failed the whole request (404, 5xx,
a timeout, ``request_failed``, a frame the client could not send) is sent again; with
``retry_errors`` the per-image errors are too.

Rows are keyed by :attr:`~frame_infer.client.items.Item.key`: ``(index, face)``, face
None for a whole frame and for a faceless frame. A journal opened for a job (``faces``
True or False) keeps only the rows of that mode: a whole-frame row never answers for a
faceless frame of a job with faces, nor the other way round. Methods that take a key
also take a bare frame index, meaning ``(index, None)``.
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from model_handler.wire import IMAGE_ERROR_CODES

from ..errors import InputError
from .items import row_faces

JOURNAL_NAME = "predictions.journal.jsonl"
PREDICTIONS_NAME = "predictions.jsonl"


def row_key(row: dict) -> tuple[int, int | None]:
    """``(index, face)`` of a result row: face is a number, or None (a whole frame, or a
    frame without a face)."""
    face = row.get("face")
    return int(row["index"]), None if face is None else int(face)


def _key(key) -> tuple:
    return key if isinstance(key, tuple) else (int(key), None)


def _order(key: tuple) -> tuple[int, int]:
    return key[0], -1 if key[1] is None else key[1]


def is_final(row: dict) -> bool:
    """A prediction, or an error the service gave this one image."""
    error = row.get("error")
    return error is None or (isinstance(error, dict) and error.get("code") in IMAGE_ERROR_CODES)


class Journal:
    """``out_dir``'s journal. ``faces``: the job's mode (rows of the other mode, from an
    earlier run of another kind into the same folder, are not this job's); None keeps
    every row (to count them)."""

    def __init__(self, out_dir: Path | str, faces: bool | None = None):
        self.out_dir = Path(out_dir)
        self.faces = faces
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.out_dir / JOURNAL_NAME
        self._lock = threading.Lock()
        self.rows: dict[tuple, dict] = self._load()

    def _load(self) -> dict[tuple, dict]:
        rows: dict[tuple, dict] = {}
        if not self.path.exists():
            return rows
        with open(self.path) as f:
            for line in f:
                try:
                    row = json.loads(line)
                    key = row_key(row)
                except (ValueError, KeyError, TypeError, AttributeError):
                    continue  # a line cut short by a crash
                if self.faces is not None and row_faces(row) != self.faces:
                    continue  # another kind of job wrote it into this folder
                # A final result is never replaced by a later non-final one.
                if key not in rows or not is_final(rows[key]) or is_final(row):
                    rows[key] = row
        return rows

    def row(self, key) -> dict | None:
        """The row of ``key`` (or of a frame index's whole-frame row), if any."""
        return self.rows.get(_key(key))

    def done(self, key, retry_errors: bool = False) -> bool:
        """True when ``key`` needs no sending: it has a final row (with
        ``retry_errors``, only a prediction counts)."""
        row = self.rows.get(_key(key))
        if row is None:
            return False
        return "error" not in row if retry_errors else is_final(row)

    def check_file(self, key, file: str | None, frame_id: str) -> None:
        """Refuse to resume when frame ``key`` now names another image ``file`` (images
        added to or removed from a folder without a manifest): its old row would be
        given to the wrong image."""
        old = (self.row(key) or {}).get("file")
        if file is not None and old is not None and old != file:
            raise InputError(f"the frames changed since the last run into {self.out_dir}: "
                             f"{frame_id} was {old}, it is now {file}; predict into a new "
                             "--out folder (or put the images back as they were)")

    def record(self, rows: list[dict]) -> None:
        lines = "".join(json.dumps(row) + "\n" for row in rows)
        with self._lock:
            with open(self.path, "a") as f:
                f.write(lines)
                f.flush()
                os.fsync(f.fileno())
            for row in rows:
                self.rows[row_key(row)] = row

    def write_ordered(self, keys: list) -> Path:
        """``predictions.jsonl``: exactly one row per key, in frame (then face) order."""
        path = self.out_dir / PREDICTIONS_NAME
        tmp = path.with_suffix(".jsonl.tmp")
        with open(tmp, "w") as f:
            for key in sorted((_key(k) for k in keys), key=_order):
                f.write(json.dumps(self.rows[key]) + "\n")
        os.replace(tmp, path)
        return path
