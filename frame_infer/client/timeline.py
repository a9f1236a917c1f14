"""The report's timeline plot (``timeline.png``), drawn with matplotlib's Agg canvas.

Read at a glance, for 20 seconds and for an hour alike; the x axis is the video's time
(seconds, or minutes:seconds past two minutes), everything per second:

- **with people** (rows with person ids, ``tracks``): one lane per person, each a band
  of the person's dominant emotion per second (white where they are not on screen, dark
  grey where every face of theirs failed) over one line per emotion (the person's mean
  probability per second; the smoothed one when the report was smoothed), only the
  emotions that reach :data:`LINE_FLOOR` somewhere;
- **without** (whole frames, or faces without ids): a band of the second's dominant label
  (light grey: no face; dark grey: every frame failed) over the stacked mean
  probabilities;
- a track below either: faces per second (face mode) or frames per second, errors in
  black.

Every emotion has the same colour in every plot, by its name (:func:`label_colour`:
happy warm yellow, sad blue, angry red, ...; both fer's and FER+'s label names), and an
unknown label always the same fallback colour. The legend lists only what the plot
shows. It only draws: the per-second and per-person tables come computed in the
:class:`~.records.Report`.
"""
from __future__ import annotations

import zlib
from pathlib import Path

from .records import Report

NO_FACE_GREY = "0.85"
FAILED_GREY = "0.3"
ABSENT = "white"
EMOTION_COLOURS = {
    # The colours people expect of these feelings; both label sets (fer's and FER+'s).
    "happy": "#f2b705", "happiness": "#f2b705",        # warm yellow, never red
    "neutral": "#8da0b6",                                # slate grey-blue
    "sad": "#2f6fd6", "sadness": "#2f6fd6",             # blue
    "angry": "#d62728", "anger": "#d62728",             # red
    "surprise": "#ff8c1a",                               # orange
    "fear": "#8e44ad",                                   # purple
    "disgust": "#2ca02c",                                # green
    "contempt": "#8c564b",                               # brown
}
"""Hex colour per emotion label (lower case), the same in every picture of a report."""
OTHER_COLOURS = ("#17becf", "#e377c2", "#bcbd22", "#1f77b4", "#9467bd", "#ff9896")
"""For labels not above: one of these, always the same for the same label (CRC-32)."""
LINE_FLOOR = 0.05
"""A person's emotion gets a line when its mean reaches this in some second."""


def label_colour(label: str) -> str:
    """The hex colour of ``label``: by name, else a fixed fallback for that name."""
    known = EMOTION_COLOURS.get(label.strip().lower())
    return known or OTHER_COLOURS[zlib.crc32(label.encode()) % len(OTHER_COLOURS)]


def _time_axis(axis, end: float) -> None:
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    if end > 120:
        axis.xaxis.set_major_locator(MaxNLocator(nbins=12, steps=[1, 2, 3, 5, 6, 10]))
        axis.xaxis.set_major_formatter(FuncFormatter(
            lambda x, _: f"{int(x // 60)}:{int(x % 60):02d}"))
        axis.set_xlabel("time (min:s)")
    else:
        axis.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=20))
        axis.set_xlabel("time (s)")


def plot_timeline(path: Path, report: Report) -> Path:
    """Draw ``report`` (its per-second and per-person tables) into ``path``, a PNG."""
    # Figure + the Agg canvas directly: no pyplot, so no global backend or GUI state.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    seconds, people = report.seconds, report.people
    faces_mode = any(s.faces is not None for s in seconds)
    end = float(seconds[-1].second + 1) if seconds else 1.0
    lanes = len(people)
    ratios = ([0.35, 1.6] * lanes if lanes else [0.5, 4]) + [1.0]
    fig = Figure(figsize=(12, 1.4 + 2.0 * lanes if lanes else 5.2))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(ratios), 1, sharex=True,
                        gridspec_kw={"height_ratios": ratios, "hspace": 0.12})
    if lanes:
        shown = _people_lanes(axes[:-1], report, end)
        title = (f"Per person: dominant emotion per second (band) and mean probability per "
                 f"second (lines{', smoothed over %g s' % report.smooth if report.smooth else ''})"
                 f" — {lanes} people, {report.frames} frames, {report.faces} faces, "
                 f"{report.errors} errors")
    else:
        shown = _stacked(axes[0], axes[1], report, end)
        what = (f"{report.frames} frames, {report.faces} faces" if faces_mode
                else f"{report.frames} frames")
        title = (f"Per second: dominant label, mean probabilities, "
                 f"{'faces' if faces_mode else 'frames'} ({what}, {report.errors} errors, "
                 f"{len(seconds)} s)")
    shown += _track(axes[-1], report, faces_mode)
    for axis in axes:
        axis.set_xlim(0, end)
    _time_axis(axes[-1], end)
    axes[0].set_title(title, fontsize=10)
    fig.legend(handles=shown, loc="upper left", bbox_to_anchor=(0.905, 0.88),
               fontsize="small")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return path


def _band(axis, cells: list[str], start: int) -> None:
    """One coloured cell per second from ``start`` (colours as matplotlib names)."""
    import numpy as np
    from matplotlib.colors import to_rgb

    image = np.array([[to_rgb(c) for c in cells]], dtype=float).reshape(1, len(cells), 3)
    axis.imshow(image, aspect="auto", extent=(start, start + len(cells), 0, 1),
                interpolation="nearest")
    axis.set_yticks([])


