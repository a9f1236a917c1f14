"""Results as they arrive, appended to a journal; the final file in frame order.

The journal (``predictions.journal.jsonl``) is appended and flushed after every
response, so an interrupt or a crash loses at most the requests in flight. A rerun
reads it and predicts only frames without a final result. Final means the service
answered for that image: a prediction, or a per-image error such as ``invalid_image``
(``model_handler.wire.IMAGE_ERROR_CODES``). Whatever failed the whole request (404, 5xx,
a timeout, ``request_failed``, a frame the client could not send) is sent again; with
``retry_errors`` the per-image errors are too.
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from model_handler.wire import IMAGE_ERROR_CODES

JOURNAL_NAME = "predictions.journal.jsonl"
PREDICTIONS_NAME = "predictions.jsonl"


def is_final(row: dict) -> bool:
    """A prediction, or an error the service gave this one image."""
    error = row.get("error")
    return error is None or (isinstance(error, dict) and error.get("code") in IMAGE_ERROR_CODES)


class Journal:
    def __init__(self, out_dir: Path | str):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.out_dir / JOURNAL_NAME
        self._lock = threading.Lock()
        self.rows: dict[int, dict] = self._load()

    def _load(self) -> dict[int, dict]:
        rows: dict[int, dict] = {}
        if not self.path.exists():
            return rows
        with open(self.path) as f:
            for line in f:
                try:
                    row = json.loads(line)
                    index = int(row["index"])
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by a crash
                # A final result is never replaced by a later non-final one.
                if index not in rows or not is_final(rows[index]) or is_final(row):
                    rows[index] = row
        return rows

    def done(self, index: int, retry_errors: bool = False) -> bool:
        """True when ``index`` needs no sending: it has a final row (with
        ``retry_errors``, only a prediction counts)."""
        row = self.rows.get(index)
        if row is None:
            return False
        return "error" not in row if retry_errors else is_final(row)

    def record(self, rows: list[dict]) -> None:
        lines = "".join(json.dumps(row) + "\n" for row in rows)
        with self._lock:
            with open(self.path, "a") as f:
                f.write(lines)
                f.flush()
                os.fsync(f.fileno())
            for row in rows:
                self.rows[row["index"]] = row

    def write_ordered(self, indices: list[int]) -> Path:
        """``predictions.jsonl``: exactly one row per frame, in frame order."""
        path = self.out_dir / PREDICTIONS_NAME
        tmp = path.with_suffix(".jsonl.tmp")
        with open(tmp, "w") as f:
            for index in sorted(indices):
                f.write(json.dumps(self.rows[index]) + "\n")
        os.replace(tmp, path)
        return path
