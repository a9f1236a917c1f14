"""The report as a value: the rows of ``predictions.jsonl`` and their per-second summary.

:func:`read_report` (or :func:`build_report` for rows already in memory) computes the
per-second table once and returns a frozen :class:`Report`; ``report.write_report``,
``timeline.plot_timeline`` and the command line's table only read it. This module
imports nothing from ``report`` or ``timeline``: they depend on it, not the other way.

Every frame of ``predictions.jsonl`` is a row, error frames included: a report that
silently drops the frames the service could not read would overstate how much of the
video was seen. Per-second means are over the frames of that second that got a
prediction; the second's ``errors`` says how many did not.

Face mode (rows with a ``face`` field, from ``--faces``): one row per face, and one
``"face": null`` row per frame without a face. Per second, the means are over every face
predicted in that second, ``faces`` counts them, and a second without any face reads
``no face`` as its dominant label.
"""
from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import NotFoundError, ReportError
from .journal import PREDICTIONS_NAME
from .items import Item, Kind

NO_FACE = "no face"
"""The dominant label of a second in which no face was found (face mode)."""


@dataclass(frozen=True)
class Prediction:
    """One line of predictions.jsonl: the item it answers (``Item.from_row``) and a
    prediction or an error, never both."""
    item: Item
    label: str | None = None
    score: float | None = None
    probabilities: dict[str, float] = field(default_factory=dict)
    error_code: str | None = None
    error_message: str | None = None

    @property
    def index(self) -> int:
        return self.item.index

    @property
    def timestamp(self) -> float:
        return self.item.timestamp

    @property
    def frame_id(self) -> str:
        return self.item.id

    @property
    def faces_mode(self) -> bool:
        """True for a row of a job with faces (a face, or a frame without one)."""
        return self.item.kind is not Kind.FRAME

    @property
    def face(self) -> int | None:
        """With faces: the face's number in its frame; None for a frame without a face."""
        return self.item.face

    @property
    def box(self) -> tuple[int, int, int, int] | None:
        """With faces: (x, y, w, h) of the face in the frame's pixels."""
        return self.item.box

    @property
    def file(self) -> str | None:
        """The image's file name, for frames read from a folder or prefix without a
        manifest."""
        return self.item.file

    @property
    def ok(self) -> bool:
        return self.error_code is None

    @property
    def no_face(self) -> bool:
        """A row saying that its frame has no face (no label, no error)."""
        return self.item.kind is Kind.NO_FACE and self.ok

    @property
    def predicted(self) -> bool:
        """A row with a label and probabilities."""
        return self.ok and not self.no_face


@dataclass(frozen=True)
class SecondSummary:
    """Frames with ``second <= timestamp < second + 1``; ``mean`` is None-valued if all failed."""
    second: int
    frames: int
    errors: int
    dominant: str | None
    mean: dict[str, float | None]
    faces: int | None = None
    """Face mode: the faces found in the second's frames (None for whole frames)."""

    @property
    def no_face(self) -> bool:
        return self.faces == 0

    def as_dict(self) -> dict:
        """JSON-ready, the means rounded as in ``summary_per_second.csv``."""
        return {"second": self.second, "frames": self.frames, "faces": self.faces,
                "errors": self.errors, "dominant": self.dominant,
                "mean": {lb: None if v is None else round(v, 6) for lb, v in self.mean.items()}}


@dataclass(frozen=True)
class Report:
    """Everything a report shows, computed once from the rows (by :func:`build_report`)."""
    predictions: tuple[Prediction, ...]
    """The rows by (index, face)."""
    labels: tuple[str, ...]
    """The labels in the order the service lists them."""
    seconds: tuple[SecondSummary, ...]
    """:func:`per_second` of ``predictions`` with ``labels``."""

    @property
    def faces_mode(self) -> bool:
        return any(p.faces_mode for p in self.predictions)

    @property
    def frames(self) -> int:
        """Frames, not rows: in face mode a frame has one row per face."""
        return len({p.index for p in self.predictions})

    @property
    def faces(self) -> int:
        return sum(p.face is not None for p in self.predictions)

    @property
    def errors(self) -> int:
        return sum(not p.ok for p in self.predictions)

    def table(self) -> str:
        """The per-second summary as a fixed-width text table, for the terminal."""
        return format_per_second(self.seconds)


def build_report(predictions) -> Report:
    """The :class:`Report` of ``predictions`` (rows sorted as :func:`read_predictions`
    returns them); the only place the per-second table is computed."""
    predictions = tuple(predictions)
    labels = tuple(label_order(predictions))
    return Report(predictions, labels, tuple(per_second(predictions, labels)))


