"""``report``: write a :class:`~.records.Report` as CSVs, a timeline plot and a summary.

:func:`write_report` reads ``predictions.jsonl`` once into a ``Report`` (the per-second
table computed once, in ``records``), writes ``predictions.csv``,
``summary_per_second.csv``, ``timeline.png`` and ``summary.md`` from it, optionally
copies them to S3 with the client the caller configured, and returns
:class:`ReportPaths`, which carries the ``Report`` for the caller to print.

``predictions.csv`` has every row, error frames included (their probability cells are
empty). Face mode adds ``face`` and ``box_x, box_y, box_w, box_h`` columns and a
``faces`` column per second; whole-frame reports are written as before.
"""
from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import ReportError
from ..s3 import S3Location
from .journal import PREDICTIONS_NAME
from .records import (NO_FACE, Prediction, Report, SecondSummary, build_report,
                      format_per_second, label_order, per_second, read_predictions,
                      read_report)
from .timeline import plot_timeline

# records' names stay importable from here, where callers have always found them.
__all__ = ["CONTENT_TYPES", "NO_FACE", "Prediction", "Report", "ReportError", "ReportPaths",
           "SecondSummary", "build_report", "copy_to_s3", "format_per_second", "label_order",
           "per_second", "read_predictions", "read_report",
           "write_report"]

CONTENT_TYPES = {".csv": "text/csv", ".png": "image/png", ".md": "text/markdown"}
NO_CLIENT = ("an S3 location was given without an S3 client: pass the client the job "
             "configured (frame_infer.s3.make_client('s3', endpoint_url)), so every S3 call "
             "of the job goes to the same endpoint")


@dataclass(frozen=True)
class ReportPaths:
    """What :func:`write_report` wrote, where it copied it, and the report it wrote."""
    predictions_csv: Path
    per_second_csv: Path
    timeline_png: Path
    summary_md: Path
    report: Report
    """The value the files were written from: print ``report.table()`` from it."""
    s3_uris: list[str] = field(default_factory=list)

    def named_files(self) -> dict[str, Path]:
        """The four files by name (``predictions_csv``, ``per_second_csv``, ...)."""
        return {"predictions_csv": self.predictions_csv, "per_second_csv": self.per_second_csv,
                "timeline_png": self.timeline_png, "summary_md": self.summary_md}

    def files(self) -> list[Path]:
        return list(self.named_files().values())



def _write_csvs(out: Path, report: Report) -> tuple[Path, Path]:
    preds, seconds, labels = report.predictions, report.seconds, report.labels
    frames_csv, seconds_csv = out / "predictions.csv", out / "summary_per_second.csv"
    faces = any(p.faces_mode for p in preds)
    files = any(p.file is not None for p in preds)
    scores = any(p.item.detection_score is not None for p in preds)
    with open(frames_csv, "w", newline="") as f:
        writer = csv.writer(f)
        face_head = (["face", "box_x", "box_y", "box_w", "box_h"]
                     + (["detection_score"] if scores else [])) if faces else []
        writer.writerow(["index", "timestamp"] + (["file"] if files else []) + face_head
                        + ["label", "score", "error_code", "error_message"]
                        + [f"p_{lb}" for lb in labels])
        for p in preds:
            score = p.item.detection_score
            face_cells = ([("" if p.face is None else p.face)] + list(p.box or ("",) * 4)
                          + ([("" if score is None else score)] if scores else [])
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


def _summary_md(path: Path, report: Report) -> Path:
    preds, labels = report.predictions, list(report.labels)
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


def copy_to_s3(files: list[Path], location: S3Location, s3_client) -> list[str]:
    """Upload ``files`` under ``location`` with ``s3_client``; their ``s3://`` URIs.

    No client is made here: the caller's (its endpoint override included) is the one the
    rest of the job used."""
    if s3_client is None:
        raise ReportError(NO_CLIENT)
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    uris = []
    for path in files:
        key = location.key(path.name)
        # upload_file wraps service errors in boto3's S3UploadFailedError, hence Boto3Error.
        try:
            s3_client.upload_file(str(path), location.bucket, key, ExtraArgs={
                "ContentType": CONTENT_TYPES.get(path.suffix, "application/octet-stream")})
        except (Boto3Error, BotoCoreError, ClientError) as exc:
            raise ReportError(f"copying {path.name} to {location.uri(path.name)} failed: "
                              f"{exc}; check the bucket exists and your AWS credentials and "
                              "region") from None
        uris.append(location.uri(path.name))
    return uris


def _check_destination(location, s3_client) -> None:
    """Refuse, before any work, a copy that could not go where the job's S3 calls go."""
    if isinstance(location, str):
        raise TypeError("write_report takes an S3Location (frame_infer.s3.parse_s3_uri), "
                        f"not the string {location!r}")
    if location is not None and s3_client is None:
        raise ReportError(NO_CLIENT)


def write_report(out_dir, location: S3Location | None = None, s3_client=None) -> ReportPaths:
    """Write predictions.csv, summary_per_second.csv, timeline.png, summary.md into out_dir.

    With ``location`` the four files and ``predictions.jsonl`` are also copied there by
    ``s3_client`` (the job's own client, so its endpoint override holds), which is then
    required (:data:`NO_CLIENT` otherwise).
    """
    _check_destination(location, s3_client)
    out = Path(out_dir)
    report = read_report(out)
    frames_csv, seconds_csv = _write_csvs(out, report)
    paths = ReportPaths(frames_csv, seconds_csv, plot_timeline(out / "timeline.png", report),
                        _summary_md(out / "summary.md", report), report)
    if location is not None:
        uris = copy_to_s3([*paths.files(), out / PREDICTIONS_NAME], location, s3_client)
        paths = replace(paths, s3_uris=uris)
    return paths
