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

People (rows with a ``person``, the track id ``tracks`` gave the face): one
:class:`PersonSummary` per person, computed once in :func:`build_report`: first and last
seen, seconds on screen, the dominant label overall and per second (:class:`PersonSecond`,
the means over that person's faces only). With ``smooth`` (seconds), each face's
probabilities are also averaged over the person's faces within ``smooth / 2`` seconds
either side (a window mean), and the dominant labels are read from those; the raw means
are kept beside them.
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
class PersonSecond:
    """One person in one second: their faces with ``second <= timestamp < second + 1``."""
    second: int
    faces: int
    """Rows of this person in the second (one per frame they were found in)."""
    errors: int
    dominant: str | None
    """The label with the highest mean (the smoothed mean with smoothing); None when every
    face of the second failed."""
    mean: dict[str, float | None]
    """The raw mean probabilities over the person's predicted faces of the second."""
    smoothed: dict[str, float | None] | None = None
    """With smoothing: the mean of the window-smoothed probabilities; else None."""

    def as_dict(self) -> dict:
        doc = {"second": self.second, "faces": self.faces, "errors": self.errors,
               "dominant": self.dominant, "mean": _rounded(self.mean)}
        if self.smoothed is not None:
            doc["smoothed"] = _rounded(self.smoothed)
        return doc


@dataclass(frozen=True)
class PersonSummary:
    """One person (one track id) over the whole video."""
    person: int
    first_seen: float
    """Timestamp of the first frame they were found in (seconds)."""
    last_seen: float
    seconds_on_screen: float
    """Frames they were found in times the time between frames."""
    faces: int
    """Their rows (one per frame they were found in), errors included."""
    errors: int
    dominant: str | None
    """The label with the highest mean over all their predicted faces (smoothed with
    smoothing); None when all failed."""
    mean: dict[str, float | None]
    """Raw mean probabilities over all their predicted faces."""
    seconds: tuple[PersonSecond, ...]

    def as_dict(self) -> dict:
        return {"person": self.person, "first_seen": round(self.first_seen, 6),
                "last_seen": round(self.last_seen, 6),
                "seconds_on_screen": round(self.seconds_on_screen, 6), "faces": self.faces,
                "errors": self.errors, "dominant": self.dominant, "mean": _rounded(self.mean),
                "per_second": [s.as_dict() for s in self.seconds]}


def _rounded(mean: dict[str, float | None]) -> dict[str, float | None]:
    return {lb: None if v is None else round(v, 6) for lb, v in mean.items()}


@dataclass(frozen=True)
class Report:
    """Everything a report shows, computed once from the rows (by :func:`build_report`)."""
    predictions: tuple[Prediction, ...]
    """The rows by (index, face)."""
    labels: tuple[str, ...]
    """The labels in the order the service lists them."""
    seconds: tuple[SecondSummary, ...]
    """:func:`per_second` of ``predictions`` with ``labels``."""
    people: tuple[PersonSummary, ...] = ()
    """:func:`per_person` of ``predictions``: one per track id, by id (empty without
    person ids)."""
    smooth: float | None = None
    """The smoothing window (seconds) the people's dominant labels were read with."""

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
        """For the terminal: one block per person when the rows have person ids (their
        per-second dominant labels and means), else the per-second summary."""
        if self.people:
            empty = [s.second for s in self.seconds if s.no_face]
            return format_people(self.people, self.smooth) + (
                f"\n\nno face in {len(empty)} s: seconds {_spans(empty)}" if empty else "")
        return format_per_second(self.seconds)


def build_report(predictions, smooth: float | None = None) -> Report:
    """The :class:`Report` of ``predictions`` (rows sorted as :func:`read_predictions`
    returns them); the only place the per-second and per-person tables are computed.
    ``smooth``: window (seconds) of the per-person smoothing, None for none."""
    if smooth is not None and not (isinstance(smooth, (int, float)) and 0 < smooth < 1e6):
        from ..errors import InputError

        raise InputError(f"smooth must be a number of seconds above 0, got {smooth!r}")
    predictions = tuple(predictions)
    labels = tuple(label_order(predictions))
    return Report(predictions, labels, tuple(per_second(predictions, labels)),
                  tuple(per_person(predictions, labels, smooth)), smooth)


def read_report(out_dir, smooth: float | None = None) -> Report:
    """The :class:`Report` of ``out_dir/predictions.jsonl``."""
    return build_report(read_predictions(out_dir), smooth)


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


def _frame_step(predictions) -> float:
    """The time between two sampled frames: the most common gap between the rows'
    distinct timestamps (1.0 with fewer than two frames)."""
    times = sorted({round(p.timestamp, 6) for p in predictions})
    gaps = Counter(round(b - a, 6) for a, b in zip(times, times[1:]))
    return gaps.most_common(1)[0][0] if gaps else 1.0


def _smoothed(faces: list[Prediction], labels, window: float) -> list[dict[str, float]]:
    """Each predicted face's probabilities averaged over the person's predicted faces
    within ``window / 2`` seconds either side (itself included)."""
    ok = [p for p in faces if p.predicted]
    times = [p.timestamp for p in ok]
    half = window / 2 + 1e-9
    out, lo, hi = [], 0, 0
    for p in ok:  # the rows are in time order: a sliding window
        while times[lo] < p.timestamp - half:
            lo += 1
        while hi < len(ok) and times[hi] <= p.timestamp + half:
            hi += 1
        near = ok[lo:hi]
        out.append({lb: sum(q.probabilities.get(lb, 0.0) for q in near) / len(near)
                    for lb in labels})
    return out


def _mean(rows: list[dict[str, float]], labels) -> dict[str, float | None]:
    return {lb: (sum(r.get(lb, 0.0) for r in rows) / len(rows) if rows else None)
            for lb in labels}


def _dominant(mean: dict[str, float | None], labels) -> str | None:
    return max(labels, key=lambda lb: mean[lb]) if labels and mean and \
        all(mean[lb] is not None for lb in labels) else None


def per_person(predictions, labels=None, smooth: float | None = None) -> list[PersonSummary]:
    """One :class:`PersonSummary` per person id of ``predictions``, by id.

    Per second and overall, the means are over that person's predicted faces; the
    dominant label is the highest mean (of the smoothed probabilities when ``smooth``
    is given; first listed on a tie). Rows without a person are not in any summary."""
    labels = label_order(predictions) if labels is None else list(labels)
    step = _frame_step(predictions)
    by_person: dict[int, list[Prediction]] = {}
    for p in predictions:
        if p.item.person is not None:
            by_person.setdefault(p.item.person, []).append(p)
    people = []
    for person in sorted(by_person):
        faces = sorted(by_person[person], key=lambda p: p.timestamp)
        raw = [p.probabilities for p in faces if p.predicted]
        smoothed = _smoothed(faces, labels, smooth) if smooth else None
        judged = smoothed if smoothed is not None else raw
        groups: dict[int, list[int]] = {}  # second -> positions among the predicted faces
        counts: dict[int, list[Prediction]] = {}
        position = 0
        for p in faces:
            second = math.floor(p.timestamp + 1e-9)
            counts.setdefault(second, []).append(p)
            if p.predicted:
                groups.setdefault(second, []).append(position)
                position += 1
        seconds = []
        for second in sorted(counts):
            at = groups.get(second, [])
            mean = _mean([raw[i] for i in at], labels)
            smooth_mean = _mean([smoothed[i] for i in at], labels) if smoothed else None
            seconds.append(PersonSecond(
                second, len(counts[second]), sum(not p.ok for p in counts[second]),
                _dominant(smooth_mean if smoothed else mean, labels), mean, smooth_mean))
        frames = len({p.index for p in faces})
        people.append(PersonSummary(
            person, faces[0].timestamp, faces[-1].timestamp, frames * step, len(faces),
            sum(not p.ok for p in faces), _dominant(_mean(judged, labels), labels),
            _mean(raw, labels), tuple(seconds)))
    return people


def format_people(people, smooth: float | None = None) -> str:
    """One block per person, for the terminal: a heading line (seen when, for how long,
    dominant overall) and their seconds (faces, errors, dominant, mean per label)."""
    blocks = []
    for person in people:
        labels = list(person.mean)
        dom = max([8] + [len(lb) for lb in labels])
        widths = [max(6, len(lb)) for lb in labels]
        head = (f"person {person.person}: {person.first_seen:.2f}–{person.last_seen:.2f} s, "
                f"{person.seconds_on_screen:.1f} s on screen, {person.faces} faces, "
                f"{person.errors} errors; dominant {person.dominant or '-'}"
                + (f" (smoothed over {smooth:g} s)" if smooth else ""))
        lines = [head, f"  {'second':>6} {'faces':>6} {'errors':>6} {'dominant':<{dom}}"
                 + "".join(f" {lb:>{w}}" for lb, w in zip(labels, widths))]
        for s in person.seconds:
            values = s.smoothed if s.smoothed is not None else s.mean
            lines.append(f"  {s.second:>6} {s.faces:>6} {s.errors:>6} "
                         f"{s.dominant or '-':<{dom}}"
                         + "".join(f" {'-' if values[lb] is None else f'{values[lb]:.3f}':>{w}}"
                                   for lb, w in zip(labels, widths)))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _spans(seconds: list[int]) -> str:
    """``[0, 1, 2, 5]`` as ``0–2, 5``."""
    spans: list[list[int]] = []
    for second in seconds:
        if spans and second == spans[-1][1] + 1:
            spans[-1][1] = second
        else:
            spans.append([second, second])
    return ", ".join(f"{a}–{b}" if b > a else f"{a}" for a, b in spans)
