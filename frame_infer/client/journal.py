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

import errno
import json
import os
import threading
from pathlib import Path

from model_handler.wire import IMAGE_ERROR_CODES

from ..errors import ExitCode, FrameInferError, InputError
from .items import row_faces

JOURNAL_NAME = "predictions.journal.jsonl"
PREDICTIONS_NAME = "predictions.jsonl"
DISK_FULL = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})
"""Errors that mean "no room for this file": the disk, a quota or a file-size limit."""


class DiskFullError(FrameInferError, OSError):
    """A result file could not be written for lack of room; what was written before is
    kept (a torn last journal line is skipped on the rerun) and the rerun resumes."""

    exit_code = ExitCode.ENVIRONMENT


def disk_full(exc: OSError, path: Path | str) -> DiskFullError:
    """The :class:`DiskFullError` for ``exc`` (one of :data:`DISK_FULL`) writing ``path``."""
    why = {errno.EFBIG: "the file-size limit was reached",
           errno.EDQUOT: "the disk quota is used up"}.get(exc.errno, "no space left on the device")
    error = DiskFullError(f"cannot write {path}: {why} ({errno.errorcode[exc.errno]}); "
                          "free some space (or give another --out), then rerun the same "
                          "command: it resumes from what was saved")
    return error  # errno unset on purpose: OSError would print "[Errno 28] None: ..."


def _ends_torn(path: Path) -> bool:
    """True when ``path`` is not empty and does not end with a newline."""
    with open(path, "rb") as f:
        if f.seek(0, os.SEEK_END) == 0:
            return False
        f.seek(-1, os.SEEK_END)
        return f.read(1) != b"\n"


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
        self._torn = False
        self.rows: dict[tuple, dict] = self._load()

    def _load(self) -> dict[tuple, dict]:
        rows: dict[tuple, dict] = {}
        if not self.path.exists():
            return rows
        # A write cut short (a crash, a full disk) leaves a torn last line: it is skipped
        # below, and the next row starts on a line of its own.
        self._torn = _ends_torn(self.path)
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
            if self._torn:
                lines = "\n" + lines
            try:
                with open(self.path, "a") as f:
                    f.write(lines)
                    f.flush()
                    os.fsync(f.fileno())
            except OSError as exc:
                self._torn = True  # part of it may be on disk
                if exc.errno in DISK_FULL:
                    raise disk_full(exc, self.path) from None
                raise
            self._torn = False
            for row in rows:
                self.rows[row_key(row)] = row

    def write_ordered(self, keys: list) -> Path:
        """``predictions.jsonl``: exactly one row per key, in frame (then face) order."""
        path = self.out_dir / PREDICTIONS_NAME
        tmp = path.with_suffix(".jsonl.tmp")
        try:
            with open(tmp, "w") as f:
                for key in sorted((_key(k) for k in keys), key=_order):
                    f.write(json.dumps(self.rows[key]) + "\n")
        except OSError as exc:
            tmp.unlink(missing_ok=True)  # the old predictions.jsonl, if any, stays whole
            if exc.errno in DISK_FULL:
                raise disk_full(exc, path) from None
            raise
        os.replace(tmp, path)
        return path
