"""``report``: turn ``predictions.jsonl`` into CSVs, a timeline plot and a markdown summary.

Every frame of ``predictions.jsonl`` appears in ``predictions.csv``, error frames
included (their probability cells are empty): a report that silently drops the frames
the service could not read would overstate how much of the video was seen.
Per-second means are over the frames of that second that got a prediction; the second's
``errors`` column says how many did not.

Face mode (rows with a ``face`` field, from ``--faces``): one row per face, and one
``"face": null`` row per frame without a face. ``predictions.csv`` then gains ``face``
and ``box_x, box_y, box_w, box_h`` columns; per second, the means are over every face
predicted in that second, ``faces`` counts them, and a second without any face reads
``no face`` as its dominant label. Whole-frame reports are written as before.
"""
from __future__ import annotations

import csv
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import NotFoundError, ReportError
from ..s3 import S3Location, parse_s3_uri
from .journal import PREDICTIONS_NAME
from .manifest import frame_id
from .timeline import plot_timeline

CONTENT_TYPES = {".csv": "text/csv", ".png": "image/png", ".md": "text/markdown"}
NO_FACE = "no face"
"""The dominant-label cell of a second in which no face was found (face mode)."""


@dataclass
class Prediction:
    """One line of predictions.jsonl: a prediction or an error, never both."""
    index: int
    timestamp: float
    frame_id: str
    label: str | None = None
    score: float | None = None
    probabilities: dict[str, float] = field(default_factory=dict)
    error_code: str | None = None
    error_message: str | None = None
    faces_mode: bool = False
    """True for a row of a face-mode run (it has a ``face`` field)."""
    face: int | None = None
    """Face mode: the face's number in its frame; None for a frame without a face."""
    box: tuple[int, int, int, int] | None = None
    """Face mode: (x, y, w, h) of the face in the frame's pixels."""
    file: str | None = None
    """The image's file name, for frames read from a folder or prefix without a manifest."""

    @property
    def ok(self) -> bool:
        return self.error_code is None

    @property
    def no_face(self) -> bool:
        """A face-mode row saying that its frame has no face (no label, no error)."""
        return self.faces_mode and self.face is None and self.ok

    @property
    def predicted(self) -> bool:
        """A row with a label and probabilities."""
        return self.ok and not self.no_face


@dataclass
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


@dataclass
class ReportPaths:
    predictions_csv: Path
    per_second_csv: Path
    timeline_png: Path
    summary_md: Path
    s3_uris: list[str] = field(default_factory=list)

    def files(self) -> list[Path]:
        return [self.predictions_csv, self.per_second_csv, self.timeline_png, self.summary_md]


def _parse(row: dict) -> Prediction:
    index = int(row["index"])
    base = dict(index=index, timestamp=float(row["timestamp"]),
                frame_id=row.get("id") or frame_id(index), file=row.get("file"))
    if "face" in row:
        face, box = row["face"], row.get("box")
        base.update(faces_mode=True, face=None if face is None else int(face),
                    box=None if box is None else tuple(int(v) for v in box))
        if face is None and "error" not in row:
            return Prediction(**base)
    if "error" in row:
        error = row["error"]
        if not isinstance(error, dict):  # tolerate a bare message rather than lose the row
            error = {"code": "error", "message": str(error)}
        return Prediction(**base, error_code=str(error.get("code") or "error"),
                          error_message=str(error.get("message") or ""))
    probabilities = {str(k): float(v) for k, v in row["probabilities"].items()}
    label = row.get("label") or max(probabilities, key=probabilities.get)
    score = float(row["score"]) if row.get("score") is not None else probabilities[label]
    return Prediction(**base, label=label, score=score, probabilities=probabilities)


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


def label_order(predictions: list[Prediction]) -> list[str]:
    """Labels in the order the service lists them (first appearance)."""
    return list(dict.fromkeys(k for p in predictions for k in p.probabilities))


def per_second(predictions: list[Prediction], labels: list[str] | None = None
               ) -> list[SecondSummary]:
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


def format_per_second(seconds: list[SecondSummary]) -> str:
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


def per_second_table(out_dir) -> str:
    """Read ``out_dir/predictions.jsonl`` and format its per-second summary (for demos)."""
    return format_per_second(per_second(read_predictions(out_dir)))