def _people_lanes(axes, report: Report, end: float) -> list:
    """Each person's band and lines; the legend handles of what was drawn."""
    import numpy as np
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    labels, used, absent, failed = report.labels, set(), False, False
    for n, person in enumerate(report.people):
        band, lines = axes[2 * n], axes[2 * n + 1]
        at = {s.second: s for s in person.seconds}
        cells = []
        for second in range(int(end)):
            s = at.get(second)
            if s is None:
                cells.append(ABSENT)
                absent = True
            elif s.dominant is None:
                cells.append(FAILED_GREY)
                failed = True
            else:
                cells.append(label_colour(s.dominant))
                used.add(s.dominant)
        _band(band, cells, 0)
        band.set_ylabel(f"person {person.person}", rotation=0, ha="right", va="center",
                        fontsize=9, fontweight="bold")
        x = np.arange(int(end)) + 0.5
        for lb in labels:
            values = np.full(int(end), np.nan)
            for second, s in at.items():
                mean = s.smoothed if s.smoothed is not None else s.mean
                if mean.get(lb) is not None and 0 <= second < int(end):
                    values[second] = mean[lb]
            if not np.nanmax(values, initial=0.0) >= LINE_FLOOR:
                continue
            lines.plot(x, values, color=label_colour(lb), lw=2, marker="o", ms=3)
            used.add(lb)
        lines.set(ylim=(-0.02, 1.02), yticks=[0, 0.5, 1])
        lines.set_ylabel(f"mostly {person.dominant or '-'}\n{person.seconds_on_screen:.1f} s "
                         "on screen\n(probability)", rotation=0, ha="right", va="center",
                         fontsize=8)
        lines.grid(alpha=0.3)
    handles = [Line2D([], [], color=label_colour(lb), lw=3, label=lb)
               for lb in labels if lb in used]
    handles += [Patch(color=label_colour(lb), label=lb) for lb in sorted(used - set(labels))]
    if absent:
        handles.append(Patch(facecolor=ABSENT, edgecolor="0.6", label="not on screen"))
    if failed:
        handles.append(Patch(color=FAILED_GREY, label="no answer (all errors)"))
    return handles


def _stacked(band, area, report: Report, end: float) -> list:
    """The band of dominant labels and the stacked means; the legend handles."""
    import numpy as np
    from matplotlib.patches import Patch

    seconds, labels = report.seconds, report.labels
    cells, used, no_face, failed = [], set(), 0, False
    for s in seconds:
        if s.dominant in labels:
            cells.append(label_colour(s.dominant))
            used.add(s.dominant)
        elif s.no_face:
            cells.append(NO_FACE_GREY)
            no_face += 1
        else:
            cells.append(FAILED_GREY)
            failed = True
    if seconds:  # the seconds are contiguous from the first row's
        _band(band, cells, seconds[0].second)
    band.set_yticks([])
    band.set_ylabel("dominant", rotation=0, ha="right", va="center", fontsize=8)
    # The stacked mean probabilities per second (steps: a second is one value).
    # Shaped explicitly: with every row an error there are no labels, and the report of
    # such a run must still be written (it says why), not crash.
    starts = np.array([s.second for s in seconds], dtype=float)
    means = np.array([[s.mean.get(lb) or 0.0 for s in seconds] for lb in labels],
                     dtype=float).reshape(len(labels), len(seconds))
    edges = np.append(starts, end)
    stacked = np.vstack([np.zeros(len(seconds)), np.cumsum(means, axis=0)])
    for i, lb in enumerate(labels):
        if means[i].max(initial=0.0) >= LINE_FLOOR:
            used.add(lb)
        area.stairs(stacked[i + 1], edges, baseline=stacked[i], fill=True,
                    color=label_colour(lb))
    for s in seconds:
        if all(s.mean.get(lb) is None for lb in labels):
            area.axvspan(s.second, s.second + 1,
                         color=NO_FACE_GREY if s.no_face else FAILED_GREY, lw=0)
            failed = failed or not s.no_face
    area.set(ylim=(0, 1), ylabel="mean probability\nper second")
    area.grid(alpha=0.3)
    handles = [Patch(color=label_colour(lb), label=lb) for lb in labels if lb in used]
    if no_face:
        handles.append(Patch(color=NO_FACE_GREY, label=f"no face ({no_face} s)"))
    if failed:
        handles.append(Patch(color=FAILED_GREY, label="no answer (all errors)"))
    return handles


def _track(track, report: Report, faces_mode: bool) -> list:
    """Faces (or frames) per second, errors in black; the legend handles."""
    import numpy as np
    from matplotlib.patches import Patch

    seconds = report.seconds
    starts = np.array([s.second for s in seconds], dtype=float)
    edges = np.append(starts, starts[-1] + 1 if len(starts) else 1.0)
    counts = np.array([s.faces if faces_mode else s.frames for s in seconds], dtype=float)
    errors = np.array([s.errors for s in seconds], dtype=float)
    what = "faces" if faces_mode else "frames"
    track.stairs(counts, edges, fill=True, color="#9ecae1")
    handles = [Patch(color="#9ecae1", label=f"{what} per second")]
    empty = [s for s in seconds if s.no_face]
    for s in empty:
        track.axvspan(s.second, s.second + 1, color=NO_FACE_GREY, lw=0)
    if empty and report.people:  # without people the band above says it already
        handles.append(Patch(color=NO_FACE_GREY, label=f"no face ({len(empty)} s)"))
    if errors.any():
        track.stairs(errors, edges, fill=True, color="black")
        handles.append(Patch(color="black", label="errors"))
    track.set(ylabel=what, ylim=(0, max(1.0, counts.max() if len(counts) else 1.0) * 1.15))
    track.grid(alpha=0.3)
    return handles
