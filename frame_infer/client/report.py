"""``report``: write a :class:`~.records.Report` as CSVs, a timeline plot and a summary.

:func:`write_report` reads ``predictions.jsonl`` once into a ``Report`` (the per-second
table computed once, in ``records``), writes ``predictions.csv``,
``summary_per_second.csv``, ``timeline.png`` and ``summary.md`` from it, optionally
copies them to S3 with the client the caller configured, and returns
:class:`ReportPaths`, which carries the ``Report`` for the caller to print.

``predictions.csv`` has every row, error frames included (their probability cells are
empty). Face mode adds ``face`` and ``box_x, box_y, box_w, box_h`` columns and a
``faces`` column per second; whole-frame reports are written as before.

With person ids (faces tracked by ``tracks``) ``predictions.csv`` has a ``person``
column, and two more files are written from the report's per-person summaries:
``people.csv`` (one row per person: first and last seen, seconds on screen, faces,
errors, dominant label, mean per label) and ``people_per_second.csv`` (one row per person
and second: faces, errors, dominant, mean per label, and ``smoothed_<label>`` with
smoothing); ``summary.md`` gets one section per person.
"""
from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import ReportError
from ..s3 import S3Location
from .journal import PREDICTIONS_NAME
from .records import (NO_FACE, PersonSecond, PersonSummary, Prediction, Report,
                      SecondSummary, build_report, format_people, format_per_second,
                      label_order, per_person, per_second, read_predictions, read_report)
from .timeline import plot_timeline

# records' names stay importable from here, where callers have always found them.
__all__ = ["CONTENT_TYPES", "NO_FACE", "PersonSecond", "PersonSummary", "Prediction",
           "Report", "ReportError", "ReportPaths", "SecondSummary", "build_report",
           "copy_to_s3", "format_people", "format_per_second", "label_order", "per_person",
           "per_second", "read_predictions", "read_report", "write_report"]

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
    people_csv: Path | None = None
    """``people.csv``, when the rows have person ids."""
    people_per_second_csv: Path | None = None
    """``people_per_second.csv``, when the rows have person ids."""

    def named_files(self) -> dict[str, Path]:
        """The files by name (``predictions_csv``, ``per_second_csv``, ...; the people's
        two CSVs only when written)."""
        files = {"predictions_csv": self.predictions_csv, "per_second_csv": self.per_second_csv,
                 "timeline_png": self.timeline_png, "summary_md": self.summary_md}
        if self.people_csv is not None:
            files["people_csv"] = self.people_csv
            files["people_per_second_csv"] = self.people_per_second_csv
        return files

    def files(self) -> list[Path]:
        return list(self.named_files().values())



