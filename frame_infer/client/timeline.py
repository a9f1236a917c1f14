"""The report's timeline plot (``timeline.png``), drawn with matplotlib's Agg canvas.

Whole frames: one line per label over the frames, errors marked. Face mode: per frame,
the mean over its faces, with frames without a face shaded.
"""
from __future__ import annotations

import math
from pathlib import Path


def plot_timeline(path: Path, preds: list, labels: list[str]) -> Path:
    """``timeline.png``: probabilities over time of ``preds`` (``report.Prediction`` rows);
    errors marked, and in face mode frames without a face shaded."""
    # Figure + the Agg canvas directly: no pyplot, so no global backend or GUI state.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if any(p.faces_mode for p in preds):
        return _plot_faces(fig, ax, path, preds, labels)
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


def _plot_faces(fig, ax, path: Path, preds: list, labels: list[str]) -> Path:
    """Face mode: per frame, the mean over its faces; frames without a face shaded."""
    by_frame: dict[int, list] = {}
    for p in preds:
        by_frame.setdefault(p.index, []).append(p)
    frames = [group for _, group in sorted(by_frame.items())]
    times = [group[0].timestamp for group in frames]
    for lb in labels:
        values = []
        for group in frames:
            ok = [p.probabilities.get(lb, 0.0) for p in group if p.predicted]
            values.append(sum(ok) / len(ok) if ok else math.nan)  # gap: no face or error
        ax.plot(times, values, lw=1, label=lb)
    step = min((b - a for a, b in zip(times, times[1:])), default=1.0)
    empty = [t for t, group in zip(times, frames) if all(p.no_face for p in group)]
    for t in empty:
        ax.axvspan(t, t + step, color="0.85", lw=0, zorder=0)
    if empty:
        ax.fill_between([], [], color="0.85", label=f"no face ({len(empty)} frames)")
    errors = [p.timestamp for p in preds if not p.ok]
    if errors:
        ax.scatter(errors, [-0.03] * len(errors), marker="x", color="black", zorder=3,
                   label=f"error ({len(errors)})")
    faces = sum(p.face is not None for p in preds)
    ax.set(xlabel="time (s)", ylabel="mean probability over the frame's faces",
           ylim=(-0.06, 1.02), title=f"{len(frames)} frames, {faces} faces, {len(empty)} "
           f"frames without a face, {len(errors)} errors")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return path
