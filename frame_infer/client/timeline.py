"""The report's timeline plot (``timeline.png``), drawn with matplotlib's Agg canvas.

Read at a glance, for 20 seconds and for an hour alike, everything is per second:

- a band on top: the second's dominant label as a colour (light grey: no face; dark
  grey: every frame of the second failed);
- the mean probabilities of the second as a stacked area (the labels in the same
  colours), with seconds without a face or without any answer shaded;
- a track below: faces per second (face mode) or frames per second, errors in black.

It only draws: the per-second table comes computed in the :class:`~.records.Report`.
"""
from __future__ import annotations

from pathlib import Path

from .records import Report

NO_FACE_GREY = "0.85"
FAILED_GREY = "0.3"
# Label colours: matplotlib's tab10 and tab20 without their greys (grey means "no face"
# and dark grey "no answer" here).
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5",
           "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5")


def plot_timeline(path: Path, report: Report) -> Path:
    """Draw ``report`` (its per-second table and counts) into ``path``, a PNG; returns it."""
    # Figure + the Agg canvas directly: no pyplot, so no global backend or GUI state.
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    seconds, labels = report.seconds, report.labels
    faces_mode = any(s.faces is not None for s in seconds)
    starts = np.array([s.second for s in seconds], dtype=float)
    colours = [PALETTE[i % len(PALETTE)] for i in range(len(labels))]
    fig = Figure(figsize=(12, 5.2))
    FigureCanvasAgg(fig)
    band, area, track = fig.subplots(3, 1, sharex=True,
                                     gridspec_kw={"height_ratios": [0.5, 4, 1.2], "hspace": 0.08})
    end = (starts[-1] + 1) if len(starts) else 1.0

    # The band: one cell per second, coloured by its dominant label.
    codes = np.array([labels.index(s.dominant) if s.dominant in labels
                      else (len(labels) if s.no_face else len(labels) + 1) for s in seconds])
    cmap = ListedColormap(colours + [NO_FACE_GREY, FAILED_GREY])
    band.imshow(codes[None, :], aspect="auto", cmap=cmap, vmin=-0.5,
                vmax=len(labels) + 1.5, extent=(0, end, 0, 1), interpolation="nearest")
    band.set_yticks([])
    band.set_ylabel("dominant", rotation=0, ha="right", va="center", fontsize=8)

    # The stacked mean probabilities per second (steps: a second is one value).
    # Shaped explicitly: with every row an error there are no labels, and the report of
    # such a run must still be written (it says why), not crash.
    means = np.array([[s.mean.get(lb) or 0.0 for s in seconds] for lb in labels],
                     dtype=float).reshape(len(labels), len(seconds))
    edges = np.append(starts, end)
    stacked = np.vstack([np.zeros(len(seconds)), np.cumsum(means, axis=0)])
    for i, lb in enumerate(labels):
        area.stairs(stacked[i + 1], edges, baseline=stacked[i], fill=True, color=colours[i],
                    label=lb)
    blank = [s for s in seconds if all(s.mean.get(lb) is None for lb in labels)]
    for s in blank:
        area.axvspan(s.second, s.second + 1, color=NO_FACE_GREY if s.no_face else FAILED_GREY,
                     lw=0)
    area.set(ylim=(0, 1), ylabel="mean probability\nper second", xlim=(0, end))
    area.grid(alpha=0.3)

    # The track: faces (or frames) per second, errors in black.
    counts = np.array([s.faces if faces_mode else s.frames for s in seconds], dtype=float)
    errors = np.array([s.errors for s in seconds], dtype=float)
    track.stairs(counts, edges, fill=True, color="#9ecae1",
                 label="faces" if faces_mode else "frames")
    track.stairs(errors, edges, fill=True, color="black", label="errors")
    track.set(ylabel="faces" if faces_mode else "frames", xlabel="time (s)",
              ylim=(0, max(1.0, counts.max() if len(counts) else 1.0) * 1.15))
    track.grid(alpha=0.3)

    handles = [Patch(color=c, label=lb) for c, lb in zip(colours, labels)]
    if faces_mode:
        no_face = sum(s.no_face for s in seconds)
        handles.append(Patch(color=NO_FACE_GREY, label=f"no face ({no_face} s)"))
    handles.append(Patch(color=FAILED_GREY, label="no answer (all errors)"))
    handles.append(Patch(color="#9ecae1", label="faces" if faces_mode else "frames"))
    handles.append(Patch(color="black", label="errors"))
    fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.905, 0.88),
               fontsize="small")
    what = (f"{report.frames} frames, {report.faces} faces" if faces_mode
            else f"{report.frames} frames")
    band.set_title(f"Per second: dominant label, mean probabilities, "
                   f"{'faces' if faces_mode else 'frames'} ({what}, {report.errors} errors, "
                   f"{len(seconds)} s)", fontsize=10)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return path
