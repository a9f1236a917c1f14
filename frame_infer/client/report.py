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

from ..errors import InputError, ReportError
from ..s3 import S3Location, parse_s3_uri
from .journal import PREDICTIONS_NAME
from .records import (NO_FACE, Prediction, Report, SecondSummary, build_report,
                      format_per_second, label_order, per_second, read_predictions,
                      read_report)
from .timeline import plot_timeline

# records' names stay importable from here, where callers have always found them.
__all__ = ["CONTENT_TYPES", "NO_FACE", "Prediction", "Report", "ReportError", "ReportPaths",
           "SecondSummary", "build_report", "copy_to_s3", "format_per_second", "label_order",
           "per_second", "per_second_table", "read_predictions", "read_report",
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


def per_second_table(out_dir) -> str:
    """Read ``out_dir/predictions.jsonl`` and format its per-second summary.

    Kept for ``frame_infer/cli/transform.py``; after :func:`write_report` print
    ``paths.report.table()`` instead of reading the rows again."""
    return read_report(out_dir).table()


def _write_csvs(out: Path, report: Report) -> tuple[Path, Path]:
    preds, seconds, labels = report.predictions, report.seconds, report.labels
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


def _s3_location(uri: str) -> S3Location:
    try:
        return parse_s3_uri(uri)
    except InputError as exc:
        raise ReportError(str(exc)) from None


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


def _destination(location, s3_client, s3_uri):
    """``(location, client)`` to copy to, checked before any work is done."""
    if isinstance(location, str):
        raise TypeError("write_report takes an S3Location (frame_infer.s3.parse_s3_uri), "
                        f"not the string {location!r}")
    if s3_uri is not None:  # the old keyword: parse it, and make the client it always made
        if location is not None:
            raise TypeError("write_report: give location or s3_uri, not both")
        location = _s3_location(s3_uri)
        if s3_client is None:
            from ..s3 import make_client

            s3_client = make_client("s3")
    if location is not None and s3_client is None:
        raise ReportError(NO_CLIENT)
    return location, s3_client


def write_report(out_dir, location: S3Location | None = None, s3_client=None, *,
                 s3_uri: str | None = None) -> ReportPaths:
    """Write predictions.csv, summary_per_second.csv, timeline.png, summary.md into out_dir.

    With ``location`` the four files and ``predictions.jsonl`` are also copied there by
    ``s3_client``, which is then required (:data:`NO_CLIENT` otherwise). ``s3_uri`` is
    the old spelling, kept while ``client/job.py`` and ``client/transform`` still use it:
    a ``s3://bucket/prefix`` string, copied with ``s3_client`` or else a client of the
    standard configuration.
    """
    location, s3_client = _destination(location, s3_client, s3_uri)
    out = Path(out_dir)
    report = read_report(out)
    frames_csv, seconds_csv = _write_csvs(out, report)
    paths = ReportPaths(frames_csv, seconds_csv, plot_timeline(out / "timeline.png", report),
                        _summary_md(out / "summary.md", report), report)
    if location is not None:
        uris = copy_to_s3([*paths.files(), out / PREDICTIONS_NAME], location, s3_client)
        paths = replace(paths, s3_uris=uris)
    return paths
