"""``report``: turn ``predictions.jsonl`` into CSVs, a timeline plot and a markdown summary.

Every frame of ``predictions.jsonl`` appears in ``predictions.csv``, error frames
included (their probability cells are empty): a report that silently drops the frames
the service could not read would overstate how much of the video was seen.
Per-second means are over the frames of that second that got a prediction; the second's
``errors`` column says how many did not.
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

CONTENT_TYPES = {".csv": "text/csv", ".png": "image/png", ".md": "text/markdown"}


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

    @property
    def ok(self) -> bool:
        return self.error_code is None


@dataclass
class SecondSummary:
    """Frames with ``second <= timestamp < second + 1``; ``mean`` is None-valued if all failed."""
    second: int
    frames: int
    errors: int
    dominant: str | None
    mean: dict[str, float | None]


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
                frame_id=row.get("id") or frame_id(index))
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
    rows.sort(key=lambda p: p.index)
    duplicates = [i for i, n in Counter(p.index for p in rows).items() if n > 1]
    if duplicates:
        raise ReportError(f"{path} has frame index {duplicates[0]} more than once; "
                          "re-run `frame-infer predict` into a clean folder")
    return rows


def label_order(predictions: list[Prediction]) -> list[str]:
    """Labels in the order the service lists them (first appearance)."""
    return list(dict.fromkeys(k for p in predictions for k in p.probabilities))


def per_second(predictions: list[Prediction], labels: list[str] | None = None
               ) -> list[SecondSummary]:
    """Group frames by whole second; mean probabilities over the predicted ones.

    ``dominant`` is the label with the highest mean probability (first listed on a
    tie), or None when every frame of the second is an error.
    """
    labels = label_order(predictions) if labels is None else labels
    groups: dict[int, list[Prediction]] = {}
    for p in predictions:
        # The epsilon keeps 30/30 from landing in second 0 after a float round trip.
        groups.setdefault(math.floor(p.timestamp + 1e-9), []).append(p)
    seconds = []
    for second in sorted(groups):
        ok = [p for p in groups[second] if p.ok]
        mean = {lb: (sum(p.probabilities.get(lb, 0.0) for p in ok) / len(ok) if ok else None)
                for lb in labels}
        dominant = max(labels, key=lambda lb: mean[lb]) if ok and labels else None
        seconds.append(SecondSummary(second, len(groups[second]),
                                     len(groups[second]) - len(ok), dominant, mean))
    return seconds


def format_per_second(seconds: list[SecondSummary]) -> str:
    """The per-second summary as a fixed-width text table, for the terminal."""
    labels = list(seconds[0].mean) if seconds else []
    dom = max([8] + [len(lb) for lb in labels])
    widths = [max(6, len(lb)) for lb in labels]
    head = f"{'second':>6} {'frames':>6} {'errors':>6} {'dominant':<{dom}}"
    lines = [head + "".join(f" {lb:>{w}}" for lb, w in zip(labels, widths))]
    for s in seconds:
        line = f"{s.second:>6} {s.frames:>6} {s.errors:>6} {s.dominant or '-':<{dom}}"
        lines.append(line + "".join(f" {'-' if s.mean[lb] is None else f'{s.mean[lb]:.3f}':>{w}}"
                                    for lb, w in zip(labels, widths)))
    return "\n".join(lines)


def per_second_table(out_dir) -> str:
    """Read ``out_dir/predictions.jsonl`` and format its per-second summary (for demos)."""
    return format_per_second(per_second(read_predictions(out_dir)))


def _write_csvs(out: Path, preds: list[Prediction], seconds: list[SecondSummary],
                labels: list[str]) -> tuple[Path, Path]:
    frames_csv, seconds_csv = out / "predictions.csv", out / "summary_per_second.csv"
    with open(frames_csv, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["index", "timestamp", "label", "score", "error_code", "error_message"]
                        + [f"p_{lb}" for lb in labels])
        for p in preds:
            writer.writerow([p.index, p.timestamp, p.label or "", "" if p.score is None else
                             p.score, p.error_code or "", p.error_message or ""]
                            + [p.probabilities.get(lb, "") if p.ok else "" for lb in labels])
    with open(seconds_csv, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["second", "frames", "errors", "dominant"]
                        + [f"mean_{lb}" for lb in labels])
        for s in seconds:
            writer.writerow([s.second, s.frames, s.errors, s.dominant or ""]
                            + ["" if s.mean[lb] is None else round(s.mean[lb], 6)
                               for lb in labels])
    return frames_csv, seconds_csv


def _plot(path: Path, preds: list[Prediction], labels: list[str]) -> Path:
    # Figure + the Agg canvas directly: no pyplot, so no global backend or GUI state.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    times = [p.timestamp for p in preds]
    for lb in labels:
        # NaN at error frames breaks the line there instead of drawing a made-up value.
        ax.plot(times, [p.probabilities.get(lb, 0.0) if p.ok else math.nan for p in preds],
                lw=1, label=lb)
    errors = [p.timestamp for p in preds if not p.ok]
    if errors:
        # Black, not red: red is already a label's colour in the default cycle.
        ax.vlines(errors, 0, 1, colors="black", alpha=0.25, lw=0.8, linestyles="dotted")
        ax.scatter(errors, [-0.03] * len(errors), marker="x", color="black", zorder=3,
                   label=f"error ({len(errors)})")
    ax.set(xlabel="time (s)", ylabel="probability", ylim=(-0.06, 1.02),
           title=f"Per-frame probabilities: {len(preds)} frames, {len(errors)} errors")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return path


def _summary_md(path: Path, preds: list[Prediction], labels: list[str]) -> Path:
    ok = [p for p in preds if p.ok]
    top = Counter(p.label for p in ok)
    span = f"{preds[0].timestamp:.2f}–{preds[-1].timestamp:.2f} s" if preds else "no frames"
    lines = ["# Prediction summary", "",
             f"{len(preds)} frames ({span}): {len(ok)} predicted, "
             f"{len(preds) - len(ok)} errors.", "",
             "| label | top-1 frames | share of predicted frames |", "| --- | ---: | ---: |"]
    for lb in labels + sorted(set(top) - set(labels)):
        share = f"{100 * top[lb] / len(ok):.1f}%" if ok else "-"
        lines.append(f"| {lb} | {top[lb]} | {share} |")
    codes = Counter(p.error_code for p in preds if not p.ok)
    lines += ["", "| error code | frames |", "| --- | ---: |"]
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
    paths = ReportPaths(frames_csv, seconds_csv, _plot(out / "timeline.png", preds, labels),
                        _summary_md(out / "summary.md", preds, labels))
    if s3_uri:
        paths.s3_uris = copy_to_s3([*paths.files(), out / PREDICTIONS_NAME], s3_uri, s3_client)
    return paths