def _write_csvs(out: Path, report: Report) -> tuple[Path, Path]:
    preds, seconds, labels = report.predictions, report.seconds, report.labels
    frames_csv, seconds_csv = out / "predictions.csv", out / "summary_per_second.csv"
    faces = any(p.faces_mode for p in preds)
    files = any(p.file is not None for p in preds)
    scores = any(p.item.detection_score is not None for p in preds)
    persons = bool(report.people)
    with open(frames_csv, "w", newline="") as f:
        writer = csv.writer(f)
        face_head = (["face", "box_x", "box_y", "box_w", "box_h"]
                     + (["detection_score"] if scores else [])
                     + (["person"] if persons else [])) if faces else []
        writer.writerow(["index", "timestamp"] + (["file"] if files else []) + face_head
                        + ["label", "score", "error_code", "error_message"]
                        + [f"p_{lb}" for lb in labels])
        for p in preds:
            score = p.item.detection_score
            person = p.item.person
            face_cells = ([("" if p.face is None else p.face)] + list(p.box or ("",) * 4)
                          + ([("" if score is None else score)] if scores else [])
                          + ([("" if person is None else person)] if persons else [])
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


def _cells(mean: dict[str, float | None], labels) -> list:
    return ["" if mean.get(lb) is None else round(mean[lb], 6) for lb in labels]


def _write_people_csvs(out: Path, report: Report) -> tuple[Path, Path]:
    """``people.csv`` and ``people_per_second.csv`` from the report's per-person summaries."""
    labels, smoothed = report.labels, report.smooth is not None
    people_csv, seconds_csv = out / "people.csv", out / "people_per_second.csv"
    with open(people_csv, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["person", "first_seen", "last_seen", "seconds_on_screen", "faces",
                         "errors", "dominant"] + [f"mean_{lb}" for lb in labels])
        for p in report.people:
            writer.writerow([p.person, round(p.first_seen, 6), round(p.last_seen, 6),
                             round(p.seconds_on_screen, 6), p.faces, p.errors,
                             p.dominant or ""] + _cells(p.mean, labels))
    with open(seconds_csv, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["person", "second", "faces", "errors", "dominant"]
                        + [f"mean_{lb}" for lb in labels]
                        + ([f"smoothed_{lb}" for lb in labels] if smoothed else []))
        for p in report.people:
            for s in p.seconds:
                writer.writerow([p.person, s.second, s.faces, s.errors, s.dominant or ""]
                                + _cells(s.mean, labels)
                                + (_cells(s.smoothed or {}, labels) if smoothed else []))
    return people_csv, seconds_csv


def _people_md(report: Report) -> list[str]:
    """summary.md's people: one table row per person, then one section each."""
    if not report.people:
        return []
    smooth = f", smoothed over {report.smooth:g} s" if report.smooth else ""
    lines = ["", "## People", "",
             f"One row per person (a track id: the same face followed across frames{smooth}).",
             "", "| person | first seen (s) | last seen (s) | on screen (s) | faces | "
             "dominant |", "| ---: | ---: | ---: | ---: | ---: | --- |"]
    lines += [f"| {p.person} | {p.first_seen:.2f} | {p.last_seen:.2f} | "
              f"{p.seconds_on_screen:.1f} | {p.faces} | {p.dominant or '-'} |"
              for p in report.people]
    for p in report.people:
        lines += ["", f"### Person {p.person}", "",
                  "| second | faces | errors | dominant | its mean probability |",
                  "| ---: | ---: | ---: | --- | ---: |"]
        for s in p.seconds:
            values = s.smoothed if s.smoothed is not None else s.mean
            share = values.get(s.dominant) if s.dominant else None
            lines.append(f"| {s.second} | {s.faces} | {s.errors} | {s.dominant or '-'} | "
                         f"{'-' if share is None else f'{share:.3f}'} |")
    return lines


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
    lines += _people_md(report)
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


def write_report(out_dir, location: S3Location | None = None, s3_client=None,
                 smooth: float | None = None) -> ReportPaths:
    """Write predictions.csv, summary_per_second.csv, timeline.png, summary.md into out_dir
    (and people.csv, people_per_second.csv when the rows have person ids).

    With ``location`` the files and ``predictions.jsonl`` are also copied there by
    ``s3_client`` (the job's own client, so its endpoint override holds), which is then
    required (:data:`NO_CLIENT` otherwise). ``smooth``: seconds of the per-person window
    mean the people's dominant labels are read from (raw means are written too).
    """
    _check_destination(location, s3_client)
    out = Path(out_dir)
    report = read_report(out, smooth)
    frames_csv, seconds_csv = _write_csvs(out, report)
    people = _write_people_csvs(out, report) if report.people else (None, None)
    paths = ReportPaths(frames_csv, seconds_csv, plot_timeline(out / "timeline.png", report),
                        _summary_md(out / "summary.md", report), report,
                        people_csv=people[0], people_per_second_csv=people[1])
    if location is not None:
        uris = copy_to_s3([*paths.files(), out / PREDICTIONS_NAME], location, s3_client)
        paths = replace(paths, s3_uris=uris)
    return paths