def read_report(out_dir) -> Report:
    """The :class:`Report` of ``out_dir/predictions.jsonl``."""
    return build_report(read_predictions(out_dir))


def _parse(row: dict) -> Prediction:
    item = Item.from_row(row)
    if item.kind is Kind.NO_FACE and "error" not in row:
        return Prediction(item)
    if "error" in row:
        error = row["error"]
        if not isinstance(error, dict):  # tolerate a bare message rather than lose the row
            error = {"code": "error", "message": str(error)}
        return Prediction(item, error_code=str(error.get("code") or "error"),
                          error_message=str(error.get("message") or ""))
    probabilities = {str(k): float(v) for k, v in row["probabilities"].items()}
    label = row.get("label") or max(probabilities, key=probabilities.get)
    score = float(row["score"]) if row.get("score") is not None else probabilities[label]
    return Prediction(item, label=label, score=score, probabilities=probabilities)


def read_predictions(out_dir) -> list[Prediction]:
    """The rows of ``out_dir/predictions.jsonl`` by index; a clear error if it is missing."""
    path = Path(out_dir) / PREDICTIONS_NAME
    if not path.is_file():
        raise NotFoundError(f"{path} not found: run `frame-infer predict FRAMES --endpoint "
                            f"URL --out {out_dir}` first; it writes predictions.jsonl once "
                            "every frame has a result (rerun it to finish a partial run)")
    rows = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append(_parse(json.loads(line)))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise ReportError(f"{path}:{number} is not a prediction line ({exc!r}); "
                                  "re-run `frame-infer predict`") from None
    rows.sort(key=lambda p: (p.index, -1 if p.face is None else p.face))
    duplicates = [key for key, n in Counter((p.index, p.face) for p in rows).items() if n > 1]
    if duplicates:
        index, face = duplicates[0]
        what = f"frame index {index}" + ("" if face is None else f" face {face}")
        raise ReportError(f"{path} has {what} more than once; "
                          "re-run `frame-infer predict` into a clean folder")
    return rows


def label_order(predictions) -> list[str]:
    """Labels in the order the service lists them (first appearance)."""
    return list(dict.fromkeys(k for p in predictions for k in p.probabilities))


def per_second(predictions, labels=None) -> list[SecondSummary]:
    """Group frames by whole second; mean probabilities over the predicted ones.

    ``dominant`` is the label with the highest mean probability (first listed on a
    tie), or None when every frame of the second is an error. In face mode the means are
    over the second's faces, ``frames`` counts frames (not rows) and ``faces`` faces.
    """
    labels = label_order(predictions) if labels is None else labels
    groups: dict[int, list[Prediction]] = {}
    for p in predictions:
        # The epsilon keeps 30/30 from landing in second 0 after a float round trip.
        groups.setdefault(math.floor(p.timestamp + 1e-9), []).append(p)
    seconds = []
    for second in sorted(groups):
        group = groups[second]
        ok = [p for p in group if p.predicted]
        mean = {lb: (sum(p.probabilities.get(lb, 0.0) for p in ok) / len(ok) if ok else None)
                for lb in labels}
        dominant = max(labels, key=lambda lb: mean[lb]) if ok and labels else None
        errors = sum(not p.ok for p in group)
        if any(p.faces_mode for p in group):
            faces = sum(p.face is not None for p in group)
            seconds.append(SecondSummary(second, len({p.index for p in group}), errors,
                                         NO_FACE if faces == 0 else dominant, mean, faces))
        else:
            seconds.append(SecondSummary(second, len(group), errors, dominant, mean))
    return seconds


def format_per_second(seconds) -> str:
    """The per-second summary as a fixed-width text table, for the terminal."""
    labels = list(seconds[0].mean) if seconds else []
    dom = max([8] + [len(lb) for lb in labels])
    widths = [max(6, len(lb)) for lb in labels]
    faces = any(s.faces is not None for s in seconds)
    count = f" {'faces':>6}" if faces else ""
    head = f"{'second':>6} {'frames':>6}{count} {'errors':>6} {'dominant':<{dom}}"
    lines = [head + "".join(f" {lb:>{w}}" for lb, w in zip(labels, widths))]
    for s in seconds:
        count = f" {s.faces:>6}" if faces else ""
        line = f"{s.second:>6} {s.frames:>6}{count} {s.errors:>6} {s.dominant or '-':<{dom}}"
        lines.append(line + "".join(f" {'-' if s.mean[lb] is None else f'{s.mean[lb]:.3f}':>{w}}"
                                    for lb, w in zip(labels, widths)))
    return "\n".join(lines)