def _write_csvs(out: Path, preds: list[Prediction], seconds: list[SecondSummary],
                labels: list[str]) -> tuple[Path, Path]:
    frames_csv, seconds_csv = out / "predictions.csv", out / "summary_per_second.csv"
    faces = any(p.faces_mode for p in preds)
    files = any(p.file is not None for p in preds)
    with open(frames_csv, "w", newline="") as f:
        writer = csv.writer(f)
        face_head = ["face", "box_x", "box_y", "box_w", "box_h"] if faces else []
        writer.writerow(["index", "timestamp"] + (["file"] if files else []) + face_head
                        + ["label", "score", "error_code", "error_message"]
                        + [f"p_{lb}" for lb in labels])
        for p in preds:
            face_cells = ([("" if p.face is None else p.face)] + list(p.box or ("",) * 4)
                          if faces else [])
            writer.writerow([p.index, p.timestamp] + ([p.file or ""] if files else [])
                            + face_cells
                            + [p.label or "", "" if p.score is None else p.score,
                               p.error_code or "", p.error_message or ""]
                            + [p.probabilities.get(lb, "") if p.predicted else ""
                               for lb in labels])
    with open(seconds_csv, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["second", "frames"] + (["faces"] if faces else [])
                        + ["errors", "dominant"] + [f"mean_{lb}" for lb in labels])
        for s in seconds:
            writer.writerow([s.second, s.frames] + ([s.faces] if faces else [])
                            + [s.errors, s.dominant or ""]
                            + ["" if s.mean[lb] is None else round(s.mean[lb], 6)
                               for lb in labels])
    return frames_csv, seconds_csv


def _summary_md(path: Path, preds: list[Prediction], labels: list[str]) -> Path:
    ok = [p for p in preds if p.predicted]
    top = Counter(p.label for p in ok)
    span = f"{preds[0].timestamp:.2f}–{preds[-1].timestamp:.2f} s" if preds else "no frames"
    errors = sum(not p.ok for p in preds)
    if any(p.faces_mode for p in preds):
        frames = len({p.index for p in preds})
        empty = sum(p.no_face for p in preds)
        counts = (f"{frames} frames ({span}): {len(ok) + errors} faces, {len(ok)} "
                  f"predicted, {errors} errors; {empty} frames without a face.")
        unit = "faces"
    else:
        counts = f"{len(preds)} frames ({span}): {len(ok)} predicted, {errors} errors."
        unit = "frames"
    lines = ["# Prediction summary", "", counts, "",
             f"| label | top-1 {unit} | share of predicted {unit} |", "| --- | ---: | ---: |"]
    for lb in labels + sorted(set(top) - set(labels)):
        share = f"{100 * top[lb] / len(ok):.1f}%" if ok else "-"
        lines.append(f"| {lb} | {top[lb]} | {share} |")
    codes = Counter(p.error_code for p in preds if not p.ok)
    lines += ["", f"| error code | {unit} |", "| --- | ---: |"]
    lines += [f"| {code} | {n} |" for code, n in sorted(codes.items())] or ["| (none) | 0 |"]
    path.write_text("\n".join(lines) + "\n")
    return path


def _s3_location(uri: str) -> S3Location:
    try:
        return parse_s3_uri(uri)
    except ValueError as exc:
        raise ReportError(str(exc)) from None


def copy_to_s3(files: list[Path], s3_uri: str, s3_client=None) -> list[str]:
    """Upload ``files`` under ``s3_uri``; boto3's default client honours AWS_ENDPOINT_URL_S3."""
    import boto3
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    location = _s3_location(s3_uri)
    bucket = location.bucket
    if s3_client is None:
        s3_client = boto3.client("s3")
    uris = []
    for path in files:
        key = location.key(path.name)
        # upload_file wraps service errors in boto3's S3UploadFailedError, hence Boto3Error.
        try:
            s3_client.upload_file(str(path), bucket, key, ExtraArgs={
                "ContentType": CONTENT_TYPES.get(path.suffix, "application/octet-stream")})
        except (Boto3Error, BotoCoreError, ClientError) as exc:
            raise ReportError(f"copying {path.name} to s3://{bucket}/{key} failed: {exc}; check "
                              "the bucket exists and your AWS credentials and region") from None
        uris.append(f"s3://{bucket}/{key}")
    return uris


def write_report(out_dir, s3_uri: str | None = None, s3_client=None) -> ReportPaths:
    """Write predictions.csv, summary_per_second.csv, timeline.png, summary.md into out_dir.

    With ``s3_uri`` (``s3://bucket/prefix``) the four files are also copied there.
    """
    out = Path(out_dir)
    if s3_uri:
        _s3_location(s3_uri)  # a typo in the URI should fail before any work
    preds = read_predictions(out)
    labels = label_order(preds)
    frames_csv, seconds_csv = _write_csvs(out, preds, per_second(preds, labels), labels)
    paths = ReportPaths(frames_csv, seconds_csv, plot_timeline(out / "timeline.png", preds, labels),
                        _summary_md(out / "summary.md", preds, labels))
    if s3_uri:
        paths.s3_uris = copy_to_s3([*paths.files(), out / PREDICTIONS_NAME], s3_uri, s3_client)
    return paths
